"""Decide, while the model streams, when a suggestion is whole; then clean it up.

Each rule is a small named function over the text generated so far. It answers None
(go on) or a cut position: the engine stops, and the suggestion is the text up to the
cut. Rules only look at complete lines (plus the first, partial line for single-line
mode), so a decision never depends on how the model split its tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

OPENERS = (":", "{", "(", "[", "=>", "->", " do", " then")
CLOSERS = set(")]}>\"'`;, \t")


@dataclass(frozen=True)
class TrimRequest:
    line_prefix: str
    line_suffix: str
    suffix: str  # lines after the cursor's line, starting with "\n"
    language: str = ""
    max_lines: int = 12
    prefix: str = ""  # lines before the cursor's line (window), for the enclosing block

    @property
    def single_line(self) -> bool:
        """Mid-expression → finish this line; empty line or after a block opener → a block."""
        rest = self.line_suffix.strip()
        if rest and not set(rest) <= CLOSERS:
            return True
        stripped = self.line_prefix.strip()
        if not stripped:
            return False
        return not stripped.endswith(OPENERS)

    @property
    def base_indent(self) -> int:
        """Lines of the suggestion indented less than this have left the block."""
        line = self.line_prefix
        indent = _indent_width(line)
        if line.strip():
            # After an opener the block is deeper than the opener's line; a dedent to the
            # opener's own level ends it.
            return indent + 1
        return indent

    @property
    def parent_indent(self) -> int | None:
        """Indentation of the line that opened the block around the cursor."""
        base = _indent_width(self.line_prefix) if not self.line_prefix.strip() else None
        if base is None:
            return None
        for line in reversed(self.prefix.split("\n")):
            if line.strip() and _indent_width(line) < base:
                return _indent_width(line)
        return None

    @property
    def next_suffix_indent(self) -> int | None:
        for line in self.suffix.split("\n"):
            if line.strip():
                return _indent_width(line)
        return None

    @property
    def next_suffix_line(self) -> str:
        for line in self.suffix.split("\n"):
            if line.strip():
                return line.strip()
        return ""


Rule = Callable[[TrimRequest, list[str], bool], int | None]
# A rule gets the request, the suggestion's lines (the first joined to line_prefix) and
# whether the last line is complete; it returns the number of lines to keep, or None.


def _indent_width(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip(" "))


def stop_after_first_line(req: TrimRequest, lines: list[str], complete: bool) -> int | None:
    """Single-line mode: the first newline ends the suggestion."""
    if req.single_line and len(lines) > 1:
        return 1
    return None


def stop_at_dedent(req: TrimRequest, lines: list[str], complete: bool) -> int | None:
    """A non-empty line indented less than the block being written leaves the scope.

    On an empty line the block's level is the cursor's indentation or, when the model
    indents further (cursor at column 0 inside a body), its first line's indentation.
    When nothing after the cursor continues the enclosing block (end of a function), the
    suggestion may go on at that block's level too: it finishes what the user is writing
    (`config = json.load(f)` then `return config`), and stops when it leaves that block.
    """
    base = req.base_indent
    if not req.line_prefix.strip():
        first = next((ln for ln in [req.line_prefix + lines[0], *lines[1:]] if ln.strip()), None)
        if first is not None:
            base = max(base, _indent_width(first))
        parent = req.parent_indent
        following = req.next_suffix_indent
        if parent is not None and (following is None or following < parent) and parent > 0:
            base = min(base, parent)
    # A partial last line counts once it shows a non-blank character: its indent is known.
    for index in range(1, len(lines)):
        line = lines[index]
        if line.strip() and _indent_width(line) < base:
            return index
    return None


def stop_at_suffix_repeat(req: TrimRequest, lines: list[str], complete: bool) -> int | None:
    """The model started writing what already follows the cursor."""
    target = req.next_suffix_line
    if not target or len(target) < 2:
        return None
    last = len(lines) if complete else len(lines) - 1
    for index in range(1, last):
        if lines[index].strip() == target:
            return index
    return None


def stop_at_repeated_lines(req: TrimRequest, lines: list[str], complete: bool) -> int | None:
    """Small models loop: a non-trivial line seen twice in a row ends the suggestion."""
    last = len(lines) if complete else len(lines) - 1
    for index in range(2, last):
        line = lines[index].strip()
        if len(line) > 3 and line == lines[index - 1].strip():
            return index
    return None


def stop_at_line_cap(req: TrimRequest, lines: list[str], complete: bool) -> int | None:
    if len(lines) > req.max_lines:
        return req.max_lines
    return None


def stop_at_blank_run(req: TrimRequest, lines: list[str], complete: bool) -> int | None:
    """Two blank lines in a row: the model is between top-level definitions."""
    last = len(lines) if complete else len(lines) - 1
    for index in range(2, last):
        if not lines[index].strip() and not lines[index - 1].strip() and index > 1:
            return index - 1
    return None


STREAM_RULES: tuple[Rule, ...] = (
    stop_after_first_line,
    stop_at_dedent,
    stop_at_suffix_repeat,
    stop_at_repeated_lines,
    stop_at_blank_run,
    stop_at_line_cap,
)


@dataclass
class Trimmer:
    """Streaming stop decisions for one request; `finish` gives the text to show."""

    request: TrimRequest
    rules: tuple[Rule, ...] = STREAM_RULES
    cut_lines: int | None = None
    fired: str | None = None
    _checked_lines: int = field(default=0, repr=False)

    def should_stop(self, text: str) -> bool:
        lines = text.split("\n")
        complete = text.endswith("\n")
        for rule in self.rules:
            keep = rule(self.request, lines, complete)
            if keep is not None:
                self.cut_lines = keep
                self.fired = rule.__name__
                return True
        return False

    def finish(self, text: str) -> str:
        """The suggestion to show: cut where a rule fired, then tidied against the suffix."""
        lines = text.split("\n")
        if self.cut_lines is None:
            # The stream ended (EOS or cap) without a rule firing: apply them once more
            # to the whole text, as if it were complete.
            for rule in self.rules:
                keep = rule(self.request, lines + [""], True)
                if keep is not None:
                    self.cut_lines = keep
                    self.fired = rule.__name__
                    break
        if self.cut_lines is not None:
            lines = lines[: self.cut_lines]
        out = "\n".join(lines)
        return tidy(self.request, out)


def tidy(req: TrimRequest, text: str) -> str:
    """Final clean-up: trailing blanks, text the line suffix already has."""
    lines = text.split("\n")
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    text = "\n".join(lines).rstrip(" \t") if len(lines) > 1 else lines[0].rstrip()
    rest = req.line_suffix.strip()
    if rest and "\n" not in text:
        # The model often re-emits the closing brackets already after the cursor.
        text = _drop_suffix_overlap(text, req.line_suffix)
    if req.single_line and "\n" in text:
        text = text.split("\n", 1)[0]
    return text


def _drop_suffix_overlap(text: str, line_suffix: str) -> str:
    target = line_suffix.rstrip()
    for size in range(min(len(text), len(target)), 0, -1):
        if text.endswith(target[:size]) and target[:size].strip():
            return text[: len(text) - size]
    return text
