"""Tree-sitter trees for documents, kept in step with each edit, and what we read from them.

`SyntaxTree` holds one document's tree. Every edit is applied with `Tree.edit` as it
arrives (cheap: it only shifts node positions); the next reader re-parses incrementally
with the edited tree as the old tree, so a burst of didChange notifications costs one
incremental parse, not one full parse per keystroke (a 5,400-line file: ~30 ms from
scratch, ~2 ms incrementally).

The readers (`find_definitions`, `scope_chain`, `find_imports`, `summarize`) work on any
tree and its source bytes: the context engine uses them on open documents and the
workspace index on files read from disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .languages import Grammar, grammar_for

# Definitions up to this many lines are shown whole; longer ones as signature + "...".
SHORT_DEFINITION_LINES = 8
SHORT_DEFINITION_CHARS = 480
# A class summary lists at most this many members (one line each).
MAX_MEMBERS = 12
# A header (signature) longer than this many lines is cut: nobody needs 30 parameters.
MAX_HEADER_LINES = 6
# Imports may sit under a guard (`#ifndef X_H`, `if TYPE_CHECKING:` is deeper and skipped).
IMPORT_DEPTH = 2
# Statement nodes that carry a definition's keyword (`const f = () => …`, `type T struct`,
# `template <…> class C`): a definition found inside one is shown with it.
_WRAPPERS = frozenset(
    {"lexical_declaration", "variable_declaration", "type_declaration", "template_declaration"}
)
_FUNCTION_KINDS = frozenset({"function", "method"})
_CLASS_KINDS = frozenset({"class", "interface", "struct", "enum", "trait", "module", "type"})


# -- the tree of one document ------------------------------------------------------------


class SyntaxTree:
    """One document's tree, edited in place on every change and re-parsed lazily."""

    def __init__(self, grammar: Grammar, text: str) -> None:
        self.grammar = grammar
        self._parser = grammar.new_parser()
        self._text = text
        self._source = utf8(text)
        self._ascii = text.isascii()
        self._source_of = text  # the text `_source` encodes
        self._tree = self._parser.parse(self._source)
        self._dirty = False
        # Counters for tests and the benchmark: full parses vs incremental ones.
        self.full_parses = 1
        self.incremental_parses = 0
        self.edits = 0

    @classmethod
    def for_document(
        cls, language_id: str, text: str, path: str | None = None
    ) -> SyntaxTree | None:
        grammar = grammar_for(language_id, path)
        if grammar is None:
            return None
        grammar.warm()
        return cls(grammar, text)

    @property
    def text(self) -> str:
        return self._text

    @property
    def source(self) -> bytes:
        """UTF-8 bytes of the current text (what node offsets index into)."""
        if self._dirty and self._source_of is not self._text:
            self._source = utf8(self._text)
            self._ascii = len(self._source) == len(self._text)
            self._source_of = self._text
        return self._source

    @property
    def tree(self) -> Any:
        """The tree of the current text (re-parsed incrementally if edits are pending)."""
        if self._dirty:
            self._tree = self._parser.parse(self.source, self._tree)
            self._dirty = False
            self.incremental_parses += 1
        return self._tree

    @property
    def edited_tree(self) -> Any:
        """The tree with every edit applied but not re-parsed: node offsets match the
        current text; the structure is that of the last parse. Good for reading code the
        user has not touched since (the scope headers above the cursor) without paying
        for a re-parse on every new line: after a newline, tree-sitter-python re-reads
        the rest of the file (~17 ms in the middle of a 6,000-line file)."""
        return self._tree

    @property
    def stale(self) -> bool:
        return self._dirty

    def byte_offset(self, offset: int) -> int:
        """UTF-8 byte offset of a Python str offset into the current text."""
        self.source  # noqa: B018 - brings `_ascii` up to date without parsing
        return offset if self._ascii else _byte_len(self._text, 0, offset)

    def edit(self, old_text: str, new_text: str, start: int, old_end: int, new_end: int) -> None:
        """Apply one edit (Python str offsets), as `Document.replace` reports it."""
        if old_text is not self._text and old_text != self._text:
            # We missed an edit (or were handed another text): re-synchronise by diff.
            self.update(old_text)
        if start == 0 and old_end == len(old_text) and old_text and new_text:
            # A whole-text replacement (full document sync): edit only what differs, so
            # the re-parse stays incremental.
            head = _common_prefix_len(old_text, new_text)
            tail = _common_suffix_len(old_text, new_text, head)
            start, old_end, new_end = head, len(old_text) - tail, len(new_text) - tail
        self._apply(old_text, new_text, start, old_end, new_end)

    def _apply(self, old_text: str, new_text: str, start: int, old_end: int, new_end: int) -> None:
        start_byte = _byte_len(old_text, 0, start)
        old_end_byte = start_byte + _byte_len(old_text, start, old_end)
        new_end_byte = start_byte + _byte_len(new_text, start, new_end)
        line_start = old_text.rfind("\n", 0, start) + 1
        row = old_text.count("\n", 0, start)
        start_point = (row, start_byte - _byte_len(old_text, 0, line_start))
        old_end_point = _end_point(old_text, start, old_end, start_point, start_byte, old_end_byte)
        new_end_point = _end_point(new_text, start, new_end, start_point, start_byte, new_end_byte)
        self._tree.edit(
            start_byte=start_byte,
            old_end_byte=old_end_byte,
            new_end_byte=new_end_byte,
            start_point=start_point,
            old_end_point=old_end_point,
            new_end_point=new_end_point,
        )
        self._text = new_text
        self._dirty = True
        self.edits += 1

    def update(self, text: str) -> None:
        """Bring the tree to `text` with one edit spanning what differs (no edit events)."""
        old = self._text
        if text is old or text == old:
            return
        start = _common_prefix_len(old, text)
        tail = _common_suffix_len(old, text, start)
        self._apply(old, text, start, len(old) - tail, len(text) - tail)


