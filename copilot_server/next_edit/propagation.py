"""Next edits without a model: the change the user just made, offered where it still applies.

The last hunk replaced A with B. Where A's pattern still stands in the file, the same
change is offered, nearest to the cursor first:

- a rename (`total` → `subtotal`, `self.get` → `self.fetch`): every other whole-word
  use of the old name (attributes only where the edit was an attribute);
- a changed literal, operator or call (`timeout=30` → `timeout=60`, `== None` → `is None`):
  the change widened by whole tokens on its line until it names something (an identifier
  that is not a keyword), then that exact text elsewhere;
- an argument added at the end (or start) of a call's arguments (`load(path)` →
  `load(path, strict=True)`): every other call of the same function gets it too, whatever
  its own arguments are.

Each rule searches outward from the cursor with a literal-first regular expression and
looks closer only at the nearest candidates: a request on a 5,000-line file takes a few
ms of server time (`copilot-server bench next-edit` measures it).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from ..documents.history import Hunk
from ..sequences import common_prefix_len, common_suffix_len
from ..syntax.languages import DEFINITION_WORDS, KEYWORDS_AND_LITERALS
from ..syntax.text import comment_start
from .diffing import Edit

SOURCE = "propagation"

_WORD_CHAR = re.compile(r"[\w$]")
_IDENTIFIER = re.compile(r"[^\W\d][\w$]*|\$[\w$]*")
_TOKEN = re.compile(r"[\w$]+|[ \t]+|[^\w\s]")
# Tokens of context taken on each side of a change while looking for a specific pattern.
MAX_CONTEXT_TOKENS = 4
# Candidates (nearest by characters) ordered by lines and checked for comments/strings.
NEAREST_CANDIDATES = 64
# The first search window around the cursor (characters each side), then 8x larger.
SEARCH_WINDOW = 8_000
# A one-letter name is renamed within this many lines of the edit (about its function).
LOCAL_LINES = 25
# A call's arguments are searched for their closing bracket this far at most.
MAX_CALL_CHARS = 2_000
_OPEN, _CLOSE = "([{", ")]}"


@dataclass(frozen=True)
class Change:
    """The last hunk widened to whole tokens: `old` became `new`, now at [start, end)."""

    old: str
    new: str
    start: int
    end: int


def widen(text: str, hunk: Hunk) -> Change:
    """Grow the hunk to whole identifiers on both sides: no rule replaces half a word."""
    start, end = hunk.start, hunk.end
    while start > 0 and _WORD_CHAR.match(text[start - 1]):
        start -= 1
    while end < len(text) and _WORD_CHAR.match(text[end]):
        end += 1
    left = text[start : hunk.start]
    right = text[hunk.end : end]
    return Change(left + hunk.old + right, left + hunk.new + right, start, end)


def propagate(
    text: str, hunk: Hunk, cursor: int, language: str = "", limit: int = 20
) -> list[Edit]:
    """Edits that repeat `hunk` elsewhere in `text`, nearest to `cursor` first. Only where
    the user's edit was of the same kind: code to code, comment to comment, string to
    string (a renamed variable is not renamed inside a sentence that uses the word)."""
    if hunk.end > len(text) or text[hunk.start : hunk.end] != hunk.new:
        return []  # the history is behind the text: say nothing rather than guess
    if "\n" in hunk.old or "\n" in hunk.new:
        return []  # multi-line edits are the model's job
    change = widen(text, hunk)
    if change.old == change.new or not change.old.strip():
        edits = _call_arguments(text, hunk, change, cursor)
    else:
        edits = _call_arguments(text, hunk, change, cursor) or _same_text(text, change, cursor)
    if not edits:
        return []
    kinds = Kinds(text, language)
    mine = kinds.at(change.start)
    edits = [e for e in edits if kinds.at(e.start) == mine]
    edits.sort(key=lambda e: _distance(text, e, cursor))
    return edits[:limit]


def _matches_near(regex: re.Pattern[str], text: str, lo: int, hi: int, cursor: int) -> list[int]:
    """Where `regex` matches in [lo, hi), searched outward from the cursor in growing
    windows until enough are found: a name used thousands of times in a long file costs
    the lines around the cursor, not the whole file. Windows end at line starts, so a
    pattern (never multi-line) is not cut at a window's edge."""
    size = SEARCH_WINDOW
    while True:
        a = max(lo, cursor - size)
        b = min(hi, cursor + size)
        if a > lo:
            a = text.rfind("\n", lo, a) + 1 or lo
        if b < hi:
            nl = text.find("\n", b, hi)
            b = hi if nl < 0 else nl + 1
        found = [m.start() for m in regex.finditer(text, a, b)]
        if len(found) >= NEAREST_CANDIDATES or (a <= lo and b >= hi):
            return found
        size *= 8


