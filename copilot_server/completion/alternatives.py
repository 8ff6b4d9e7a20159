"""More suggestions to cycle through (Alt+] / <M-]>), made only when the user asks.

The first suggestion is the greedy one. Alternatives branch where it starts: the next
likeliest tokens there, each continued greedily through the same stop rules. Branching
there gives suggestions that differ from their first word, and the same list every time
(sampling whole suggestions at a temperature from a 0.5B model mostly repeats the greedy
one, and cycling twice would show a different list). Each branch re-reads one token, as
the KV cache keeps the prompt, and decodes only its own tokens.

The model often writes some text again first: with token healing (prompts/healing.py)
the prompt ends before the text the cursor cut (a word's start, the typed indentation),
and without it the typed indentation is left out of the prompt for the model to write.
Branching on how that text is written gives the same suggestion again (8 spaces as one
token, or 7 and " return"). So the branches are the tokens that write all of it and go
past it, at the first step where there are such tokens ( ".loads" for a cut `json.lo`);
while there are none the greedy path is followed (7 spaces, then " return", " data"...).
Continuing from a tokenization of the text itself was measured worse: after ".", "lo" the
model wrote "a(f)" and "open()" for `json.lo`, and after an 8-space token " return" with
one space too many.

Two suggestions count as one when their first non-blank lines are the same: the user sees
the same text at the cursor (without this, a third of the alternatives were the first
suggestion re-indented, or moved to the next line).

Engines that do not show their next-token logits (the remote ones) sample instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..engines.base import Engine, capabilities_of
from ..prompts import Prompt
from ..trimming import Trimmer

# Branches tried beyond the number wanted: a branch may trim to nothing (a token that
# ends the suggestion) or to a suggestion already in the list.
EXTRA_TRIES = 2
# Candidates looked at per step: enough to find several that finish a healed text (most
# of the likeliest tokens after a cut word spell something else).
CANDIDATES = 64
# Tokens the model may take to write a healed text again (it is a few characters).
MAX_HEAL_STEPS = 8
# Remote engines: sampled, warm enough to leave the greedy path, cool enough to stay code.
SAMPLING_TEMPERATURE = 0.7


@dataclass
class Alternatives:
    """Suggestions other than the first, and what they cost."""

    texts: list[str] = field(default_factory=list)
    model_calls: int = 0
    tokens_generated: int = 0
    prompt_tokens_evaluated: int = 0
    ms: float = 0.0


def same(a: str, b: str) -> bool:
    """Two suggestions that show the same text at the cursor."""
    return _first_line(a) == _first_line(b)


def _first_line(text: str) -> str:
    for line in text.split("\n"):
        if line.strip():
            return line.strip()
    return ""


@dataclass(frozen=True)
class _BranchPoint:
    tokens: list[int]  # the prompt, plus the tokens that wrote part of the healed text
    written: str  # the text those tokens wrote
    candidates: list[tuple[int, str]]  # tokens there that go past the healed text, best first
    greedy_first: bool  # candidates[0] is where the greedy path (the first suggestion) goes


def generate(
    engine: Engine,
    prompt: Prompt,
    make_trimmer: Callable[[], Trimmer],
    to_text: Callable[[str], str],
    cancel: threading.Event,
    *,
    count: int,
    exclude: list[str],
    max_tokens: int,
    heal: str = "",
) -> Alternatives:
    """Up to `count` suggestions for `prompt`, distinct from `exclude` and from each other
    after trimming. `heal`: the text the model writes first, which `to_text` drops from its
    raw text to make the suggestion. Runs on the model thread; stops early when `cancel`
    is set."""
    started = time.perf_counter()
    out = Alternatives()
    seen = list(exclude)

    def keep(text: str | None) -> None:
        if text and text.strip() and not any(same(text, s) for s in seen):
            seen.append(text)
            out.texts.append(text)

    branches = capabilities_of(engine).branches
    candidates = engine.first_token_candidates if branches else None  # type: ignore[attr-defined]
    if count <= 0:
        pass
    elif candidates is not None:
        point = _branch_point(engine, prompt, heal, candidates)
        ranked = point.candidates if point is not None else []
        if point is not None and point.greedy_first:
            ranked = ranked[1:]  # the first suggestion (greedy, temperature 0: the default)
        tries = count + EXTRA_TRIES
        for token, piece in ranked:
            if len(out.texts) >= count or tries <= 0 or cancel.is_set():
                break
            tries -= 1
            trimmer = make_trimmer()
            keep(
                _branch(
                    engine, prompt, point, token, piece, trimmer, to_text, cancel, max_tokens, out
                )
            )
    else:
        for _ in range(count + EXTRA_TRIES):
            if len(out.texts) >= count or cancel.is_set():
                break
            sampled = _suggestion(
                engine,
                prompt.tokens,
                prompt,
                make_trimmer(),
                to_text,
                out,
                max_tokens=max_tokens,
                cancel=cancel,
                temperature=SAMPLING_TEMPERATURE,
                heal=_heal_of(prompt),
            )
            keep(sampled)
    out.ms = (time.perf_counter() - started) * 1000
    return out


def _branch_point(
    engine: Engine, prompt: Prompt, heal: str, candidates: Callable[[list[int], int], list[int]]
) -> _BranchPoint | None:
    """The first step where tokens write the rest of `heal` and more; before it, the greedy
    path's tokens inside `heal`. None when no likely token agrees with `heal`."""
    tokens, written = list(prompt.tokens), ""
    ends = capabilities_of(engine).ends_generation
    end_of_generation = engine.is_end_of_generation if ends else None  # type: ignore[attr-defined]
    for _ in range(MAX_HEAL_STEPS):
        rest = heal[len(written) :]
        ranked = []
        for token in candidates(tokens, CANDIDATES):
            if token in prompt.stop_tokens or (end_of_generation and end_of_generation(token)):
                continue
            piece = engine.detokenize([token])
            if piece and "\ufffd" not in piece:  # not a piece of a multi-byte character
                ranked.append((token, piece))
        # Past it: tokens that write the rest of `heal` and something that shows (a blank
        # one only re-indents or moves down the suggestion).
        past = [(t, p) for t, p in ranked if p.startswith(rest) and p[len(rest) :].strip()]
        inside = [(t, p) for t, p in ranked if rest.startswith(p)]
        agreeing = [(t, p) for t, p in ranked if p.startswith(rest) or rest.startswith(p)]
        if past and (not rest or not inside or ranked.index(past[0]) < ranked.index(inside[0])):
            return _BranchPoint(tokens, written, past, greedy_first=agreeing[0] == past[0])
        if not inside:
            return None
        token, piece = inside[0]  # the greedy path writes more of the healed text first
        tokens, written = [*tokens, token], written + piece
    return None


