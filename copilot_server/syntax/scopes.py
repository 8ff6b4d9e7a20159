"""The classes/functions enclosing the cursor, as headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .definitions import MAX_HEADER_LINES, decode
from .languages import Grammar


@dataclass(frozen=True)
class Scope:
    """An enclosing class / function: its header as written, from its first line."""

    header: str
    start_row: int
    body_row: int
    indent: int = 0  # the header line's indentation (columns)


def scope_chain(
    grammar: Grammar, tree: Any, source: bytes, cursor_byte: int, cursor_indent: int | None
) -> list[Scope]:
    """The scopes enclosing the cursor, outermost first.

    Brace languages: the scopes whose body contains the cursor. Indented languages
    (Python): the cursor often sits on a blank line after the last statement, outside
    every node, so the chain is taken from the last code before the cursor and kept
    while the cursor's indentation is deeper than the scope's header (`cursor_indent`
    None: every candidate, for the caller to filter with `Scope.indent`).
    """
    query = grammar.query("scopes")
    if query is None:
        return []
    from tree_sitter import QueryCursor

    indented = grammar.spec.indented
    root = tree.root_node
    probe = cursor_byte
    node = root.descendant_for_byte_range(probe, probe)
    if indented or node is None or node == root:
        # After the last node (a blank line, unclosed braces at the end of the file):
        # start from the last code before the cursor.
        probe = _last_code_byte(source, cursor_byte)
        if probe < 0:
            return []
        node = root.descendant_for_byte_range(probe, probe)
    cursor = QueryCursor(query)
    cursor.set_max_start_depth(0)
    chain: list[Scope] = []
    while node is not None and node != root:
        for _pattern, captures in cursor.matches(node):
            scope_nodes = captures.get("scope")
            bodies = captures.get("body")
            if not scope_nodes or not bodies or scope_nodes[0] != node:
                continue
            body = bodies[0]
            line_start = source.rfind(b"\n", 0, node.start_byte) + 1
            header_indent = _indent_width(source, line_start)
            if indented:
                deeper = cursor_indent is None or cursor_indent > header_indent
                inside = deeper and node.start_byte < cursor_byte
            else:
                inside = body.start_byte < cursor_byte and (
                    cursor_byte < body.end_byte or _closed_by_missing(body)
                )
            if inside:
                header = decode(source[line_start : body.start_byte]).rstrip()
                lines = header.split("\n")
                if len(lines) > MAX_HEADER_LINES:
                    header = "\n".join(lines[: MAX_HEADER_LINES - 1] + [lines[-1]])
                if not indented and not header.endswith("{"):
                    header += " {"
                chain.append(Scope(header, node.start_point[0], body.start_point[0], header_indent))
            break
        node = node.parent
    chain.reverse()
    return chain


def _closed_by_missing(body: Any) -> bool:
    """A block whose closing brace the parser had to invent: it runs on past its end."""
    last = body.child(body.child_count - 1) if body.child_count else None
    return last is not None and last.is_missing


def _last_code_byte(source: bytes, cursor_byte: int) -> int:
    i = cursor_byte - 1
    while i >= 0 and source[i] in b" \t\r\n":
        i -= 1
    return i


def _indent_width(source: bytes, line_start: int) -> int:
    i = line_start
    while i < len(source) and source[i] in b" \t":
        i += 1
    return i - line_start
