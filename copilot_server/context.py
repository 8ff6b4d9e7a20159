"""What the model should see around the cursor, within token budgets.

The cursor's line is split in two (`line_prefix`, `line_suffix`) so the prompt builder
can put the typed part of the line last: typing then only appends to the prompt and the
KV cache keeps everything before it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import ContextSettings

TokenCounter = Callable[[str], int]

# The prefix window starts on a multiple of this many lines. A window that starts
# wherever the budget runs out would move by one line on every new line typed and change
# the first tokens of the prefix, forcing the model to re-read everything after them;
# aligned, it moves once every ALIGN_LINES lines (and is never over budget).
ALIGN_LINES = 16


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


# -- fast paths for the context engine ---------------------------------------------------


# Longer texts are counted but not remembered: a line that long is rare, and typing in it
# makes a new key per keystroke.
MAX_CACHED_CHARS = 4_096


class CachedTokenCounter:
    """Token counts with the model's tokenizer, cached per string (LRU).

    Windows are counted line by line, and the same lines are counted again on every
    keystroke: the cache turns ~60 tokenizer calls into ~60 dict look-ups.
    """

    def __init__(self, max_entries: int = 65_536, max_chars: int = 8_000_000) -> None:
        self.max_entries = max_entries
        # Keys are texts: a bound on their total size too (a few long lines must not
        # hold hundreds of MB), and texts longer than MAX_CACHED_CHARS are not kept.
        self.max_chars = max_chars
        self._chars = 0
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._tokenize: Callable[[str], Any] | None = None
        self._owner: object | None = None
        self.hits = 0
        self.misses = 0

    def bind(self, owner: object, tokenize: Callable[[str], Any]) -> CachedTokenCounter:
        """Count with `tokenize` (of `owner`, an engine); another owner empties the cache."""
        if owner is not self._owner:
            self._cache.clear()
            self._chars = 0
            self._owner = owner
        self._tokenize = tokenize
        return self

    def _store(self, text: str, cost: int) -> None:
        if len(text) > MAX_CACHED_CHARS:
            return
        cache = self._cache
        old = cache.pop(text, None)
        if old is not None:
            self._chars -= len(text)
        cache[text] = cost
        self._chars += len(text)
        while cache and (len(cache) > self.max_entries or self._chars > self.max_chars):
            dropped, _ = cache.popitem(last=False)
            self._chars -= len(dropped)

    def known(self, owner: object, texts: set[str]) -> set[str]:
        """Those of `texts` already counted with `owner`'s tokenizer."""
        if owner is not self._owner:
            return set()
        return {text for text in texts if text in self._cache}

    def add(self, owner: object, counts: dict[str, int]) -> None:
        """Counts taken ahead with `owner`'s tokenizer (dropped if another owner has
        taken over); the oldest entries make room."""
        if owner is not self._owner and self._owner is not None:
            return
        self._owner = owner
        for text, cost in counts.items():
            self._store(text, cost)

    def __call__(self, text: str) -> int:
        if not text:
            return 0
        cache = self._cache
        cost = cache.get(text)
        if cost is not None:
            self.hits += 1
            cache.move_to_end(text)
            return cost
        self.misses += 1
        assert self._tokenize is not None, "bind() the counter to a tokenizer first"
        cost = len(self._tokenize(text))
        self._store(text, cost)
        return cost


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
