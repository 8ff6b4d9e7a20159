"""One in-process llama.cpp model (llama-cpp-python), streamed token by token.

All calls must come from one thread at a time (the completion worker): llama.cpp's
context is not thread-safe. KV reuse: `Llama.generate` keeps the longest common token
prefix with the previous call, and before it runs we keep cached runs that moved toward
the start by shifting them (kv_reuse.py); we count what was kept ourselves to report how
many prompt tokens were really evaluated.
"""

from __future__ import annotations

import codecs
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from ..config import ModelSettings
from .base import FimTokens, GenerateOptions, Generation, ModelInfo
from .kv_reuse import plan_reuse
from .models import ModelNotFoundError, check_gguf_header

log = logging.getLogger(__name__)


def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def _resolve_gpu_layers(setting: int | str) -> int:
    if setting == "all":
        return -1
    if setting == "auto":
        return -1 if gpu_offload_supported() else 0
    return int(setting)


class _KeepStdio:
    """Stands in for llama-cpp-python's `suppress_stdout_stderr` while a model loads.

    That helper dup2()s /dev/null over fds 1 and 2 for the whole process. The model loads
    on a worker thread while the event loop keeps answering on stdout, so every LSP
    message written during the load went to /dev/null: the client waited forever for
    that response (found by the typing benchmark: a copilot.status sent while loading
    never came back). With verbose=False llama.cpp's own log goes through a callback
    that prints nothing below ERROR, so nothing needs silencing."""

    def __init__(self, disable: bool = True) -> None:
        pass

    def __enter__(self) -> _KeepStdio:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


def _keep_stdio() -> None:
    import llama_cpp._internals
    import llama_cpp.llama

    llama_cpp.llama.suppress_stdout_stderr = _KeepStdio  # type: ignore[attr-defined,misc]
    llama_cpp._internals.suppress_stdout_stderr = _KeepStdio  # type: ignore[attr-defined,misc]


def token_pieces_of(model) -> list[bytes]:  # noqa: ANN001 - llama_cpp._internals.LlamaModel
    """Every token's bytes by id, b"" for control tokens: the table token healing sorts
    (prompts/healing.py). ~0.3 s for a 150k vocabulary."""
    import ctypes

    import llama_cpp

    vocab = model.vocab
    size = 256
    buffer = ctypes.create_string_buffer(size)
    pieces = []
    for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
        length = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, False)
        pieces.append(buffer.raw[:length] if length > 0 else b"")
    return pieces


def _token_or_none(value: int) -> int | None:
    return None if value is None or value < 0 else int(value)


