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
from typing import Any

from ..documents.store import parse_view
from ..sequences import common_prefix_len, common_suffix_len
from .languages import Grammar, grammar_for


def parse(language: str, text: str) -> Any | None:  # -> tree_sitter.Tree | None
    from .languages import parser_for

    try:
        parser = parser_for(language)
    except ImportError:  # grammar package missing: behave as a language without grammar
        return None
    # The parse view: same offsets, no lone CR (tree-sitter rows would not be LSP lines)
    # and no lone surrogate (which cannot be encoded).
    return parser.parse(parse_view(text).encode("utf-8")) if parser is not None else None


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
            head = common_prefix_len(old_text, new_text)
            tail = common_suffix_len(old_text, new_text, head)
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
        start = common_prefix_len(old, text)
        tail = common_suffix_len(old, text, start)
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
