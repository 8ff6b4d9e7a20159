"""`copilot-server demo`: complete the shipped sample through the real LSP path.

Starts `copilot-server --stdio` as a child process and drives it as an editor would
(initialize, didOpen, textDocument/inlineCompletion), then prints the ghost text.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from importlib import resources
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from ..config import Settings


def sample_path() -> Path:
    return Path(str(resources.files("copilot_server") / "samples" / "demo.py"))


async def run_demo(path: Path, line: int | None, character: int | None) -> int:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if line is None:
        # The last line that holds only indentation: where the user is about to type.
        line = (
            max(i for i, ln in enumerate(lines) if ln.strip() == "" and ln)
            if any(ln and not ln.strip() for ln in lines)
            else len(lines) - 1
        )
    if character is None:
        character = len(lines[line])
    client = LanguageClient("copilot-server-demo", "0.1")
    statuses: list[dict] = []

    @client.feature("copilot/status")
    def on_status(params) -> None:  # noqa: ANN001 - raw notification payload
        statuses.append(params)

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def on_log(params: types.LogMessageParams) -> None:
        pass  # the server's stderr already shows its log

    await client.start_io(sys.executable, "-m", "copilot_server", "--stdio")
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities()
        )
    )
    await client.initialize_async(types.InitializeParams(capabilities=caps, process_id=None))
    client.initialized(types.InitializedParams())
    uri = path.resolve().as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )
    print(f"{path}:{line + 1}:{character + 1}")
    print("\n".join(lines[max(0, line - 4) : line + 1]) + "▌")
    started = time.perf_counter()
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
    )
    first_ms = (time.perf_counter() - started) * 1000
    items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
    if not items:
        print("no suggestion; last status:", statuses[-1] if statuses else None)
        await _stop(client)
        return 1
    suggestion = items[0].insert_text
    suggestion = suggestion if isinstance(suggestion, str) else suggestion.value
    print("suggestion ↓ (ghost text after the cursor)")
    print(lines[line][:character] + suggestion)
    # The same request again: answered from the KV cache / suggestion cache.
    started = time.perf_counter()
    await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
    )
    again_ms = (time.perf_counter() - started) * 1000
    print(f"-- first request {first_ms:.0f} ms (includes model load), repeated {again_ms:.0f} ms")
    await _stop(client)
    return 0


async def _stop(client: LanguageClient) -> None:
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


def register_cli(sub: argparse._SubParsersAction, common) -> None:  # noqa: ANN001
    demo = sub.add_parser("demo", help="complete the shipped sample through the LSP server")
    demo.add_argument("path", nargs="?", help="file to complete (default: the shipped sample)")
    demo.add_argument("--line", type=int)
    demo.add_argument("--character", type=int)
    common(demo)
    demo.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.path) if args.path else sample_path()
    return asyncio.run(run_demo(path, args.line, args.character))
