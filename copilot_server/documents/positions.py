"""LSP positions <-> Python string offsets, converted once at the edge.

LSP counts `character` in UTF-16 code units by default; a client may negotiate UTF-8
(bytes) or UTF-32 (code points = Python str indices).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

Encoding = Literal["utf-16", "utf-8", "utf-32"]


class PositionError(ValueError):
    """A position outside the document."""


def _unit_len(ch: str, encoding: Encoding) -> int:
    if encoding == "utf-32":
        return 1
    code = ord(ch)
    if encoding == "utf-16":
        return 2 if code > 0xFFFF else 1
    # A lone surrogate (a buggy client can send one) counts as the 3 bytes WTF-8 gives it,
    # the width of the U+FFFD that stands in for it where text is parsed.
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


def column_to_index(line: str, character: int, encoding: Encoding) -> int:
    """Index into `line` (a str without its newline) for an LSP column.

    A column inside a surrogate pair or a multi-byte sequence snaps to the character
    start; a column past the end clamps to the end (clients send those after edits).
    """
    if character < 0:
        raise PositionError(f"negative character {character}")
    if encoding == "utf-32" or line.isascii():
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
    if line.isascii():
        return min(index, len(line))
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


# From this size on, a text's line index is a numpy array (numpy comes with llama-cpp-
# python): built ~10x faster than by the regex, and shifted after an edit by one C loop, not
# a Python one. A 10 MB file: ~60 ms instead of ~700 ms for its first keystroke, then ~1 ms
# instead of ~30 ms per keystroke (more on a loaded machine).
LARGE_TEXT_CHARS = 1_000_000


def line_starts(text: str) -> Sequence[int]:
    """Offsets where each line begins; computed once per document version (C-speed regex,
    or numpy for a large text). Lines end at LF, CRLF and CR (LSP)."""
    if len(text) < LARGE_TEXT_CHARS:
        return [0, *(m.end() for m in _LINE_BREAK.finditer(text))]
    import numpy as np

    if text.isascii():
        codes = np.frombuffer(text.encode("ascii"), np.uint8)
    else:  # one 4-byte unit per code point = per str index (lone surrogates included)
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
    lf = codes == 10
    ends = lf.copy()
    cr = codes == 13
    ends[:-1] |= cr[:-1] & ~lf[1:]  # a CR not followed by LF ends a line too
    ends[-1] |= cr[-1]
    return np.concatenate((np.zeros(1, np.int64), np.flatnonzero(ends).astype(np.int64) + 1))


def offset_at_with_starts(
    text: str,
    starts: Sequence[int],
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
    begin = int(starts[line])  # int(): a numpy index gives numpy integers
    end = int(starts[line + 1]) if line + 1 < len(starts) else len(text)
    line_text = text[begin:end].rstrip("\r\n")
    return begin + column_to_index(line_text, character, encoding)


def position_of(text: str, offset: int, encoding: Encoding) -> tuple[int, int]:
    """LSP (line, character) for a Python str offset."""
    before = text[:offset]
    lines = split_lines(before)
    return len(lines) - 1, index_to_column(lines[-1], len(lines[-1]), encoding)
