"""Open documents: text, version and language, edited incrementally as the editor types."""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from .positions import Encoding, line_starts, offset_at_with_starts

log = logging.getLogger(__name__)

# Files larger than this are not sent to the model at all: a minified bundle or a data
# dump gives no useful context and would cost seconds of tokenizing per keystroke.
MAX_DOCUMENT_CHARS = 2_000_000


def uri_to_path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return uri


@dataclass
class Document:
    uri: str
    language_id: str
    version: int
    text: str
    # Edits since open, for the context engine's "recently edited" ranking.
    edit_count: int = 0
    last_edit_offset: int | None = None
    syntax: object | None = field(default=None, repr=False)

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
        if starts is None or starts[0] is not self.text:
            starts = (self.text, line_starts(self.text))
            self.__dict__["_starts_cache"] = starts
        return offset_at_with_starts(self.text, starts[1], line, character, encoding, strict=strict)

    def _shift_line_starts(self, old_text: str, start: int, end: int, new_text: str) -> None:
        """Keep the line index valid across an edit in O(lines) integer shifts, not a rescan.
        Edits touching a carriage return just drop it (rare; rebuilt on next use)."""
        cached = self.__dict__.pop("_starts_cache", None)
        if cached is None or cached[0] is not old_text:
            return
        if "\r" in new_text or "\r" in old_text[max(0, start - 1) : end + 1]:
            return
        starts = cached[1]
        first = bisect.bisect_right(starts, start)
        last = bisect.bisect_right(starts, end)
        delta = len(new_text) - (end - start)
        added = [start + m.end() for m in re.finditer("\n", new_text)]
        self.__dict__["_starts_cache"] = (
            self.text,
            starts[:first] + added + [x + delta for x in starts[last:]],
        )

    def replace(self, start: int, end: int, new_text: str) -> None:
        """Apply one edit given as Python str offsets."""
        old_text = self.text
        self.text = old_text[:start] + new_text + old_text[end:]
        self._shift_line_starts(old_text, start, end, new_text)
        self.edit_count += 1
        self.last_edit_offset = start + len(new_text)
        if self.syntax is not None and hasattr(self.syntax, "edit"):
            self.syntax.edit(old_text, self.text, start, end, start + len(new_text))


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
                doc.replace(0, len(doc.text), text)
                continue
            start = doc.offset_at(rng[0], rng[1], encoding, strict=False)
            end = doc.offset_at(rng[2], rng[3], encoding, strict=False)
            if end < start:
                start, end = end, start
            doc.replace(start, end, text)
        doc.version = version
        if doc.syntax is not None and doc.too_large:
            doc.syntax = None  # grew past the limit: no context is built for it any more
        return doc


def _syntax_for(doc: Document) -> object | None:
    """The document's tree-sitter tree (syntax.SyntaxTree), None without a grammar."""
    if doc.too_large or doc.looks_binary:
        return None
    try:
        from .syntax import SyntaxTree

        return SyntaxTree.for_document(doc.language_id, doc.text, doc.path)
    except Exception:  # a grammar that fails to load must not fail didOpen
        log.exception("cannot parse %s", doc.uri)
        return None
