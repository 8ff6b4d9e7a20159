"""LSP positions <-> Python string offsets, converted once at the edge.

LSP counts `character` in UTF-16 code units by default; a client may negotiate UTF-8
(bytes) or UTF-32 (code points = Python str indices).
"""

from __future__ import annotations

import re
from typing import Literal

Encoding = Literal["utf-16", "utf-8", "utf-32"]


class PositionError(ValueError):
    """A position outside the document."""


def _unit_len(ch: str, encoding: Encoding) -> int:
    if encoding == "utf-32":
        return 1
    if encoding == "utf-16":
        return 2 if ord(ch) > 0xFFFF else 1
    return len(ch.encode("utf-8"))


def column_to_index(line: str, character: int, encoding: Encoding) -> int:
    """Index into `line` (a str without its newline) for an LSP column.

    A column inside a surrogate pair or a multi-byte sequence snaps to the character
    start; a column past the end clamps to the end (clients send those after edits).
    """
    if character < 0:
        raise PositionError(f"negative character {character}")
    if encoding == "utf-32":
        return min(character, len(line))
    units = 0
    for index, ch in enumerate(line):
        width = _unit_len(ch, encoding)
        if units + width > character:
            return index
        units += width
    return len(line)


def index_to_column(line: str, index: int, encoding: Encoding) -> int:
    if encoding == "utf-32":
        return index
    return sum(_unit_len(ch, encoding) for ch in line[:index])


def text_units(text: str, encoding: Encoding) -> int:
    return index_to_column(text, len(text), encoding)


def split_lines(text: str) -> list[str]:
    """Lines without terminators, as LSP sees them (\\n, \\r\\n and \\r all end a line)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def offset_at(
    text: str, line: int, character: int, encoding: Encoding, *, strict: bool = True
) -> int:
    """Python str offset for an LSP position in `text`.

    With `strict`, a line past the end raises PositionError (the request is wrong);
    otherwise it clamps to the end of the text (edits from a lagging client).
    """
    if line < 0:
        raise PositionError(f"negative line {line}")
    offset = 0
    current = 0
    length = len(text)
    while current < line:
        nl = _next_line_break(text, offset)
        if nl < 0:
            if strict:
                raise PositionError(
                    f"line {line} is past the end of the document ({current + 1} lines)"
                )
            return length
        offset = nl + (2 if text.startswith("\r\n", nl) else 1)
        current += 1
    end = _next_line_break(text, offset)
    line_text = text[offset : end if end >= 0 else length]
    return offset + column_to_index(line_text, character, encoding)


def _next_line_break(text: str, start: int) -> int:
    n = text.find("\n", start)
    # Bounded: an unbounded search for a rare "\r" would scan the rest of the file per line.
    r = text.find("\r", start, n if n >= 0 else len(text))
    return r if r >= 0 else n


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def line_starts(text: str) -> list[int]:
    """Offsets where each line begins; computed once per document version (C-speed regex)."""
    return [0, *(m.end() for m in _LINE_BREAK.finditer(text))]


def offset_at_with_starts(
    text: str,
    starts: list[int],
    line: int,
    character: int,
    encoding: Encoding,
    *,
    strict: bool = True,
) -> int:
    """`offset_at` for a document whose `line_starts` are known: no per-line scan."""
    if line < 0:
        raise PositionError(f"negative line {line}")
    if line >= len(starts):
        if strict:
            raise PositionError(
                f"line {line} is past the end of the document ({len(starts)} lines)"
            )
        return len(text)
    begin = starts[line]
    end = starts[line + 1] if line + 1 < len(starts) else len(text)
    line_text = text[begin:end].rstrip("\r\n")
    return begin + column_to_index(line_text, character, encoding)


def position_of(text: str, offset: int, encoding: Encoding) -> tuple[int, int]:
    """LSP (line, character) for a Python str offset."""
    before = text[:offset]
    lines = split_lines(before)
    return len(lines) - 1, index_to_column(lines[-1], len(lines[-1]), encoding)
