"""The naive client every measurement is compared with, in the same run.

What a plain FIM plugin does: the same GGUF file through llama.cpp (llama-cpp-python),
the same threads, a plain prefix/suffix window cut at whole lines (768 + 256 tokens, the
1,024-token prompt of common autocomplete clients), the cursor's line inside the prefix,
no other context, no cache (the KV cache is cleared before every request), and a
suggestion that stops only at the first newline, an end-of-generation token or the
token cap. It is given one courtesy a plain HTTP client does not have: a superseded
request stops between 128-token prompt chunks, so it never delays the next one by more
than a chunk.
"""

from __future__ import annotations

import codecs
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .common import FIM_MAX_TOKENS

PREFIX_TOKENS = 768
SUFFIX_TOKENS = 256
CHUNK = 128  # prompt tokens evaluated between cancel checks


@dataclass
class NaiveResult:
    text: str
    latency_ms: float
    prompt_tokens: int
    tokens_generated: int
    cancelled: bool = False


class NaiveClient:
    def __init__(
        self,
        model_path: Path | str,
        threads: int,
        n_ctx: int = 4096,
        max_tokens: int = FIM_MAX_TOKENS,
    ) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        self.llm = llama_cpp.Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_batch=512,
            n_threads=threads,
            n_threads_batch=threads,
            n_gpu_layers=0,
            verbose=False,
        )
        self.max_tokens = max_tokens
        model = self.llm._model
        self.fim = (model.token_prefix(), model.token_suffix(), model.token_middle())
        if min(self.fim) < 0:
            raise ValueError(
                f"{model_path} has no fill-in-the-middle tokens; the naive client needs them"
            )
        self.bos = self.llm.tokenize(b"", add_bos=True, special=True)
        self._lock = threading.Lock()

    def _tok(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else []

    def prompt(self, text: str, offset: int) -> list[int]:
        """[BOS] <PRE> prefix (whole lines + the cursor's line) <SUF> suffix <MID>."""
        line_start = text.rfind("\n", 0, offset) + 1
        prefix_lines = text[:line_start].splitlines(keepends=True)
        budget = PREFIX_TOKENS - len(self._tok(text[line_start:offset]))
        kept: list[str] = []
        for line in reversed(prefix_lines):
            budget -= len(self._tok(line))
            if budget < 0:
                break
            kept.append(line)
        prefix = "".join(reversed(kept)) + text[line_start:offset]
        suffix_lines = text[offset:].splitlines(keepends=True)
        budget = SUFFIX_TOKENS
        taken: list[str] = []
        for line in suffix_lines:
            budget -= len(self._tok(line))
            if budget < 0:
                break
            taken.append(line)
        suffix = "".join(taken)
        pre, suf, mid = self.fim
        return [*self.bos, pre, *self._tok(prefix), suf, *self._tok(suffix), mid]

    def complete(
        self, text: str, offset: int, cancel: threading.Event | None = None
    ) -> NaiveResult:
        """One suggestion for the cursor at `offset`, computed from scratch (blocking)."""
        cancel = cancel or threading.Event()
        started = time.perf_counter()
        with self._lock:
            tokens = self.prompt(text, offset)
            llm = self.llm
            llm.reset()  # no cache: every request evaluates its whole prompt
            for i in range(0, len(tokens) - 1, CHUNK):
                if cancel.is_set():
                    return NaiveResult("", _ms(started), len(tokens), 0, cancelled=True)
                llm.eval(tokens[i : min(i + CHUNK, len(tokens) - 1)])
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            out = ""
            generated = 0
            vocab = llm._model.vocab
            stream = llm.generate(
                tokens, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True
            )
            try:
                for token in stream:
                    if cancel.is_set():
                        return NaiveResult("", _ms(started), len(tokens), generated, cancelled=True)
                    if self._llama_cpp.llama_vocab_is_eog(vocab, token):
                        break
                    generated += 1
                    out += decoder.decode(llm.detokenize([token]))
                    if "\n" in out:
                        out = out.split("\n", 1)[0]
                        break
                    if generated >= self.max_tokens:
                        break
            finally:
                stream.close()
            return NaiveResult(out, _ms(started), len(tokens), generated)

    def close(self) -> None:
        self.llm.close()


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000
