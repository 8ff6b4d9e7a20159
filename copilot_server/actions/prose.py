"""Prose stop rules for explanations, run by the one rule runner (trimming/runner.py):
each answers None (go on) or the number of characters to keep."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..trimming.runner import decide

_SENTENCE_END = re.compile(r"[.!?](?=\s)")
_NOT_AN_END = ("e.g.", "i.e.", "etc.", "vs.")


def _sentence_ends(text: str) -> list[int]:
    """Offsets just after each sentence's final punctuation (followed by whitespace);
    list markers ("1.") and common abbreviations do not end a sentence."""
    ends = []
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        word = text[:end].rsplit(None, 1)[-1] if text[:end].strip() else ""
        if word.lower() in _NOT_AN_END or word[:-1].isdigit():
            continue
        ends.append(end)
    return ends


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def stop_at_fence(text: str, trimmer: ProseTrimmer) -> int | None:
    """A code block in an explanation restates the code: keep the prose before it."""
    match = re.search(r"(^|\n)[ \t]*```", text)
    return match.start() if match else None


def stop_at_code_echo(text: str, trimmer: ProseTrimmer) -> int | None:
    """A whole line of the code copied into the prose is restating, not explaining."""
    offset = 0
    for line in text.split("\n")[:-1]:  # complete lines only
        if line.strip() in trimmer.code_lines:
            return offset
        offset += len(line) + 1
    return None


def stop_at_repeated_sentence(text: str, trimmer: ProseTrimmer) -> int | None:
    """Small models loop: a sentence said twice ends the explanation before the repeat."""
    seen: set[str] = set()
    start = 0
    for end in _sentence_ends(text):
        key = _norm(text[start:end])
        if len(key) >= 12 and key in seen:
            return start
        seen.add(key)
        start = end
    return None


def stop_at_second_paragraph(text: str, trimmer: ProseTrimmer) -> int | None:
    """An explanation is one paragraph; after a blank line comes a step-by-step walk
    through the code (lists, headings), which restates it."""
    for match in re.finditer(r"\n[ \t]*\n(?=[ \t]*\S)", text):
        if re.search(r"[.!?:]\s*$", text[: match.start()]):  # a heading is not a paragraph
            return match.end()
    return None


def stop_at_sentence_cap(text: str, trimmer: ProseTrimmer) -> int | None:
    """Short by default: the prompt asks for a few sentences; a 0.5B model writes five or
    six (measured: 88 tokens where three sentences took ~50), so stop at the cap."""
    ends = _sentence_ends(text)
    if len(ends) >= trimmer.max_sentences:
        return ends[trimmer.max_sentences - 1]
    return None


PROSE_RULES = (
    stop_at_fence,
    stop_at_code_echo,
    stop_at_repeated_sentence,
    stop_at_second_paragraph,
    stop_at_sentence_cap,
)


@dataclass
class ProseTrimmer:
    """Streaming stop decisions for an explanation, then a clean ending."""

    code: str
    max_sentences: int = 3
    cut: int | None = None
    fired: str | None = None
    code_lines: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Only distinctive lines count: "return x" or "}" may appear in prose by chance.
        self.code_lines = frozenset(
            ln.strip() for ln in self.code.splitlines() if len(ln.strip()) >= 12
        )

    def should_stop(self, text: str) -> bool:
        verdict = decide(PROSE_RULES, text, self)
        if verdict is None:
            return False
        self.cut, self.fired = verdict.cut, verdict.rule
        return True

    def finish(self, text: str, truncated: bool) -> str:
        """The explanation to show: cut where a rule fired; a reply the token budget cut
        mid-sentence ends at its last whole sentence."""
        if self.cut is None:
            self.should_stop(text + "\n")
        if self.cut is not None:
            text = text[: self.cut]
            truncated = False
        if truncated:
            ends = _sentence_ends(text + " ")
            if ends:
                text = text[: ends[-1]]
        text = text.strip()
        if text.endswith(":"):
            # "Here is how it works:" introduces the walk-through that was cut: drop it.
            ends = _sentence_ends(text)
            text = text[: ends[-1]].strip() if ends else text.rstrip(":")
        return text
