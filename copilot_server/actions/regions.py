"""Which lines a fix rewrites and an explanation covers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..syntax.languages import DECORATED_DEFINITION, DEFINITION_NODE_TYPE
from ..syntax.problems import node_text
from ..syntax.tree import parse, parse_view

# A fix region longer than this is cut back to the error's own lines: every line is
# prompt and output tokens (~10 each), and the model rewrites small regions faithfully.
MAX_FIX_LINES = 12
# Explaining more than this many lines costs several seconds of prompt on a laptop CPU
# (~10 tokens a line, ~100 prompt tokens/s); longer regions are shown truncated.
MAX_EXPLAIN_LINES = 60
# Ask for this many sentences at most; the token budget (explain_max_tokens) caps the rest.


@dataclass(frozen=True)
class Region:
    """Whole lines [start, end] (0-based, inclusive) of a document."""

    start: int
    end: int

    @property
    def lines(self) -> int:
        return self.end - self.start + 1

    def overlaps(self, start: int, end: int) -> bool:
        return start <= self.end and end >= self.start


def _indent_of(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _line_complete(node: Any, lines: list[str]) -> bool:
    """The node starts its first line and ends its last (nothing else of code shares them).
    Tree-sitter columns are UTF-8 byte offsets."""
    (r0, c0), (r1, c1) = node.start_point, node.end_point
    if r0 >= len(lines) or lines[r0].encode("utf-8")[:c0].strip():
        return False
    return r1 >= len(lines) or not lines[r1].encode("utf-8")[c1:].strip()


def fix_region(
    language: str,
    text: str,
    first_line: int,
    last_line: int,
    max_lines: int = MAX_FIX_LINES,
    tree: Any | None = None,
) -> Region:
    """The smallest whole statement around lines [first_line, last_line], plus the body of a
    header it opens, within `max_lines`; the lines themselves when nothing fits. `tree`:
    the text's tree where the caller has it (parsed here otherwise)."""
    text = parse_view(text)  # lone CRs end lines, as in LSP
    lines = text.split("\n")
    last_row = max(0, len(lines) - 1)
    first_line = min(max(0, first_line), last_row)
    # A diagnostic may span a whole function; the rewrite stays within max_lines of its start.
    last_line = min(max(first_line, last_line), last_row, first_line + max_lines - 1)
    start, end = first_line, last_line
    tree = tree if tree is not None else parse(language, text)
    if tree is not None:
        first_raw, last_raw = lines[first_line].encode("utf-8"), lines[last_line].encode("utf-8")
        col0 = len(first_raw) - len(first_raw.lstrip())
        node = tree.root_node.named_descendant_for_point_range(
            (first_line, col0), (last_line, max(col0, len(last_raw.rstrip())))
        )
        while node is not None and node.parent is not None:
            if _line_complete(node, lines):
                r0, r1 = node.start_point[0], min(node.end_point[0], last_row)
                if node.end_point[1] == 0 and r1 > r0:
                    r1 -= 1  # a node ending at column 0 ends on the line before
                if r1 - r0 + 1 <= max_lines:
                    start, end = min(start, r0), max(end, r1)
                break
            node = node.parent
    return Region(start, _extend_with_body(lines, start, end, max_lines))


def _extend_with_body(lines: list[str], start: int, end: int, max_lines: int) -> int:
    """A header (`def f(x)`, `if x`) goes with the deeper-indented lines after it, so the
    model sees the block it opens instead of inventing one."""
    header = _indent_of(lines[start])
    extended = end
    probe = end + 1
    while probe < len(lines) and probe - start < max_lines:
        line = lines[probe]
        if line.strip():
            if _indent_of(line) <= header:
                break
            extended = probe
        probe += 1
    return extended


def explain_region(
    language: str, text: str, line: int, tree: Any | None = None
) -> tuple[Region, str | None]:
    """The enclosing function or class at `line` (with its name), else its statement."""
    text = parse_view(text)  # lone CRs end lines, as in LSP
    lines = text.split("\n")
    line = min(max(0, line), max(0, len(lines) - 1))
    tree = tree if tree is not None else parse(language, text)
    if tree is None:
        return Region(line, line), None
    raw = lines[line].encode("utf-8")
    col0 = len(raw) - len(raw.lstrip())
    node = tree.root_node.named_descendant_for_point_range(
        (line, col0), (line, max(col0, len(raw.rstrip())))
    )
    statement: Any | None = None
    while node is not None and node.parent is not None:
        if DEFINITION_NODE_TYPE.search(node.type):
            if node.parent.type == DECORATED_DEFINITION:
                node = node.parent
            name_node = node.child_by_field_name("name")
            if name_node is None and node.type == DECORATED_DEFINITION:
                inner = node.child_by_field_name("definition")
                name_node = inner.child_by_field_name("name") if inner is not None else None
            name = node_text(name_node) if name_node is not None else None
            return _node_region(node, len(lines)), name
        if statement is None and _line_complete(node, lines):
            statement = node
        node = node.parent
    if statement is not None:
        return _node_region(statement, len(lines)), None
    return Region(line, line), None


def _node_region(node: Any, line_count: int) -> Region:
    r0, r1 = node.start_point[0], node.end_point[0]
    if node.end_point[1] == 0 and r1 > r0:
        r1 -= 1
    return Region(r0, min(r1, max(0, line_count - 1)))


def _offset_of_line(text: str, row: int, start: int = 0) -> int:
    """Offset of the line `row` lines after the one starting at `start` (len(text) past the end)."""
    offset = start
    for _ in range(row):
        nl = text.find("\n", offset)
        if nl < 0:
            return len(text)
        offset = nl + 1
    return offset


def region_span(text: str, region: Region) -> tuple[int, int]:
    """Offsets of the region's text, its last line's newline included when it has one."""
    text = parse_view(text)  # same offsets; a lone CR ends a line too
    begin = _offset_of_line(text, region.start)
    return begin, _offset_of_line(text, region.lines, begin)


def explain_target(
    language: str, text: str, begin: int, stop: int, tree: Any | None = None
) -> tuple[Region, str | None, str | None]:
    """(region, selected text, name): a selection explains its lines (or exactly its text
    within one line); no selection explains the enclosing function or class."""
    if stop < begin:
        begin, stop = stop, begin
    text = parse_view(text)  # lone CRs end lines, as in LSP
    first = text.count("\n", 0, begin)
    if begin == stop:
        region, name = explain_region(language, text, first, tree)
        return region, None, name
    last = text.count("\n", 0, stop)
    if last > first and text.rfind("\n", 0, stop) == stop - 1:
        last -= 1  # a selection ending at column 0 does not include that line
    if first == last:
        selected = text[begin:stop].strip()
        line_text = text.split("\n")[first].strip()
        return Region(first, first), (selected if selected != line_text else None), None
    return Region(first, last), None, None