class LlamaEngine:
    """Loads a GGUF file once and generates from token lists."""

    # generate(..., heal=text) constrains the first tokens to write `text` (token healing).
    heals_tokens = True

    def __init__(self, model_path: Path, settings: ModelSettings) -> None:
        import llama_cpp

        check_gguf_header(model_path)
        _keep_stdio()
        n_gpu_layers = _resolve_gpu_layers(settings.n_gpu_layers)
        threads = settings.threads or max(1, (os.cpu_count() or 2))
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=settings.n_ctx,
                n_batch=settings.n_batch,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=n_gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelNotFoundError(
                f"llama.cpp could not load {model_path}: {exc}. The file may be corrupt or "
                "of an architecture this llama.cpp build does not know; delete it to have "
                "the default rebuilt, or choose another GGUF."
            ) from None
        self._lock = threading.Lock()
        memory = self._llm._ctx.memory
        # Recurrent and some multimodal-RoPE models cannot move cached positions.
        self._can_shift = memory is not None and bool(llama_cpp.llama_memory_can_shift(memory))
        self.info = self._read_info(model_path, n_gpu_layers)
        self._pieces: list[bytes] | None = None
        # The sorted vocabulary for token healing, built with the model (~0.6 s for 150k
        # tokens) rather than on the first request.
        from ..prompts.healing import vocabulary_for

        vocabulary_for(self)

    # -- model facts -------------------------------------------------------------------

    def _read_info(self, model_path: Path, n_gpu_layers: int) -> ModelInfo:
        llm = self._llm
        meta = {str(k): str(v) for k, v in (llm.metadata or {}).items()}
        arch = meta.get("general.architecture", "unknown")
        n_layers = int(meta.get(f"{arch}.block_count", "0") or 0)
        model = llm._model
        fim = FimTokens(
            prefix=_token_or_none(model.token_prefix()),
            suffix=_token_or_none(model.token_suffix()),
            middle=_token_or_none(model.token_middle()),
            repo_name=self._single_special("<|repo_name|>"),
            file_sep=self._single_special("<|file_sep|>"),
        )
        offloaded = n_layers if n_gpu_layers < 0 else min(n_gpu_layers, n_layers)
        if not gpu_offload_supported():
            offloaded = 0
        return ModelInfo(
            path=str(model_path),
            name=meta.get("general.name", model_path.stem),
            architecture=arch,
            size_bytes=model_path.stat().st_size,
            n_ctx=llm.n_ctx(),
            n_ctx_train=int(llm.n_ctx_train()) if hasattr(llm, "n_ctx_train") else 0,
            n_gpu_layers=offloaded,
            n_layers=n_layers,
            gpu_offload_supported=gpu_offload_supported(),
            fim=fim,
            chat_template=meta.get("tokenizer.chat_template"),
            eos_token=_token_or_none(llm.token_eos()),
            metadata=meta,
        )

    def _single_special(self, text: str) -> int | None:
        tokens = self._llm.tokenize(text.encode(), add_bos=False, special=True)
        return tokens[0] if len(tokens) == 1 else None

    def is_end_of_generation(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_token_is_eog(self._llm._model.vocab, token))

    # -- text <-> tokens ---------------------------------------------------------------

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        if not text:
            return []
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def detokenize(self, tokens: list[int]) -> str:
        return self._llm.detokenize(tokens).decode("utf-8", errors="replace")

    def token_pieces(self) -> list[bytes]:
        """Every token's bytes by id; b"" for control tokens (FIM markers, EOS…)."""
        if getattr(self, "_pieces", None) is None:
            self._pieces = token_pieces_of(self._llm._model)
        return self._pieces

    # -- generation --------------------------------------------------------------------

    def generate(self, prompt: list[int], **options: Any) -> Generation:
        """Stream tokens for `prompt` until EOS, `should_stop`, `cancel` or `max_tokens`
        (options: GenerateOptions' fields).

        The cancel flag is checked between tokens, so a superseded request stops within
        one token's time (~50 ms here). With `heal`, the first tokens are constrained to
        write that text (token healing; the text counts as generated).
        """
        with self._lock:
            return self._generate_locked(prompt, GenerateOptions(**options))

    def generate_with_lookup(
        self, prompt: list[int], *, source: list[int], draft_tokens: int = 16, **options: Any
    ):  # -> tuple[Generation, prompt_lookup.LookupStats]
        """Greedy generation with prompt-lookup drafts taken from `source` (a rewrite
        copies most of it); the cached completion prompt survives the call. See
        prompt_lookup.py."""
        from .prompt_lookup import lookup_generate

        with self._lock:
            return lookup_generate(
                self, prompt, GenerateOptions(**options), source=source, draft_tokens=draft_tokens
            )

    def _generate_locked(self, prompt: list[int], options: GenerateOptions) -> Generation:
        cancel, should_stop, stop_tokens = options.cancel, options.should_stop, options.stop_tokens
        temperature = options.temperature
        llm = self._llm
        room = llm.n_ctx() - len(prompt) - 1
        if room <= 0:
            raise ValueError(f"prompt of {len(prompt)} tokens does not fit n_ctx={llm.n_ctx()}")
        max_tokens = min(options.max_tokens, room)
        reused = self._keep_moved_tokens(prompt)
        started = time.perf_counter()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = ""
        generated = 0
        first_token_at: float | None = None
        stop_reason = "max_tokens"
        if cancel.is_set():
            return Generation("", 0, len(prompt), 0, "cancelled", 0.0, 0.0)
        stream = llm.generate(
            prompt,
            temp=temperature,
            top_k=1 if temperature == 0 else 40,
            top_p=1.0 if temperature == 0 else 0.95,
            min_p=0.0,
            repeat_penalty=1.0,
            reset=True,
            logits_processor=self._healing(options.heal, len(prompt)),
        )
        try:
            for token in stream:
                if first_token_at is None:
                    first_token_at = time.perf_counter()
                if cancel.is_set():
                    stop_reason = "cancelled"
                    break
                if token in stop_tokens or self.is_end_of_generation(token):
                    stop_reason = "eos"
                    break
                generated += 1
                text += decoder.decode(llm.detokenize([token]))
                if should_stop(text):
                    stop_reason = "stopped"
                    break
                if generated >= max_tokens:
                    stop_reason = "max_tokens"
                    break
                if cancel.is_set():
                    stop_reason = "cancelled"
                    break
        finally:
            stream.close()
        ended = time.perf_counter()
        first = first_token_at or ended
        return Generation(
            text=text,
            tokens_generated=generated,
            prompt_tokens=len(prompt),
            prompt_tokens_evaluated=len(prompt) - reused,
            stop_reason=stop_reason,
            prompt_ms=(first - started) * 1000,
            generation_ms=(ended - first) * 1000,
        )

    def first_token_candidates(self, prompt: list[int], k: int) -> list[int]:
        """The `k` likeliest first tokens after `prompt`, best first: where alternative
        suggestions branch off (completion/alternatives.py). Right after a generation for
        the same prompt this re-reads one token; the KV cache keeps the rest."""
        import numpy as np

        with self._lock:
            llm = self._llm
            self._keep_moved_tokens(prompt)
            cached = llm._input_ids[: llm.n_tokens].tolist()
            kept = 0
            # The last token is read again: its logits are the ones wanted.
            for a, b in zip(cached, prompt[:-1], strict=False):
                if a != b:
                    break
                kept += 1
            llm.n_tokens = kept
            llm.eval(prompt[kept:])
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
            k = max(1, min(k, len(logits) - 1))
            top = np.argpartition(-logits, k)[:k]
            return [int(t) for t in top[np.argsort(-logits[top])]]

    def _healing(self, heal: str, prompt_tokens: int) -> list | None:
        """The logits processor that makes the first tokens write `heal`, or None."""
        if not heal:
            return None
        from ..prompts.healing import Constraint, vocabulary_for

        vocab = vocabulary_for(self)
        return [Constraint(vocab, heal, prompt_tokens)] if vocab is not None else None

    def _keep_moved_tokens(self, prompt: list[int]) -> int:
        """Shift the cached runs the prompt keeps (see kv_reuse.py) to their new positions
        and drop the rest; `Llama.generate` then sees them as a common prefix. Returns the
        prompt tokens that need no evaluation."""
        import llama_cpp

        llm = self._llm
        cached = llm._input_ids[: llm.n_tokens].tolist()
        plan = plan_reuse(cached, prompt)
        if not plan.moves or not self._can_shift:
            return min(plan.common_prefix, len(prompt) - 1)
        ctx = llm._ctx
        for move in plan.moves:
            # The cells between the kept part and this run go; the run slides back.
            if not ctx.kv_cache_seq_rm(0, move.prompt_at, move.cache_at):
                llm.reset()  # a cache that cannot drop a range: start over, never mix
                llama_cpp.llama_memory_clear(ctx.memory, True)
                return 0
            ctx.kv_cache_seq_shift(
                0, move.cache_at, move.cache_at + move.length, move.prompt_at - move.cache_at
            )
        # The prompt's last token is always read again: its logits are what we sample
        # from, and the context's current logits belong to another position.
        kept = min(plan.kept, len(prompt) - 1)
        ctx.kv_cache_seq_rm(0, kept, -1)
        llm.input_ids[:kept] = prompt[:kept]
        llm.n_tokens = kept
        llm._requires_eval = True
        log.debug(
            "KV reuse: %d in place, %d moved in %d runs",
            plan.common_prefix,
            plan.kept - plan.common_prefix,
            len(plan.moves),
        )
        return kept

    def close(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
            self._llm = None