def _branch(
    engine: Engine,
    prompt: Prompt,
    point: _BranchPoint,
    token: int,
    piece: str,
    trimmer: Trimmer,
    to_text: Callable[[str], str],
    cancel: threading.Event,
    max_tokens: int,
    out: Alternatives,
) -> str | None:
    """The greedy suggestion that goes on from the branch point with `token`."""
    first = point.written + piece  # the model's raw text so far, as `to_text` expects it
    out.tokens_generated += 1
    if max_tokens <= 1 or trimmer.should_stop(to_text(first)):
        return trimmer.finish(to_text(first))
    try:
        return _suggestion(
            engine,
            [*point.tokens, token],
            prompt,
            trimmer,
            to_text,
            out,
            first=first,
            max_tokens=max_tokens - 1,
            cancel=cancel,
            temperature=0.0,
        )
    except ValueError:  # one token more no longer fits the context window
        return None


def _suggestion(
    engine: Engine,
    tokens: list[int],
    prompt: Prompt,
    trimmer: Trimmer,
    to_text: Callable[[str], str],
    out: Alternatives,
    *,
    first: str = "",
    **options: Any,
) -> str | None:
    """One model call from `tokens`, after `first` (the raw text already written), counted
    in `out`; the suggestion it gave, None when cancelled. `options`: GenerateOptions'."""
    generation = engine.generate(
        tokens,
        should_stop=lambda raw: trimmer.should_stop(to_text(first + raw)),
        stop_tokens=prompt.stop_tokens,
        **options,
    )
    out.model_calls += 1
    out.tokens_generated += generation.tokens_generated
    out.prompt_tokens_evaluated += generation.prompt_tokens_evaluated
    if generation.stop_reason == "cancelled":
        return None
    return trimmer.finish(to_text(first + generation.text))


def _heal_of(prompt: Prompt) -> str:
    """The text the model must write first (token healing), "" when none."""
    healing = getattr(prompt, "healing", None)
    return prompt.heal if healing is not None and healing.tokens else ""
