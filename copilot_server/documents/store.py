"""Open documents: text, version and language, edited incrementally as the editor types.

The store holds exactly the editor's text: changes are applied with our own line index
(LSP ends lines at LF, CRLF and CR only; a column past a line's end means the line's end,
a line past the document's end means its end), never with the LSP library's copy of the document."""

from __future__ import annotations

import bisect
import logging
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..syntax.tree import NEEDS_VIEW, parse_view
from .positions import Encoding, line_starts, offset_at_with_starts

log = logging.getLogger(__name__)

# Files larger than this are not sent to the model at all: a minified bundle or a data
# dump gives no useful context and would cost seconds of tokenizing per keystroke.
MAX_DOCUMENT_CHARS = 2_000_000
# Larger documents are not parsed: tree-sitter holds the event loop ~1 s per MB on a loaded
# 2-core CPU (a 1.5 MB file: 1.6 s at didOpen); they get plain windows and similar snippets.
MAX_PARSE_CHARS = 1_000_000


def uri_to_path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return uri


class Document:
    """One open document. `source` is exactly the editor's text; `text` is what parsers,
    the context engine and the model read (`parse_view`): the same length, the same
    offsets and positions, and the same object unless the editor's text has a lone CR or
    a lone surrogate."""

    def __init__(
        self,
        uri: str,
        language_id: str,
        version: int,
        text: str,
        edit_count: int = 0,
        last_edit_offset: int | None = None,
        syntax: object | None = None,
    ) -> None:
        self.uri = uri
        self.language_id = language_id
        self.version = version
        self.source = text
        self.text = parse_view(text)
        # Edits since open, for the context engine's "recently edited" ranking.
        self.edit_count = edit_count
        self.last_edit_offset = last_edit_offset
        self.syntax = syntax

    def __repr__(self) -> str:
        return (
            f"Document(uri={self.uri!r}, language_id={self.language_id!r}, "
            f"version={self.version!r}, chars={len(self.source)})"
        )

    @property
    def path(self) -> str:
        return uri_to_path(self.uri)

    @property
    def file_name(self) -> str:
        return Path(self.path).name

    @property
    def too_large(self) -> bool:
        return len(self.text) > MAX_DOCUMENT_CHARS

    @property
    def looks_binary(self) -> bool:
        return "\x00" in self.text[:8192]

    def offset_at(
        self, line: int, character: int, encoding: Encoding, *, strict: bool = True
    ) -> int:
        starts = self.__dict__.get("_starts_cache")
        if starts is None or starts[0] is not self.source:
            starts = (self.source, line_starts(self.source))
            self.__dict__["_starts_cache"] = starts
        return offset_at_with_starts(
            self.source, starts[1], line, character, encoding, strict=strict
        )

    def _shift_line_starts(self, old_text: str, start: int, end: int, new_text: str) -> None:
        """Keep the line index valid across an edit in O(lines) integer shifts, not a rescan.
        Edits touching a carriage return just drop it (rare; rebuilt on next use)."""
        cached = self.__dict__.pop("_starts_cache", None)
        if cached is None or cached[0] is not old_text:
            return
        if "\r" in new_text or "\r" in old_text[max(0, start - 1) : end + 1]:
            return
        starts = cached[1]
        delta = len(new_text) - (end - start)
        added = [start + m.end() for m in re.finditer("\n", new_text)]
        if not isinstance(starts, list):  # a large document's numpy index (positions.py)
            import numpy as np

            first, last = np.searchsorted(starts, (start, end), side="right")
            shifted = np.concatenate(
                (starts[:first], np.array(added, np.int64), starts[last:] + delta)
            )
            self.__dict__["_starts_cache"] = (self.source, shifted)
            return
        first = bisect.bisect_right(starts, start)
        last = bisect.bisect_right(starts, end)
        self.__dict__["_starts_cache"] = (
            self.source,
            starts[:first] + added + [x + delta for x in starts[last:]],
        )

    def replace(self, start: int, end: int, new_text: str) -> None:
        """Apply one edit given as Python str offsets (0 <= start <= end <= len)."""
        old_source, old_view = self.source, self.text
        self.source = old_source[:start] + new_text + old_source[end:]
        new_end = start + len(new_text)
        if (
            old_view is old_source
            and NEEDS_VIEW.search(new_text) is None
            and not (start and old_source[start - 1] == "\r")
        ):
            # Nearly every edit: no CR or surrogate involved, the view stays the source.
            self.text = self.source
            view_start, view_old_end, view_new_end = start, end, new_end
        else:
            # Re-read only around the edit: whether a CR is lone depends on its next char.
            view_start = max(0, start - 1)
            view_old_end = min(len(old_source), end + 1)
            view_new_end = view_old_end + (new_end - end)
            middle = parse_view(self.source[view_start : view_new_end + 1])
            middle = middle[: view_new_end - view_start]
            self.text = old_view[:view_start] + middle + old_view[view_old_end:]
            if self.text == self.source:
                self.text = self.source
        self._shift_line_starts(old_source, start, end, new_text)
        self.edit_count += 1
        self.last_edit_offset = new_end
        if self.syntax is not None and hasattr(self.syntax, "edit"):
            try:
                self.syntax.edit(old_view, self.text, view_start, view_old_end, view_new_end)
            except Exception:  # the text is already the editor's: never stop a didChange
                log.exception("syntax tree of %s lost; parsing it again", self.uri)
                self.syntax = _syntax_for(self)


class DocumentStore:
    def __init__(self) -> None:
        self._documents: dict[str, Document] = {}

    def open(self, uri: str, language_id: str, version: int, text: str) -> Document:
        doc = Document(uri=uri, language_id=language_id, version=version, text=text)
        doc.syntax = _syntax_for(doc)
        self._documents[uri] = doc
        return doc

    def get(self, uri: str) -> Document | None:
        return self._documents.get(uri)

    def close(self, uri: str) -> None:
        self._documents.pop(uri, None)

    def all(self) -> list[Document]:
        return list(self._documents.values())

    def change(
        self,
        uri: str,
        version: int,
        changes: list[tuple[tuple[int, int, int, int] | None, str]],
        encoding: Encoding,
    ) -> Document | None:
        """Apply LSP content changes: (range as (l0, c0, l1, c1) or None for full text, text)."""
        doc = self._documents.get(uri)
        if doc is None:
            return None
        for rng, text in changes:
            if rng is None:
                doc.replace(0, len(doc.source), text)
                continue
            start = doc.offset_at(rng[0], rng[1], encoding, strict=False)
            end = doc.offset_at(rng[2], rng[3], encoding, strict=False)
            if end < start:
                start, end = end, start
            doc.replace(start, end, text)
        doc.version = version
        if doc.syntax is not None and len(doc.text) > MAX_PARSE_CHARS:
            doc.syntax = None  # grew past the limit: no tree is kept for it any more
        return doc


def _syntax_for(doc: Document) -> object | None:
    """The document's tree-sitter tree (syntax.SyntaxTree), None without a grammar."""
    if len(doc.text) > MAX_PARSE_CHARS or doc.looks_binary:
        return None
    try:
        from ..syntax import SyntaxTree

        return SyntaxTree.for_document(doc.language_id, doc.text, doc.path)
    except Exception:  # a grammar that fails to load must not fail didOpen
        log.exception("cannot parse %s", doc.uri)
        return None