_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8(text: str) -> bytes:
    """UTF-8 for tree-sitter. A lone surrogate (from a buggy client's JSON) cannot be
    encoded; it becomes U+FFFD, which has its width (3 bytes), so offsets stay right."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def _byte_len(text: str, start: int, end: int) -> int:
    segment = text[start:end]
    # surrogatepass: 3 bytes per lone surrogate, as `utf8` gives its replacement.
    return len(segment) if segment.isascii() else len(segment.encode("utf-8", "surrogatepass"))


def _end_point(
    text: str, start: int, end: int, start_point: tuple[int, int], start_byte: int, end_byte: int
) -> tuple[int, int]:
    """The (row, byte column) of `end`, counted from the edit's start (not the file's)."""
    newlines = text.count("\n", start, end)
    if newlines == 0:
        return start_point[0], start_point[1] + (end_byte - start_byte)
    last_newline = text.rfind("\n", start, end)
    return start_point[0] + newlines, _byte_len(text, last_newline + 1, end)


def _common_prefix_len(a: str, b: str) -> int:
    """Length of the common prefix, by bisection on slices (C comparisons, not a loop)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix_len(a: str, b: str, floor: int) -> int:
    """Length of the common suffix that does not reach back over the common prefix."""
    lo, hi = 0, min(len(a), len(b)) - floor
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid : len(a) - lo] == b[len(b) - mid : len(b) - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


# -- definitions -------------------------------------------------------------------------


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
        if stack and stack[-1].kind in _FUNCTION_KINDS:
            continue
        kept.append(definition)
        stack.append(definition)
    return kept


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
            body = _body_of(node)
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
                        return capture[len("definition.") :] in _FUNCTION_KINDS
        return False


def _widen(node: Any) -> Any:
    parent = node.parent
    if parent is not None and parent.type in _WRAPPERS:
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
        return _dedent(_decode(source[start:end]))
    body = _body_of(definition_node)
    if body is None or body.start_point[0] - definition_node.start_point[0] >= MAX_HEADER_LINES:
        head = _decode(source[start:end]).split("\n")[:SHORT_DEFINITION_LINES]
        return _dedent("\n".join(head)) + "\n" + _ellipsis_line(grammar, "    ")
    header = _decode(source[start : body.start_byte]).rstrip()
    indent = _indent_of(header)
    indented = grammar.spec.indented
    is_container = kind in _CLASS_KINDS or (
        kind not in _FUNCTION_KINDS and _has_member_definitions(body)
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


def _body_of(node: Any) -> Any | None:
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
        child.type.endswith(("_definition", "_declaration", "_item", "_signature", "_specifier"))
        and child.end_point[0] > child.start_point[0]
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
        first = _decode(source[line_start:line_end]).rstrip()
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
        node.type == "expression_statement"
        and node.named_child_count == 1
        and (node.named_children[0].type == "string")
    )


def _python_docstring(body: Any, source: bytes) -> str:
    """A one-line docstring, shown with the signature; longer ones are left out."""
    first = body.named_children[0] if body.named_child_count else None
    if first is None or not _is_docstring(first) or first.end_point[0] != first.start_point[0]:
        return ""
    return _decode(source[first.start_byte : first.end_byte])


def _decode(data: bytes) -> str:
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


# -- scopes and imports --------------------------------------------------------------------


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
                header = _decode(source[line_start : body.start_byte]).rstrip()
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
            text = _decode(source[line_start:line_end]).rstrip()
            start_row = node.start_point[0]
            blocks.append(ImportBlock(start_row, start_row + text.count("\n"), text))
    blocks.sort(key=lambda b: b.start_row)
    return blocks
