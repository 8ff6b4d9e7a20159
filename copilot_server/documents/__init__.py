"""Open documents, LSP positions (UTF-16 <-> str) and each document's edit history."""

from .store import Document, DocumentStore, uri_to_path

__all__ = ["Document", "DocumentStore", "uri_to_path"]
