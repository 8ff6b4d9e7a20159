"""Shared pieces for protocol tests: client profiles and small request helpers."""

from __future__ import annotations

import socket
import sys

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

SERVER_COMMAND = [sys.executable, "-m", "copilot_server", "--stdio"]

SAMPLE = "import json\n\n\ndef load_config(path):\n    with open(path) as f:\n        "
SAMPLE_URI = "file:///tmp/copilot-test/config_loader.py"


def profile(name: str, encodings: list[str] | None = None) -> types.ClientCapabilities:
    """A real editor's capabilities (pytest-lsp's recorded profiles) plus inline completion,
    which the recorded profiles predate."""
    spec = {"vscode": "visual-studio-code", "neovim": "neovim@v0.11.0"}[name]
    caps = client_capabilities(spec)
    text_document = caps.text_document or types.TextDocumentClientCapabilities()
    text_document.inline_completion = types.InlineCompletionClientCapabilities(
        dynamic_registration=False
    )
    caps.text_document = text_document
    if encodings is not None:
        general = caps.general or types.GeneralClientCapabilities()
        general.position_encodings = encodings
        caps.general = general
    return caps


def open_document(
    client: LanguageClient, text: str, uri: str = SAMPLE_URI, language: str = "python"
) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id=language, version=1, text=text
            )
        )
    )


def change_document(
    client: LanguageClient,
    uri: str,
    version: int,
    start: tuple[int, int],
    end: tuple[int, int],
    text: str,
) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=start[0], character=start[1]),
                        end=types.Position(line=end[0], character=end[1]),
                    ),
                    text=text,
                )
            ],
        )
    )


def inline_params(
    uri: str, line: int, character: int, invoked: bool = True
) -> types.InlineCompletionParams:
    kind = (
        types.InlineCompletionTriggerKind.Invoked
        if invoked
        else types.InlineCompletionTriggerKind.Automatic
    )
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=kind),
    )


def items_of(result) -> list[types.InlineCompletionItem]:  # noqa: ANN001
    if result is None:
        return []
    if isinstance(result, types.InlineCompletionList):
        return list(result.items)
    return list(result)


def text_of(item: types.InlineCompletionItem) -> str:
    text = item.insert_text
    return text if isinstance(text, str) else text.value


def free_port() -> int:
    """A loopback port nothing listens on once the probe socket closes."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
