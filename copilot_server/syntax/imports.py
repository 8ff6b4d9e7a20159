"""Import statements near the top of a tree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .definitions import decode
from .languages import Grammar

IMPORT_DEPTH = 2
# Statement nodes that carry a definition's keyword (`const f = () => …`, `type T struct`,
# `template <…> class C`): a definition found inside one is shown with it.


@dataclass(frozen=True)
class ImportBlock:
    start_row: int
    end_row: int
    text: str


def find_imports(grammar: Grammar, tree: Any, source: bytes) -> list[ImportBlock]:
    """Import statements near the top of the tree, in order, one block per statement."""
    query = grammar.query("imports")
    if query is None:
        return []
    from tree_sitter import QueryCursor

    cursor = QueryCursor(query)
    cursor.set_max_start_depth(IMPORT_DEPTH)
    seen: set[int] = set()
    blocks: list[ImportBlock] = []
    for _pattern, captures in cursor.matches(tree.root_node):
        for node in captures.get("import", []):
            if node.start_byte in seen:
                continue
            seen.add(node.start_byte)
            line_start = source.rfind(b"\n", 0, node.start_byte) + 1
            end = node.end_byte
            while end > node.start_byte and source[end - 1] in b"\r\n":
                end -= 1  # `#include` nodes end with their newline
            line_end = source.find(b"\n", end)
            line_end = len(source) if line_end < 0 else line_end
            text = decode(source[line_start:line_end]).rstrip()
            start_row = node.start_point[0]
            blocks.append(ImportBlock(start_row, start_row + text.count("\n"), text))
    blocks.sort(key=lambda b: b.start_row)
    return blocks
