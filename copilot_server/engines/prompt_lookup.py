"""Greedy decoding with prompt-lookup drafts, for rewrites that copy most of their input.

A model rewriting a window of code writes the window again with a small change, so most
of what comes next already stands in the prompt. After each token we look up the last
few generated tokens in the source (the window's tokens) and propose the tokens that
followed there as a draft; one batch evaluates the token and the whole draft, and every
draft token the model would have chosen itself (greedy argmax) is kept, plus the model's
own next token. Output is the same as plain greedy decoding (up to the rare tie that a
batched evaluation rounds differently); only fewer decode calls are made.

llama-cpp-python's `LlamaPromptLookupDecoding` needs a `Llama` created with a draft model
(which turns on logits for every prompt token and a n_ctx x n_vocab score array, ~2.5 GB
for this model); this loop asks for logits only where it verifies a draft. The KV cache
of the caller's sequence (the inline completion's prompt) is saved before and put back
after, so a rewrite does not cost the next completion a re-read of its prompt.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..sequences import common_prefix_len
from .base import GenerateOptions, Generation

if TYPE_CHECKING:
    from .llama import LlamaEngine

log = logging.getLogger(__name__)

# Longest n-gram looked up (longer first); a draft is at most this many tokens.
MAX_NGRAM = 3
DRAFT_TOKENS = 16


@dataclass
class LookupStats:
    """How speculation went in one call (for the bench and the logs)."""

    decode_calls: int = 0
    drafted: int = 0
    accepted: int = 0


class DraftSource:
    """Finds drafts in `source` tokens for the tokens generated so far.

    Positions of every 1..MAX_NGRAM-gram are indexed once; a lookup prefers the match at
    or after where the previous draft left off, since a rewrite copies in order."""

    def __init__(self, source: list[int], max_ngram: int = MAX_NGRAM) -> None:
        self.source = source
        self.max_ngram = max_ngram
        self.hint = 0
        self._index: dict[tuple[int, ...], list[int]] = {}
        for n in range(1, max_ngram + 1):
            for i in range(len(source) - n + 1):
                self._index.setdefault(tuple(source[i : i + n]), []).append(i + n)

    def draft(self, context: list[int], size: int) -> tuple[list[int], int]:
        """(draft tokens, source position after them); empty when nothing matches."""
        if size <= 0:
            return [], self.hint
        for n in range(min(self.max_ngram, len(context)), 0, -1):
            positions = self._index.get(tuple(context[-n:]))
            if not positions:
                continue
            after = [p for p in positions if p >= self.hint and p < len(self.source)]
            at = after[0] if after else max(p for p in positions)
            if at >= len(self.source):
                continue
            tokens = self.source[at : at + size]
            return tokens, at + len(tokens)
        return [], self.hint


def lookup_generate(
    engine: LlamaEngine,
    prompt: list[int],
    options: GenerateOptions,
    *,
    source: list[int],
    draft_tokens: int = DRAFT_TOKENS,
    keep_cache: bool = True,
    is_end: Callable[[int], bool] | None = None,
) -> tuple[Generation, LookupStats]:
    """Greedy generation of up to `max_tokens` after `prompt`, drafting from `source`
    (`draft_tokens=0`: the same loop without drafts, the baseline to measure against).
    Greedy and unhealed: `options.temperature` and `options.heal` are not read."""
    import numpy as np

    cancel, should_stop, stop_tokens = options.cancel, options.should_stop, options.stop_tokens
    llm = engine._llm
    ctx = llm._ctx
    n_vocab = llm.n_vocab()
    is_end = is_end or engine.is_end_of_generation
    room = llm.n_ctx() - len(prompt) - 1
    if room <= 0:
        raise ValueError(f"prompt of {len(prompt)} tokens does not fit n_ctx={llm.n_ctx()}")
    max_tokens = min(options.max_tokens, room - draft_tokens - 1)
    stats = LookupStats()
    started = time.perf_counter()
    if cancel.is_set():
        return Generation("", 0, len(prompt), 0, "cancelled", 0.0, 0.0), stats
    saved = _save_sequence(llm) if keep_cache else None
    try:
        # The prompt: reuse the common prefix with what the cache holds, read the rest.
        cached = llm.input_ids[: llm.n_tokens].tolist()
        common = min(common_prefix_len(cached, prompt), len(prompt) - 1)
        ctx.kv_cache_seq_rm(0, common, -1)
        llm.n_tokens = common
        llm.eval(prompt[common:])
        first_at = time.perf_counter()

        def argmax(i: int) -> int:
            logits = np.ctypeslib.as_array(ctx.get_logits_ith(i), shape=(n_vocab,))
            return int(logits.argmax())

        drafts = DraftSource(source)
        size = draft_tokens
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        generated: list[int] = []
        text = ""
        stop_reason = "max_tokens"
        token = argmax(-1)
        done = False
        while not done:
            # `token` is chosen but not yet in the cache; check it like any output token.
            if cancel.is_set():
                stop_reason = "cancelled"
                break
            if token in stop_tokens or is_end(token):
                stop_reason = "eos"
                break
            generated.append(token)
            text += decoder.decode(llm.detokenize([token]))
            if should_stop(text):
                stop_reason = "stopped"
                break
            if len(generated) >= max_tokens:
                break
            room_left = max_tokens - len(generated)
            draft, draft_end = drafts.draft(generated, min(size, room_left))
            batch = [token, *draft]
            n_past = llm.n_tokens
            llm._batch.set_batch(batch=batch, n_past=n_past, logits_all=True)
            ctx.decode(llm._batch)
            llm.input_ids[n_past : n_past + len(batch)] = batch
            stats.decode_calls += 1
            stats.drafted += len(draft)
            # The model's choice after each batch token; draft tokens it agrees with stand.
            kept = 0
            token = argmax(0)
            for i, proposed in enumerate(draft):
                if proposed != token:
                    break
                kept += 1
                stats.accepted += 1
                if token in stop_tokens or is_end(token):
                    stop_reason, done = "eos", True
                    break
                generated.append(token)
                text += decoder.decode(llm.detokenize([token]))
                if should_stop(text):
                    stop_reason, done = "stopped", True
                    break
                if len(generated) >= max_tokens:
                    done = True
                    break
                token = argmax(i + 1)
            llm.n_tokens = n_past + 1 + kept
            ctx.kv_cache_seq_rm(0, llm.n_tokens, -1)
            if kept:
                drafts.hint = draft_end - (len(draft) - kept)
            # Copying: draft more; where the rewrite departs from its source, verify fewer
            # tokens (each one costs a row of logits, wasted where the model disagrees).
            size = min(draft_tokens, size * 2) if kept == len(draft) else max(2, kept + 1)
        ended = time.perf_counter()
        generation = Generation(
            text=text,
            tokens_generated=len(generated),
            prompt_tokens=len(prompt),
            prompt_tokens_evaluated=len(prompt) - common,
            stop_reason=stop_reason,
            prompt_ms=(first_at - started) * 1000,
            generation_ms=(ended - first_at) * 1000,
        )
        return generation, stats
    finally:
        if saved is not None:
            _restore_sequence(llm, saved)
        else:
            llm._requires_eval = True


@dataclass
class _Saved:
    data: ctypes.Array
    size: int
    tokens: list[int]


def _save_sequence(llm) -> _Saved | None:  # noqa: ANN001
    import llama_cpp

    if llm.n_tokens == 0:
        return None
    size = llama_cpp.llama_state_seq_get_size(llm._ctx.ctx, 0)
    data = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(llm._ctx.ctx, data, size, 0)
    if written != size:
        return None
    return _Saved(data, size, llm.input_ids[: llm.n_tokens].tolist())


def _restore_sequence(llm, saved: _Saved) -> None:  # noqa: ANN001
    import llama_cpp

    llama_cpp.llama_memory_seq_rm(llm._ctx.memory, 0, -1, -1)
    read = llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, saved.data, saved.size, 0)
    if read != saved.size:
        # The cache could not be put back: empty it, the next call reads its prompt.
        llama_cpp.llama_memory_clear(llm._ctx.memory, True)
        llm.n_tokens = 0
    else:
        llm.input_ids[: len(saved.tokens)] = saved.tokens
        llm.n_tokens = len(saved.tokens)
    # The logits in the context are the rewrite's: the next call re-reads one token.
    llm._requires_eval = True
