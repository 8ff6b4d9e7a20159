"""What the trimmer knows of a request (`TrimRequest`) and what the rules see (`Seen`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..syntax.languages import COMMENT_STARTS, DEFAULT_LINE_COMMENT, LINE_COMMENTS
from ..syntax.text import code_part, indent_width

OPENERS = (":", "{", "(", "[", "=>", "->", " do", " then")
CLOSERS = set(")]}>\"'`;, \t")


@dataclass(frozen=True)
class TrimRequest:
    line_prefix: str
    line_suffix: str
    suffix: str  # lines after the cursor's line, starting with "\n"
    prefix: str = ""  # whole lines before the cursor's line (window), for the syntax check
    language: str = ""
    max_lines: int = 12
    # The trimmer's own token cap (0: none); a capped multi-line suggestion loses its
    # unfinished last line.
    max_tokens: int = 0
    # A chat model's answer: markdown fences and prose around the code are expected.
    chat: bool = False
    check_syntax: bool = True

    @classmethod
    def around(cls, before: str, after: str, **options) -> TrimRequest:
        """A request for a cursor between `before` and `after` (whole texts)."""
        start = before.rfind("\n") + 1
        end = after.find("\n")
        if end < 0:
            end = len(after)
        return cls(
            line_prefix=before[start:],
            line_suffix=after[:end],
            suffix=after[end:],
            prefix=before[:start],
            **options,
        )

    @property
    def comment_marker(self) -> str:
        return LINE_COMMENTS.get(self.language, DEFAULT_LINE_COMMENT)

    @property
    def single_line(self) -> bool:
        """Mid-expression → finish this line; empty line or after a block opener → a block."""
        rest = self.line_suffix.strip()
        if rest and not set(rest) <= CLOSERS:
            return True
        stripped = self.line_prefix.strip()
        if not stripped:
            return False
        if stripped.startswith(COMMENT_STARTS):
            return True  # a comment: finish its line
        return not code_part(stripped, self.comment_marker).endswith(OPENERS)

    @property
    def base_indent(self) -> int:
        """Lines of the suggestion indented less than this have left the block."""
        line = self.line_prefix
        indent = indent_width(line)
        if line.strip():
            # After an opener the block is deeper than the opener's line; a dedent to the
            # opener's own level ends it.
            return indent + 1
        return indent

    @property
    def after_cursor(self) -> str:
        return self.line_suffix + self.suffix

    def suffix_lines(self, count: int = 3) -> list[str]:
        """The first `count` non-blank lines after the cursor, stripped."""
        out = []
        for line in self.after_cursor.split("\n"):
            if line.strip():
                out.append(line.strip())
                if len(out) == count:
                    break
        return out

    @property
    def next_suffix_line(self) -> str:
        lines = self.suffix_lines(1)
        return lines[0] if lines else ""


@dataclass(frozen=True)
class Seen:
    """What the rules look at: the suggestion's lines so far."""

    lines: list[str]
    # Lines known to be complete: all but the last while streaming, all once it ended.
    closed: int
    pieces: int = 0  # tokens streamed so far
    final: bool = False


Rule = Callable[[TrimRequest, Seen], int | None]
# A rule returns the number of lines to keep (the engine stops), or None (go on).


def next_line_index(req: TrimRequest, lines: list[str]) -> int | None:
    """At the end of a finished line (nothing after the cursor) a model that ends the line
    at once is writing the next one: the index of that line once it has begun, else None."""
    if req.line_suffix.strip() or not req.line_prefix.strip() or len(lines) < 2:
        return None
    if lines[0].strip():
        return None
    return next((i for i in range(1, len(lines)) if lines[i].strip()), None)