def _nearest(positions: list[int], cursor: int) -> list[int]:
    """A name used 500 times in a long file: only the nearest few are worth a closer look
    (the per-candidate work is in Python: call brackets, comments, line distances)."""
    if len(positions) > NEAREST_CANDIDATES:
        positions = sorted(positions, key=lambda p: abs(p - cursor))[:NEAREST_CANDIDATES]
    return positions


# -- rule: the same text elsewhere ---------------------------------------------------------


def _same_text(text: str, change: Change, cursor: int) -> list[Edit]:
    pattern = _specific_pattern(text, change)
    if pattern is None:
        return []
    old, new = pattern.old, pattern.new
    regex = _pattern_regex(old)
    mine_start, mine_end = change.start - pattern.lead, change.end + pattern.trail
    lo, hi = 0, len(text)
    if pattern.local:
        lo, hi = _lines_around(text, change.start, change.end, LOCAL_LINES)
    word_start = bool(_WORD_CHAR.match(old[0]))
    positions = []
    for at in _matches_near(regex, text, lo, hi, cursor):
        if word_start and at > 0:
            # The start of a whole word; an attribute rename touches attributes only, a
            # name rename never touches them. (Checked here, not as a look-behind: a
            # pattern that starts with its literal text is searched many times faster.)
            before = text[at - 1]
            if (
                (before != ".")
                if pattern.attribute
                else (before == "." or _WORD_CHAR.match(before))
            ):
                continue
        elif word_start and pattern.attribute:
            continue
        if at < mine_end and at + len(old) > mine_start:
            continue  # the user's own edit
        if text.startswith(new, at) or text.endswith(new, 0, at + len(old)):
            continue  # already changed (B contains A: `x` → `x.y` must not make `x.y.y`)
        positions.append(at)
    # What differs between old and new is the same at every place: trimmed once.
    prefix, suffix = _shared_ends(old, new)
    replacement = new[prefix : len(new) - suffix]
    return [
        Edit(at + prefix, at + len(old) - suffix, replacement, SOURCE)
        for at in _nearest(positions, cursor)
    ]


@dataclass(frozen=True)
class _Pattern:
    old: str
    new: str
    lead: int  # characters of context before the change
    trail: int  # and after it
    attribute: bool  # an attribute rename (`.name`)
    local: bool = False  # a one-letter name: only the lines around the edit (its scope)


def _specific_pattern(text: str, change: Change) -> _Pattern | None:
    """The change with enough whole-token context on its line to name something; None
    when the line gives none."""
    old, new = change.old, change.new
    attribute = change.start > 0 and text[change.start - 1] == "."
    if _IDENTIFIER.fullmatch(old) and _IDENTIFIER.fullmatch(new):
        if _is_specific(old):
            return _Pattern(old, new, 0, 0, attribute)
        if len(old) == 1:
            # `w` -> `width`: one letter names a local; rename it near the edit only.
            return _Pattern(old, new, 0, 0, attribute, local=True)
    line_start = text.rfind("\n", 0, change.start) + 1
    line_end = text.find("\n", change.end)
    line_end = len(text) if line_end < 0 else line_end
    lefts = _grouped(_TOKEN.findall(text[line_start : change.start])[::-1], before=True)
    rights = _grouped(_TOKEN.findall(text[change.end : line_end]), before=False)
    # The least context that names something; left context first (`timeout=` in front of
    # a changed number says more than the `)` after it).
    for total in range(2 * MAX_CONTEXT_TOKENS + 1):
        for n_left in range(min(total, MAX_CONTEXT_TOKENS), -1, -1):
            n_right = total - n_left
            if n_right > MAX_CONTEXT_TOKENS or n_left > len(lefts) or n_right > len(rights):
                continue
            left = "".join(reversed(lefts[:n_left]))
            right = "".join(rights[:n_right])
            if _is_specific(left + old + right):
                # Without left context an edit after a dot stays an attribute edit.
                dotted = attribute and not left
                return _Pattern(
                    left + old + right, left + new + right, len(left), len(right), dotted
                )
    return None


