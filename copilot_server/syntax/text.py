"""Code read as text, without a tree: indentation, strings skipped, brackets counted."""

from __future__ import annotations

import re

CLOSING_TO_OPENING = {")": "(", "]": "[", "}": "{"}
OPENING = set(CLOSING_TO_OPENING.values())
# Line comment markers by language; a cursor in a comment finishes the comment's line.


def indent_width(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip(" "))


def comment_start(line: str, comment: str) -> tuple[int | None, str]:
    """Where `line`'s line comment starts, strings skipped (None: it has none), and the
    quote still open where the scan stopped ("" outside a string)."""
    quote = ""
    index = 0
    while index < len(line):
        ch = line[index]
        if quote:
            if ch == "\\":
                index += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif line.startswith(comment, index):
            return index, quote
        index += 1
    return None, quote


def code_part(line: str, comment: str) -> str:
    """`line` without a trailing line comment (outside strings), right-stripped."""
    start, _ = comment_start(line, comment)
    return line[:start].rstrip()


def bracket_delta(line: str, comment: str) -> tuple[int, int]:
    """(lowest running depth, final depth) of the brackets in `line`, strings skipped."""
    depth = low = 0
    for ch in code_part(line, comment):
        if ch in OPENING:
            depth += 1
        elif ch in CLOSING_TO_OPENING:
            depth -= 1
            low = min(low, depth)
    return low, depth


def strip_strings(line: str) -> str:
    return re.sub(r"\"(\\.|[^\"\\])*\"|'(\\.|[^'\\])*'|`[^`]*`", '""', line)
