"""What a file defines and how a definition is shown to the model (signature or short body)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .languages import (
    CLASS_KINDS,
    DOCSTRING_NODE,
    DOCSTRING_STATEMENT,
    FUNCTION_KINDS,
    MEMBER_NODE_SUFFIXES,
    WRAPPER_NODES,
    Grammar,
)

# Definitions up to this many lines are shown whole; longer ones as signature + "...".
SHORT_DEFINITION_LINES = 8
SHORT_DEFINITION_CHARS = 480
# A class summary lists at most this many members (one line each).
MAX_MEMBERS = 12
# A header (signature) longer than this many lines is cut: nobody needs 30 parameters.
MAX_HEADER_LINES = 6


@dataclass(frozen=True)
class Definition:
    """A named definition as shown to the model: its signature or short body."""

    name: str
    kind: str  # function | method | class | interface | type | constant | …
    path: str
    line: int  # 0-based first row
    end_line: int
    text: str
    language: str = ""


@dataclass(frozen=True)
class FoundDefinition:
    """A definition node in one tree (summarized only when it is shown)."""

    name: str
    kind: str
    node: Any
    start_row: int
    end_row: int


def find_definitions(
    grammar: Grammar,
    tree: Any,
    *,
    nested: bool = False,
    node: Any = None,
    byte_range: tuple[int, int] | None = None,
    source: bytes | None = None,
) -> list[FoundDefinition]:
    """Definitions in document order; those inside a function body are left out unless
    `nested` (local helpers are seen in the prefix window, not looked up).

    `node` / `byte_range` restrict the search to a subtree / the definitions starting
    in a range of bytes (the outline cache re-reads only what changed). Pass the
    `source` bytes when the tree may have been edited since it was parsed."""
    query = grammar.query("definitions")
    if query is None:
        return []
    from tree_sitter import QueryCursor

    cursor = QueryCursor(query)
    if byte_range is not None:
        cursor.set_byte_range(*byte_range)
    found: dict[tuple[int, int], FoundDefinition] = {}
    for _pattern, captures in cursor.matches(node if node is not None else tree.root_node):
        kind = ""
        definition = None
        for capture, nodes in captures.items():
            if capture.startswith("definition.") and nodes:
                kind, definition = capture[len("definition.") :], nodes[0]
                break
        names = captures.get("name")
        if definition is None or not names:
            continue
        definition = _widen(definition)
        if byte_range is not None and not byte_range[0] <= definition.start_byte < byte_range[1]:
            continue
        key = (definition.start_byte, definition.end_byte)
        if key in found:
            continue
        # An edited (not re-parsed) tree has no node text: read it from the source.
        raw = names[0].text if source is None else source[names[0].start_byte : names[0].end_byte]
        name = _last_part((raw or b"").decode("utf-8", errors="replace"))
        if not name:
            continue
        found[key] = FoundDefinition(
            name, kind, definition, definition.start_point[0], definition.end_point[0]
        )
    ordered = sorted(found.values(), key=lambda d: (d.node.start_byte, -d.node.end_byte))
    if nested:
        return ordered
    kept: list[FoundDefinition] = []
    stack: list[FoundDefinition] = []
    for definition in ordered:
        while stack and stack[-1].node.end_byte <= definition.node.start_byte:
            stack.pop()
        if stack and stack[-1].kind in FUNCTION_KINDS:
            continue
        kept.append(definition)
        stack.append(definition)
    return kept


def _widen(node: Any) -> Any:
    parent = node.parent
    if parent is not None and parent.type in WRAPPER_NODES:
        if parent.type == "template_declaration" or parent.named_child_count == 1:
            return parent
    return node


_NAME_TAIL = re.compile(r"[A-Za-z_$][\w$]*$")


def _last_part(name: str) -> str:
    """`Outer::inner` / `a.b` → the part a reference would use."""
    match = _NAME_TAIL.search(name.strip())
    return match.group(0) if match else name.strip()


def summarize(definition_node: Any, source: bytes, grammar: Grammar, kind: str = "") -> str:
    """What the model sees of a definition: all of it when short, else its signature
    (and for classes, one line per member) with the body elided."""
    start = source.rfind(b"\n", 0, definition_node.start_byte) + 1
    end = definition_node.end_byte
    lines_spanned = definition_node.end_point[0] - definition_node.start_point[0] + 1
    if lines_spanned <= SHORT_DEFINITION_LINES and end - start <= SHORT_DEFINITION_CHARS:
        return _dedent(decode(source[start:end]))
    body = body_of(definition_node)
    if body is None or body.start_point[0] - definition_node.start_point[0] >= MAX_HEADER_LINES:
        head = decode(source[start:end]).split("\n")[:SHORT_DEFINITION_LINES]
        return _dedent("\n".join(head)) + "\n" + _ellipsis_line(grammar, "    ")
    header = decode(source[start : body.start_byte]).rstrip()
    indent = _indent_of(header)
    indented = grammar.spec.indented
    is_container = kind in CLASS_KINDS or (
        kind not in FUNCTION_KINDS and _has_member_definitions(body)
    )
    if not is_container:
        if indented:
            doc = _python_docstring(body, source)
            inner = indent + "    "
            lines = [header] + ([inner + doc] if doc else []) + [inner + "..."]
            return _dedent("\n".join(lines))
        return _dedent(header + " { ... }")
    members = _member_lines(body, source, grammar)
    if indented:
        return _dedent("\n".join([header, *members] if members else [header, indent + "    ..."]))
    opening = header if header.endswith("{") else header + " {"
    return _dedent("\n".join([opening, *members, indent + "}"]))


def body_of(node: Any) -> Any | None:
    """The body block of a definition, looking through wrappers (declarators, templates)."""
    frontier = [node]
    for _depth in range(4):
        following: list[Any] = []
        for candidate in frontier:
            body = candidate.child_by_field_name("body")
            if body is not None:
                return body
            following.extend(candidate.named_children)
        frontier = following
        if not frontier:
            break
    return None


def _has_member_definitions(body: Any) -> bool:
    return any(
        child.type.endswith(MEMBER_NODE_SUFFIXES) and child.end_point[0] > child.start_point[0]
        for child in body.named_children[:40]
    )


def _member_lines(body: Any, source: bytes, grammar: Grammar) -> list[str]:
    lines: list[str] = []
    for child in body.named_children:
        if child.type == "comment" or (grammar.spec.indented and _is_docstring(child)):
            continue
        if len(lines) >= MAX_MEMBERS:
            lines.append(_ellipsis_line(grammar, _indent_of(lines[-1])))
            break
        line_start = source.rfind(b"\n", 0, child.start_byte) + 1
        line_end = source.find(b"\n", child.start_byte)
        line_end = len(source) if line_end < 0 else line_end
        first = decode(source[line_start:line_end]).rstrip()
        if child.end_point[0] > child.start_point[0]:
            first = _elide_rest(first, grammar)
        lines.append(first)
    return lines


def _elide_rest(line: str, grammar: Grammar) -> str:
    if not grammar.spec.indented and line.endswith("{"):
        return line + " ... }"
    return line + " ..."


def _ellipsis_line(grammar: Grammar, indent: str) -> str:
    return indent + ("..." if grammar.spec.indented else grammar.spec.line_comment + " ...")


def _is_docstring(node: Any) -> bool:
    return (
        node.type == DOCSTRING_STATEMENT
        and node.named_child_count == 1
        and (node.named_children[0].type == DOCSTRING_NODE)
    )


def _python_docstring(body: Any, source: bytes) -> str:
    """A one-line docstring, shown with the signature; longer ones are left out."""
    first = body.named_children[0] if body.named_child_count else None
    if first is None or not _is_docstring(first) or first.end_point[0] != first.start_point[0]:
        return ""
    return decode(source[first.start_byte : first.end_byte])


def decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _dedent(text: str) -> str:
    lines = text.split("\n")
    indent = _indent_of(lines[0])
    if not indent:
        return text.rstrip()
    out = [line[len(indent) :] if line.startswith(indent) else line.lstrip(" \t") for line in lines]
    return "\n".join(out).rstrip()