def _grouped(tokens: list[str], before: bool) -> list[str]:
    """Tokens outward from the change, each with the whitespace between it and the change."""
    out: list[str] = []
    pending = ""
    for token in tokens:
        if token.isspace():
            pending += token
            continue
        out.append(token + pending if before else pending + token)
        pending = ""
    return out


def _is_specific(pattern: str) -> bool:
    return any(
        len(word) >= 2 and word not in KEYWORDS_AND_LITERALS and not word[0].isdigit()
        for word in re.findall(r"[\w$]+", pattern)
    )


def _lines_around(text: str, start: int, end: int, lines: int) -> tuple[int, int]:
    lo = start
    for _ in range(lines + 1):
        lo = text.rfind("\n", 0, lo)
        if lo < 0:
            lo = 0
            break
    hi = end
    for _ in range(lines + 1):
        hi = text.find("\n", hi + 1)
        if hi < 0:
            hi = len(text)
            break
    return lo, hi


def _pattern_regex(old: str) -> re.Pattern[str]:
    body = re.escape(old)
    if _WORD_CHAR.match(old[-1]):
        body += r"(?![\w$])"
    return re.compile(body)


def _shared_ends(old: str, new: str) -> tuple[int, int]:
    """Lengths of the common prefix and (non-overlapping) common suffix of two strings."""
    prefix = common_prefix_len(old, new)
    return prefix, common_suffix_len(old, new, prefix)


# -- rule: an argument added to a call -----------------------------------------------------


def _call_arguments(text: str, hunk: Hunk, change: Change, cursor: int) -> list[Edit]:
    """`f(a)` → `f(a, b)` (or `f(b, a)`): the same argument for every other call of f."""
    if hunk.old or not hunk.new.strip(" ,"):
        return []
    inserted = hunk.new
    if inserted.lstrip().startswith(",") and text[hunk.end : hunk.end + 1] in _CLOSE:
        at_end = True
        close = hunk.end
        open_ = _matching_open(text, close)
    elif inserted.rstrip().endswith(",") and hunk.start > 0 and text[hunk.start - 1] in _OPEN:
        at_end = False
        open_ = hunk.start - 1
    else:
        return []
    if open_ is None or text[open_] != "(":
        return []
    callee = _callee_before(text, open_)
    if callee is None:
        return []
    name, is_attribute = callee
    bare = inserted.strip(" ,")
    regex = re.compile(
        (r"(?<=\.)" if is_attribute else r"(?<![\w$.])") + re.escape(name) + r"[ \t]*\("
    )
    calls = {match.end() - 1: match.start() for match in regex.finditer(text)}
    edits = []
    for paren in _nearest(list(calls), cursor):
        if paren == open_ or _defines(text, calls[paren]):
            continue
        close = _matching_close(text, paren)
        if close is None:
            continue
        arguments = text[paren + 1 : close]
        if bare in arguments:
            continue  # this call has it already
        if not arguments.strip():
            edits.append(Edit(paren + 1, close, bare, SOURCE))
        elif at_end:
            edits.append(Edit(close, close, inserted, SOURCE))
        else:
            edits.append(Edit(paren + 1, paren + 1, inserted, SOURCE))
    return edits


