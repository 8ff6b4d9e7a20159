"""Tree-sitter trees for documents, kept in step with each edit, and what we read from them.

`SyntaxTree` holds one document's tree. Every edit is applied with `Tree.edit` as it
arrives (cheap: it only shifts node positions); the next reader re-parses incrementally
with the edited tree as the old tree, so a burst of didChange notifications costs one
incremental parse, not one full parse per keystroke (a 5,400-line file: ~30 ms from
scratch, ~2 ms incrementally).

Texts without a tree of their own (a rewritten file, a trimming window, a file read
from disk) are parsed once with `parse`; `TreeCache` keeps the trees of texts without an
open document. Both, like `SyntaxTree`, parse on this thread's parser (`parser`).

The readers (`find_definitions`, `scope_chain`, `find_imports`, `summarize`) work on any
tree and its source bytes: the context engine uses them on open documents and the
workspace index on files read from disk.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

from ..sequences import common_prefix_len, common_suffix_len
from .languages import Grammar, grammar_for

# What the parsers and the model read differs from the editor's text in two ways that keep
# every offset and every LSP position the same: a lone surrogate (a buggy client's JSON can
# carry one; it cannot be encoded to UTF-8) reads as U+FFFD (1 UTF-16 unit and 3 UTF-8
# bytes, like the surrogate), and a lone CR reads as LF (tree-sitter and most readers
# count rows by LF only, while LSP ends a line at CR too).
NEEDS_VIEW = re.compile("[\r\ud800-\udfff]")
_LONE_CR_OR_SURROGATE = re.compile("\r(?!\n)|[\ud800-\udfff]")


def _view_char(match: re.Match[str]) -> str:
    return "\n" if match.group() == "\r" else "\ufffd"


def parse_view(text: str) -> str:
    """`text` as parsers read it: lone CR -> LF, lone surrogate -> U+FFFD; same length.
    The same object when there is nothing to replace (nearly always)."""
    if NEEDS_VIEW.search(text) is None:
        return text
    view = _LONE_CR_OR_SURROGATE.sub(_view_char, text)
    return text if view == text else view


# -- the one parse path: a parser per thread per grammar -----------------------------------

_pool = threading.local()


def parser(grammar: Grammar) -> Any:  # -> tree_sitter.Parser
    """This thread's parser for `grammar`. Grammars are shared between threads but parsers
    are not thread-safe: each thread keeps one per grammar, so no parse takes a lock or
    makes a parser."""
    parsers: dict[Grammar, Any] | None = getattr(_pool, "parsers", None)
    if parsers is None:
        parsers = _pool.parsers = {}
    found = parsers.get(grammar)
    if found is None:
        found = parsers[grammar] = grammar.new_parser()
    return found


def grammar_of(language: str | Grammar) -> Grammar | None:
    """The grammar of an LSP languageId; None without one, or without tree-sitter."""
    if isinstance(language, Grammar):
        return language
    try:
        return grammar_for(language)
    except ImportError:  # grammar package missing: behave as a language without grammar
        return None


def parse(language: str | Grammar, text: str | bytes) -> Any | None:  # -> tree_sitter.Tree
    """A one-shot parse of a text that has no tree of its own (a rewritten file, a window,
    a file read from disk); None for a language without grammar. A str is parsed in its
    parse view (same offsets, no lone CR or surrogate); bytes as they are."""
    grammar = grammar_of(language)
    if grammar is None:
        return None
    return parser(grammar).parse(
        text if isinstance(text, bytes) else parse_view(text).encode("utf-8")
    )


def own_tree(language: str, text: str, syntax: object | None) -> Any | None:
    """A document's own tree (`syntax`, its SyntaxTree, re-parsed incrementally if edits
    are pending) when it is `text`'s in `language`'s grammar; else None. A document whose
    languageId has no grammar may have a tree of the grammar its path names: that is
    for context only, so fix and explain still see no grammar."""
    if not isinstance(syntax, SyntaxTree) or syntax.grammar is not grammar_of(language):
        return None
    if syntax.text is not text and syntax.text != text:
        return None
    return syntax.tree


# -- the tree of one document ------------------------------------------------------------


class SyntaxTree:
    """One document's tree, edited in place on every change and re-parsed lazily."""

    def __init__(self, grammar: Grammar, text: str) -> None:
        self.grammar = grammar
        self._text = text
        self._source = utf8(text)
        self._ascii = text.isascii()
        self._source_of = text  # the text `_source` encodes
        self._tree = parser(grammar).parse(self._source)
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
            self._tree = parser(self.grammar).parse(self.source, self._tree)
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


class TreeCache:
    """Trees of texts that have no open document's tree (the CLI, the benchmark, a call
    from another thread), by key, least recently used dropped first. A new text under a
    key is parsed as one edit of the last, so typing costs an incremental parse. Not
    thread-safe: its owner holds a lock."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._trees: OrderedDict[str, SyntaxTree] = OrderedDict()

    def get(self, key: str, grammar: Grammar, text: str) -> SyntaxTree:
        syntax = self._trees.get(key)
        if syntax is None or syntax.grammar is not grammar:
            syntax = SyntaxTree(grammar, text)
        else:
            syntax.update(text)  # one diff-sized edit, then an incremental parse
        self._trees[key] = syntax
        self._trees.move_to_end(key)
        while len(self._trees) > self.size:
            self._trees.popitem(last=False)
        return syntax


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
