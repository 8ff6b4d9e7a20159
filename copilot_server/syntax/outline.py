"""A document's definitions, re-read only where the text changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .definitions import body_of, find_definitions, summarize
from .languages import FUNCTION_KINDS, Grammar


@dataclass(frozen=True)
class OutlineEntry:
    """A definition as the outline keeps it: rows relative to its chunk's first row."""

    name: str
    kind: str
    row: int
    end_row: int
    text: str


class Outline:
    """A document's definitions, re-read only where the text changed.

    The file is cut into chunks: the top-level nodes, and inside a large class /
    namespace its members (plus the container's own header). A chunk's definitions are
    cached under its type and the hash of its text, so an outline refresh after a
    keystroke hashes the chunks (C speed) and queries only the one being edited: a
    6,000-line file costs ~1 ms instead of ~40 ms. Rows are kept relative to the chunk,
    so lines inserted above it do not invalidate it.
    """

    # A chunk longer than this is split into its members when it is a container.
    SPLIT_LINES = 120

    def __init__(self, grammar: Grammar) -> None:
        self.grammar = grammar
        self._chunks: dict[tuple, tuple[OutlineEntry, ...]] = {}
        self.chunks_read = 0  # chunks queried (not found in the cache), for tests / stats

    def refresh(self, tree: Any, source: bytes) -> dict[str, list[tuple[int, OutlineEntry]]]:
        """name → [(absolute first row, entry)], in document order."""
        by_name: dict[str, list[tuple[int, OutlineEntry]]] = {}
        fresh: dict[tuple, tuple[OutlineEntry, ...]] = {}
        for node, header_end in self._chunk_nodes(tree.root_node):
            end = node.end_byte if header_end is None else header_end
            key = (
                node.type,
                header_end is not None,
                node.end_byte - node.start_byte,
                hash(source[node.start_byte : node.end_byte]),
            )
            entries = fresh.get(key)
            if entries is None:
                entries = self._chunks.get(key)
            if entries is None:
                entries = self._read(tree, node, source, (node.start_byte, end))
                self.chunks_read += 1
            fresh[key] = entries
            base = node.start_point[0]
            for entry in entries:
                by_name.setdefault(entry.name, []).append((base + entry.row, entry))
        self._chunks = fresh
        return by_name

    def _read(
        self, tree: Any, node: Any, source: bytes, byte_range: tuple[int, int]
    ) -> tuple[OutlineEntry, ...]:
        base = node.start_point[0]
        return tuple(
            OutlineEntry(
                d.name,
                d.kind,
                d.start_row - base,
                d.end_row - base,
                summarize(d.node, source, self.grammar, d.kind),
            )
            for d in find_definitions(
                self.grammar, tree, node=node, byte_range=byte_range, source=source
            )
        )

    def _chunk_nodes(self, root: Any):
        """(node, None) for a whole chunk, (node, body start) for a split container's header."""
        stack = list(reversed(root.named_children))
        while stack:
            node = stack.pop()
            if node.end_point[0] - node.start_point[0] <= self.SPLIT_LINES:
                yield node, None
                continue
            body = body_of(node)
            if body is None or body.named_child_count < 2 or self._is_function(node, body):
                yield node, None
                continue
            yield node, body.start_byte
            stack.extend(reversed(body.named_children))

    def _is_function(self, node: Any, body: Any) -> bool:
        """Whether the definition owning `body` is a function (never split: its locals
        would otherwise come out as top-level definitions)."""
        query = self.grammar.query("definitions")
        if query is None:
            return True
        from tree_sitter import QueryCursor

        cursor = QueryCursor(query)
        cursor.set_byte_range(node.start_byte, body.start_byte)
        for _pattern, captures in cursor.matches(node):
            for capture, nodes in captures.items():
                if capture.startswith("definition.") and nodes:
                    owner = nodes[0]
                    if owner.start_byte <= body.start_byte and owner.end_byte >= body.end_byte:
                        return capture[len("definition.") :] in FUNCTION_KINDS
        return False
