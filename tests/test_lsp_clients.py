"""Client-specific behaviour: position encodings, Neovim-like clients, the plain completion
fallback, status notifications, and the TCP transport."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
import pytest_lsp
from lsp_helpers import (
    SAMPLE,
    SAMPLE_URI,
    SERVER_COMMAND,
    free_port,
    inline_params,
    items_of,
    open_document,
    profile,
    text_of,
)
from lsprotocol import types
from pygls.lsp.client import LanguageClient as PlainClient
from pytest_lsp import ClientServerConfig, LanguageClient

pytestmark = pytest.mark.model

# A line with an emoji and CJK before the cursor: columns differ per encoding.
EMOJI_TEXT = (
    'import json\n\n\ndef load_config(path):\n    """Load 😀 設定."""\n'
    "    with open(path) as f:  # 😀\n        "
)


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER_COMMAND), params=["utf-16", "utf-8"]
)
async def encoded_client(lsp_client: LanguageClient, request):
    caps = profile("vscode", encodings=[request.param] if request.param == "utf-8" else ["utf-16"])
    result = await lsp_client.initialize_session(types.InitializeParams(capabilities=caps))
    lsp_client.negotiated = result.capabilities.position_encoding  # type: ignore[attr-defined]
    lsp_client.expected = request.param  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def test_utf16_and_utf8_clients_get_ranges_at_their_cursor(encoded_client: LanguageClient):
    assert encoded_client.negotiated == encoded_client.expected
    open_document(encoded_client, EMOJI_TEXT)
    # Cursor at the end of the comment line with the emoji, in the client's own units.
    line = "    with open(path) as f:  # 😀"
    column = (
        len(line.encode("utf-8"))
        if encoded_client.expected == "utf-8"
        else len(line.encode("utf-16-le")) // 2
    )
    result = await encoded_client.text_document_inline_completion_async(
        inline_params(SAMPLE_URI, 5, column)
    )
    for item in items_of(result):
        assert item.range.start == types.Position(line=5, character=column)
    # And on the empty line after it, the suggestion is the body, as for an ASCII file.
    result = await encoded_client.text_document_inline_completion_async(
        inline_params(SAMPLE_URI, 6, 8)
    )
    items = items_of(result)
    assert items and "json.load(f)" in text_of(items[0])


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def neovim_client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(capabilities=profile("neovim")))
    yield
    await lsp_client.shutdown_session()


async def test_neovim_client_gets_inline_completion_and_status(neovim_client: LanguageClient):
    statuses: list = []
    neovim_client.feature("copilot/status")(lambda params: statuses.append(params))
    open_document(neovim_client, SAMPLE)
    result = await neovim_client.text_document_inline_completion_async(
        inline_params(SAMPLE_URI, 5, 8)
    )
    assert items_of(result)
    status = await neovim_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="copilot.status")
    )
    assert status["state"] == "ready"
    assert status["model"].endswith(".gguf")


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def plain_client(lsp_client: LanguageClient):
    # A client without inline completion (Helix-like): textDocument/completion is the fallback.
    caps = profile("neovim")
    caps.text_document.inline_completion = None
    await lsp_client.initialize_session(types.InitializeParams(capabilities=caps))
    yield
    await lsp_client.shutdown_session()


async def test_completion_fallback_offers_one_item_sorted_last(plain_client: LanguageClient):
    open_document(plain_client, SAMPLE)
    result = await plain_client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=SAMPLE_URI),
            position=types.Position(line=5, character=8),
        )
    )
    assert isinstance(result, types.CompletionList)
    assert len(result.items) == 1
    item = result.items[0]
    assert "json.load(f)" in item.text_edit.new_text
    assert item.sort_text.startswith("~")


async def test_tcp_transport_serves_inline_completion():
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "copilot_server",
            "--tcp",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stderr=subprocess.DEVNULL,
    )
    client = PlainClient("tcp-test", "1")
    try:
        for _ in range(100):
            try:
                await client.start_tcp("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        await client.initialize_async(types.InitializeParams(capabilities=profile("vscode")))
        client.initialized(types.InitializedParams())
        open_document(client, SAMPLE)
        result = await asyncio.wait_for(
            client.text_document_inline_completion_async(inline_params(SAMPLE_URI, 5, 8)),
            timeout=120,
        )
        assert items_of(result) and "json.load(f)" in text_of(items_of(result)[0])
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
    finally:
        server.terminate()
        server.wait(timeout=10)
