"""An LSP client of our own server (`copilot-server --stdio` as a child process), driven
as an editor drives it: initialize, didOpen, inlineCompletion, shutdown. `copilot-server
demo` uses it, so that the command needs no LSP types of its own."""

from __future__ import annotations

import sys
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient


class ServerClient:
    """One running server and the client connected to it; `statuses` collects the
    server's `copilot/status` notifications."""

    def __init__(self, name: str = "copilot-server-client", version: str = "0.1") -> None:
        self._client = LanguageClient(name, version)
        self.statuses: list[Any] = []

        @self._client.feature("copilot/status")
        def on_status(params: Any) -> None:  # the raw notification payload
            self.statuses.append(params)

        @self._client.feature(types.WINDOW_LOG_MESSAGE)
        def on_log(params: types.LogMessageParams) -> None:
            pass  # the server's stderr already shows its log

    async def start(self, *args: str) -> None:
        """Start `python -m copilot_server ARGS` and initialize it as a client with
        inline completion."""
        await self._client.start_io(sys.executable, "-m", "copilot_server", *args)
        caps = types.ClientCapabilities(
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities()
            )
        )
        await self._client.initialize_async(
            types.InitializeParams(capabilities=caps, process_id=None)
        )
        self._client.initialized(types.InitializedParams())

    def open(self, uri: str, language_id: str, text: str, version: int = 1) -> None:
        self._client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id=language_id, version=version, text=text
                )
            )
        )

    async def inline(self, uri: str, line: int, character: int, *, invoked: bool) -> list[str]:
        """The insert texts of the server's inline completion items at a position."""
        kind = (
            types.InlineCompletionTriggerKind.Invoked
            if invoked
            else types.InlineCompletionTriggerKind.Automatic
        )
        result = await self._client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character),
                context=types.InlineCompletionContext(trigger_kind=kind),
            )
        )
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        return [
            i.insert_text if isinstance(i.insert_text, str) else i.insert_text.value for i in items
        ]

    async def stop(self) -> None:
        await self._client.shutdown_async(None)
        self._client.exit(None)
        await self._client.stop()
