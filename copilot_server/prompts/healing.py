"""Token healing: a suggestion may start inside the word, bracket or space run being typed.

The prompt ends with the typed part of the cursor's line. A model never saw a prompt end
at a token boundary that its tokenizer would not have made: after `    ret` (tokens
"   ", " ret") it treats " ret" as a finished name and writes ` = json.dumps(…`, where
the word was `return`. So the prompt ends at the last boundary the model could have
produced itself: the trailing token(s) that a longer vocabulary token could extend are
removed (at most MAX_TOKENS of them), and the first generated tokens are constrained to
those whose bytes extend the removed text or are a prefix of it, until the removed text
is written again. The suggestion shown is what follows it.

The lookup is a table of every token's bytes, sorted once per model (~0.6 s for a
150k vocabulary, at load): "tokens starting with X" is a contiguous range found by
bisection and "tokens that are a prefix of X" are len(X) dictionary look-ups. Planning a
heal costs a few bisections; the constraint is one numpy mask per constrained token
(`benchmarks/bench_healing.py` measures both).

Healing falls back to none where it cannot be satisfied or does not apply: a removed
text that is not whole characters (a token ending inside a multi-byte character, e.g.
after part of an emoji), an engine that cannot constrain its sampling (the remote ones;
see `plain_line`), or nothing longer in the vocabulary to extend the last token.
"""

from __future__ import annotations

import bisect
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engines.base import capabilities_of

# The last few tokens at most: a word being typed spans one or two tokens ("json.lo" is
# "json", ".lo"; "    retu" is "   ", " ret", "u"); more would only move the prompt's
# end further back, away from the KV cache, for nothing the model writes better.
MAX_TOKENS = 3
# A heal longer than this is not a word being typed (a long run of spaces or symbols).
MAX_BYTES = 48


class Vocabulary:
    """Every token's bytes, sorted for prefix search. Control tokens (empty bytes) are
    left out: they are never part of a text the user typed."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self.size = len(pieces)
        self.pieces = list(pieces)
        order = sorted((i for i, p in enumerate(self.pieces) if p), key=self.pieces.__getitem__)
        self._keys = [self.pieces[i] for i in order]
        self._ids = np.asarray(order, dtype=np.int64)
        self._exact: dict[bytes, list[int]] = {}
        for token in order:
            self._exact.setdefault(self.pieces[token], []).append(token)

    def piece(self, token: int) -> bytes:
        return self.pieces[token] if 0 <= token < self.size else b""

    def _range(self, prefix: bytes) -> tuple[int, int]:
        """[lo, hi) of the sorted tokens that start with `prefix`."""
        lo = bisect.bisect_left(self._keys, prefix)
        hi = bisect.bisect_left(self._keys, _after_all_extensions(prefix), lo)
        return lo, hi

    def count_starting_with(self, prefix: bytes) -> int:
        lo, hi = self._range(prefix)
        return hi - lo

    def extends(self, prefix: bytes) -> bool:
        """Some token is strictly longer than `prefix` and starts with it."""
        lo, hi = self._range(prefix)
        if hi - lo == 0:
            return False
        return hi - lo > len(self._exact.get(prefix, ()))

    def allowed(self, rest: bytes) -> np.ndarray:
        """Ids of the tokens that may come next while `rest` is still to be written: those
        that start with it and those that are a proper prefix of it."""
        lo, hi = self._range(rest)
        ids = [self._ids[lo:hi]]
        for end in range(1, len(rest)):
            exact = self._exact.get(rest[:end])
            if exact:
                ids.append(np.asarray(exact, dtype=np.int64))
        return np.concatenate(ids) if len(ids) > 1 else ids[0]


def _after_all_extensions(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string that starts with `prefix`."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return b"\xff" * (len(prefix) + 256)  # only 0xff bytes: past any real token
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


# -- one table per engine ----------------------------------------------------------------

_vocabularies: weakref.WeakKeyDictionary[Any, Vocabulary | None] = weakref.WeakKeyDictionary()


def vocabulary_for(engine: Any) -> Vocabulary | None:
    """The engine's sorted vocabulary, built once; None for an engine that cannot
    constrain its first tokens (no `token_pieces`, or it says it does not heal)."""
    if not capabilities_of(engine).heals_tokens:
        return None
    try:
        cached = _vocabularies.get(engine)
    except TypeError:  # not weakly referenceable: build every time (tests' stand-ins)
        cached = None
    if cached is not None:
        return cached
    pieces = engine.token_pieces()
    vocab = Vocabulary(pieces) if pieces else None
    try:
        _vocabularies[engine] = vocab
    except TypeError:
        pass
    return vocab


# -- planning: which tokens to take back -------------------------------------------------


@dataclass(frozen=True)
class Healing:
    """Prompt tokens taken back: `text` is what they spelled, for the model to write again
    (and for the suggestion to drop); `tokens` how many."""

    text: str = ""
    tokens: int = 0


NO_HEALING = Healing()


def plan(vocab: Vocabulary, tokens: Sequence[int], text: str) -> Healing:
    """The trailing tokens of `tokens` (which spell `text`, the end of the prompt) to take
    back: the last one when a longer token starts with its bytes, then each one before
    while it and what is taken back could still be part of one token."""
    if not tokens:
        return NO_HEALING
    last = vocab.piece(tokens[-1])
    if not last or not vocab.extends(last):
        return NO_HEALING
    removed, count = last, 1
    while count < min(MAX_TOKENS, len(tokens)):
        before = vocab.piece(tokens[-count - 1])
        joined = before + removed
        if not before or len(joined) > MAX_BYTES or not vocab.count_starting_with(joined):
            break
        removed, count = joined, count + 1
    encoded = text.encode("utf-8")
    if len(removed) > MAX_BYTES or not encoded.endswith(removed):
        return NO_HEALING  # the tokens do not spell the text's end (a tokenizer quirk)
    try:
        healed_text = removed.decode("utf-8")
    except UnicodeDecodeError:
        return NO_HEALING  # a token boundary inside a character: nothing safe to redo
    return Healing(healed_text, count)


# -- the constraint ----------------------------------------------------------------------


class Constraint:
    """A logits processor for llama-cpp-python: while the healed text is not yet written,
    every token that neither extends the rest of it nor is a prefix of it gets -inf.
    Greedy sampling then picks the likeliest allowed token. Tokens already generated are
    read from `input_ids` (prompt + output), so the processor keeps no state between
    calls; once the text is covered it returns the logits untouched."""

    def __init__(self, vocab: Vocabulary, text: str, prompt_tokens: int) -> None:
        self.vocab = vocab
        self.text = text.encode("utf-8")
        self.prompt_tokens = prompt_tokens
        self.masked = 0  # constrained steps, for tests and logs

    def rest(self, generated: Sequence[int]) -> bytes:
        """What of the healed text is still to be written after `generated`."""
        written = b"".join(self.vocab.piece(int(t)) for t in generated)
        if len(written) >= len(self.text):
            return b""
        return self.text[len(written) :]

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        generated = input_ids[self.prompt_tokens :]
        if len(generated) >= len(self.text):  # each allowed token writes at least a byte
            return scores
        rest = self.rest(generated)
        if not rest:
            return scores
        allowed = self.vocab.allowed(rest)
        allowed = allowed[allowed < len(scores)]
        if not len(allowed):
            return scores  # cannot happen (the removed tokens are allowed); never block
        self.masked += 1
        out = np.full_like(scores, -np.inf)
        out[allowed] = scores[allowed]
        return out
