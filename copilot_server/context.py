"""What the model should see around the cursor, within token budgets.

The cursor's line is split in two (`line_prefix`, `line_suffix`) so the prompt builder
can put the typed part of the line last: typing then only appends to the prompt and the
KV cache keeps everything before it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .config import ContextSettings

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Snippet:
    """A piece of other code shown to the model (imports, a definition, a similar chunk)."""

    kind: str  # "imports" | "scope" | "definition" | "similar"
    path: str
    text: str
    tokens: int = 0


@dataclass(frozen=True)
class Context:
    path: str
    language: str
    prefix: str  # whole lines before the cursor's line (window)
    line_prefix: str  # the cursor's line up to the cursor
    line_suffix: str  # the cursor's line after the cursor
    suffix: str  # whole lines after the cursor's line (window), starting with "\n"
    snippets: tuple[Snippet, ...] = field(default_factory=tuple)
    # Parts' token counts, for the preview and the logs.
    token_counts: dict[str, int] = field(default_factory=dict)

    @property
    def indent(self) -> str:
        line = self.line_prefix
        return line[: len(line) - len(line.lstrip(" \t"))]


def window_before(text: str, budget: int, count: TokenCounter) -> str:
    """The longest run of whole lines ending `text` that fits `budget` tokens."""
    if not text:
        return ""
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        cost = count(line)
        if used + cost > budget:
            break
        kept.append(line)
        used += cost
    return "".join(reversed(kept))


def window_after(text: str, budget: int, count: TokenCounter) -> str:
    """The longest run of whole lines starting `text` that fits `budget` tokens."""
    if not text:
        return ""
    kept: list[str] = []
    used = 0
    for line in text.splitlines(keepends=True):
        cost = count(line)
        if used + cost > budget:
            break
        kept.append(line)
        used += cost
    return "".join(kept)


def split_at_cursor(text: str, offset: int) -> tuple[str, str, str, str]:
    """(lines before, line prefix, line suffix, lines after) around `offset`."""
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    if line_end < 0:
        line_end = len(text)
    return text[:line_start], text[line_start:offset], text[offset:line_end], text[line_end:]


def plain_context(
    path: str,
    language: str,
    text: str,
    offset: int,
    settings: ContextSettings,
    count: TokenCounter,
) -> Context:
    """Prefix/suffix windows only: what a language without a grammar still gets."""
    before, line_prefix, line_suffix, after = split_at_cursor(text, offset)
    prefix = window_before(before, settings.prefix_tokens, count)
    suffix = window_after(after, settings.suffix_tokens, count)
    return Context(
        path=path,
        language=language,
        prefix=prefix,
        line_prefix=line_prefix,
        line_suffix=line_suffix,
        suffix=suffix,
        token_counts={"prefix": count(prefix), "suffix": count(suffix)},
    )
