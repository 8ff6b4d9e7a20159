"""Open documents: text, version and language, edited incrementally as the editor types."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from .positions import Encoding, offset_at

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

    def offset_at(self, line: int, character: int, encoding: Encoding, *, strict: bool = True) -> int:
        return offset_at(self.text, line, character, encoding, strict=strict)

    def replace(self, start: int, end: int, new_text: str) -> None:
        """Apply one edit given as Python str offsets."""
        old_text = self.text
        self.text = old_text[:start] + new_text + old_text[end:]
        self.edit_count += 1
        self.last_edit_offset = start + len(new_text)
        if self.syntax is not None and hasattr(self.syntax, "edit"):
            self.syntax.edit(old_text, self.text, start, end, start + len(new_text))


class DocumentStore:
    def __init__(self) -> None:
        self._documents: dict[str, Document] = {}

    def open(self, uri: str, language_id: str, version: int, text: str) -> Document:
        doc = Document(uri=uri, language_id=language_id, version=version, text=text)
        self._documents[uri] = doc
        return doc

    def get(self, uri: str) -> Document | None:
        return self._documents.get(uri)

    def close(self, uri: str) -> None:
        self._documents.pop(uri, None)

    def all(self) -> list[Document]:
        return list(self._documents.values())

    def change(self, uri: str, version: int, changes: list[tuple[tuple[int, int, int, int] | None, str]], encoding: Encoding) -> Document | None:
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
        return doc
