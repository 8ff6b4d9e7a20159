"""Prefix/suffix windows of whole lines within token budgets, aligned for KV reuse."""

from __future__ import annotations

from ..completion import CompletionRequest
from ..config import ContextSettings, Settings
from ..engines.base import Engine
from ..engines.tokens import token_cache
from .types import Context, TokenCounter


def default_context_builder(
    request: CompletionRequest, engine: Engine, settings: Settings
) -> Context:
    return plain_context(
        request.path,
        request.language,
        request.text,
        request.offset,
        settings.context,
        token_cache(engine),
    )


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


def line_window_before(
    text: str, line_start: int, cursor_line: int, budget: int, count: TokenCounter, align: int = 1
) -> tuple[int, int, int]:
    """(first line, its offset, tokens) of the window of whole lines ending at `line_start`.

    The window is the longest run that fits `budget`, then shortened so that it starts
    on a multiple of `align` (unless that would leave fewer lines than the alignment, or
    it reaches the top of the file). Walks back from the cursor: O(window), not O(file).
    """
    starts: list[int] = []
    used: list[int] = []
    total = 0
    pos = line_start
    while pos > 0:
        previous = text.rfind("\n", 0, pos - 1) + 1
        cost = count(text[previous:pos])
        if total + cost > budget:
            break
        total += cost
        pos = previous
        starts.append(pos)
        used.append(total)
    first_line = cursor_line - len(starts)
    if first_line == 0 or align <= 1:
        return first_line, pos, total
    aligned = -(-first_line // align) * align
    if aligned >= cursor_line:
        return first_line, pos, total
    k = cursor_line - 1 - aligned
    return aligned, starts[k], used[k]


def line_window_after(
    text: str, line_end: int, budget: int, count: TokenCounter
) -> tuple[int, int]:
    """(end offset, tokens) of the window of whole lines after the cursor's line.

    The window starts at `line_end` (the cursor line's "\n"); each step takes the next
    "\n" and the line after it. When the budget cuts the window short it ends after a
    blank line in its second half if there is one: a suffix that stops between two
    blocks reads as a whole.
    """
    n = len(text)
    pos = line_end
    total = 0
    kept = 0
    truncated = False
    blank_end, blank_total = -1, 0
    while pos < n:
        nl = text.find("\n", pos + 1)
        end = n if nl < 0 else nl
        segment = text[pos:end]
        cost = count(segment)
        if total + cost > budget:
            truncated = True
            break
        total += cost
        kept += 1
        if kept > 1 and not segment.strip():
            blank_end, blank_total = end, total
        pos = end
    if truncated and blank_end > line_end and (blank_end - line_end) * 2 >= pos - line_end:
        return blank_end, blank_total
    return pos, total