def _callee_before(text: str, paren: int) -> tuple[str, bool] | None:
    """The name called at `paren` (its last dotted part) and whether it is an attribute;
    None for a definition (`def f(`), a keyword (`if (`) or no name."""
    end = paren
    while end > 0 and text[end - 1] in " \t":
        end -= 1
    start = end
    while start > 0 and _WORD_CHAR.match(text[start - 1]):
        start -= 1
    name = text[start:end]
    if not name or not _IDENTIFIER.fullmatch(name) or name in KEYWORDS_AND_LITERALS:
        return None
    if _defines(text, start):
        return None
    return name, start > 0 and text[start - 1] == "."


def _defines(text: str, name_start: int) -> bool:
    line_start = text.rfind("\n", 0, name_start) + 1
    words = text[line_start:name_start].split()
    return bool(words) and words[-1] in DEFINITION_WORDS


def _matching_close(text: str, open_: int) -> int | None:
    depth = 0
    quote = ""
    limit = min(len(text), open_ + MAX_CALL_CHARS)
    i = open_
    while i < limit:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _matching_open(text: str, close: int) -> int | None:
    depth = 0
    limit = max(0, close - MAX_CALL_CHARS)
    for i in range(close, limit - 1, -1):
        ch = text[i]
        if ch in _CLOSE:
            depth += 1
        elif ch in _OPEN:
            depth -= 1
            if depth == 0:
                return i
    return None


def _distance(text: str, edit: Edit, cursor: int) -> tuple[int, int]:
    """Lines away from the cursor; on the bench the author's next edit was below the last
    one twice as often as above it, so a line above counts double."""
    if edit.start >= cursor:
        return (text.count("\n", cursor, edit.start), edit.start - cursor)
    return (2 * text.count("\n", edit.end, cursor) + 1, cursor - edit.end)


# -- code, comment or string ---------------------------------------------------------------

_LINE_COMMENT = {
    "python": "#",
    "ruby": "#",
    "shellscript": "#",
    "lua": "--",
}
_SLASH_LANGUAGES = frozenset(
    "javascript javascriptreact typescript typescriptreact go rust java c cpp csharp "
    "kotlin swift scala php".split()
)


class Kinds:
    """Whether an offset is in code, a comment or a string, by a lexical scan: its line
    from the start (quotes, line comments) and, for block comments and Python's
    triple-quoted strings, their positions found once per text. Unknown languages are
    all code."""

    def __init__(self, text: str, language: str) -> None:
        self.text = text
        self.language = language
        self.comment = _LINE_COMMENT.get(language) or ("//" if language in _SLASH_LANGUAGES else "")
        self._blocks: list[tuple[int, int, str]] = []
        if language == "python":
            for match in re.finditer(r'"""|\'\'\'', text):
                self._toggle(match.start(), match.end(), match.group(), "string")
        elif language in _SLASH_LANGUAGES:
            for match in re.finditer(r"/\*.*?(?:\*/|\Z)", text, re.S):
                self._blocks.append((match.start(), match.end(), "comment"))
        self._starts = [b[0] for b in self._blocks]

    def _toggle(self, start: int, end: int, quote: str, kind: str) -> None:
        if self._blocks and self._blocks[-1][1] == -1:
            if self._blocks[-1][2] == quote:
                self._blocks[-1] = (self._blocks[-1][0], end, kind)
            return
        if self._blocks and start < self._blocks[-1][1]:
            return
        self._blocks.append((start, -1, quote))

    def at(self, offset: int) -> str:
        if not self.comment:
            return "code"
        index = bisect.bisect_right(self._starts, offset) - 1
        if index >= 0:
            start, end, kind = self._blocks[index]
            if end == -1 or offset < end:
                return kind if end != -1 else "string"
        line_start = self.text.rfind("\n", 0, offset) + 1
        return _line_kind(self.text[line_start:offset], self.comment)


def _line_kind(before: str, comment: str) -> str:
    """The kind at the end of `before` (a line up to an offset)."""
    start, quote = comment_start(before, comment)
    if start is not None:
        return "comment"
    return "string" if quote else "code"
