"""The real server over stdio, driven by pytest-lsp with VS Code and Neovim capabilities,
and the real embedded model."""

from __future__ import annotations

import asyncio
import time

import pytest
import pytest_lsp
from lsp_helpers import (
    SAMPLE,
    SAMPLE_URI,
    SERVER_COMMAND,
    change_document,
    inline_params,
    items_of,
    open_document,
    profile,
    text_of,
)
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

pytestmark = pytest.mark.model


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient):
    lsp_client.initialized_with = await lsp_client.initialize_session(  # type: ignore[attr-defined]
        types.InitializeParams(capabilities=profile("vscode"))
    )
    yield
    await lsp_client.shutdown_session()


async def _status(client: LanguageClient) -> dict:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="copilot.status", arguments=[])
    )


async def test_initialize_advertises_inline_completion_and_incremental_sync(client: LanguageClient):
    caps = (
        client.protocol.server_capabilities
        if hasattr(client.protocol, "server_capabilities")
        else None
    )
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="copilot.status")
    )
    assert result["state"] in ("loading", "ready", "busy")
    if caps is not None:
        assert caps.inline_completion_provider is not None
        assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental


async def test_inline_completion_suggests_json_load(client: LanguageClient):
    open_document(client, SAMPLE)
    result = await client.text_document_inline_completion_async(inline_params(SAMPLE_URI, 5, 8))
    items = items_of(result)
    assert items, "expected a suggestion"
    item = items[0]
    assert "json.load(f)" in text_of(item)
    assert item.range.start == types.Position(line=5, character=8)
    assert item.range.end == types.Position(line=5, character=8)
    assert item.command is not None and item.command.command == "copilot.acceptedSuggestion"


async def test_typed_through_answers_from_cache_fast(client: LanguageClient):
    open_document(client, SAMPLE)
    first = items_of(
        await client.text_document_inline_completion_async(inline_params(SAMPLE_URI, 5, 8))
    )
    assert first
    shown = text_of(first[0])
    typed = shown[:3]
    change_document(client, SAMPLE_URI, 2, (5, 8), (5, 8), typed)
    started = time.perf_counter()
    second = items_of(
        await client.text_document_inline_completion_async(
            inline_params(SAMPLE_URI, 5, 8 + len(typed), invoked=False)
        )
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert second and text_of(second[0]) == shown[len(typed) :]
    assert elapsed_ms < 50, f"typed-through answer took {elapsed_ms:.0f} ms"
    metrics = (await _status(client))["metrics"]
    assert metrics["typed_through_hits"] == 1
    assert metrics["model_calls"] == 1


async def test_cancel_returns_request_cancelled_and_stops_the_model(client: LanguageClient):
    # A long body to write keeps the model busy long enough to cancel it mid-decode.
    text = "def describe_every_http_status_code():\n    "
    uri = "file:///tmp/copilot-test/cancel.py"
    open_document(client, text, uri)
    await client.workspace_did_change_configuration_async(
        types.DidChangeConfigurationParams(
            settings={"copilotServer": {"completion": {"maxTokens": 400, "maxLines": 200}}}
        )
    ) if hasattr(
        client, "workspace_did_change_configuration_async"
    ) else client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"copilotServer": {"completion": {"maxTokens": 400, "maxLines": 200}}}
        )
    )
    for _ in range(600):  # the model must be loaded, so the cancel lands in the decode loop
        if (await _status(client))["state"] == "ready":
            break
        await asyncio.sleep(0.1)
    msg_id = "cancel-me"
    future = client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 1, 4), msg_id=msg_id
    )
    await asyncio.sleep(1.5)  # prompt evaluated, decoding
    cancelled_at = time.perf_counter()
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
    with pytest.raises(JsonRpcException) as info:
        await asyncio.wait_for(asyncio.wrap_future(future), timeout=5)
    assert info.value.code == -32800
    assert time.perf_counter() - cancelled_at < 1.0
    # The next request is served: the old decode loop stopped at the cancel flag instead
    # of running on to its 400-token cap (the worker would still be busy with it).
    open_document(client, SAMPLE)
    result = await client.text_document_inline_completion_async(inline_params(SAMPLE_URI, 5, 8))
    assert items_of(result)
    metrics = (await _status(client))["metrics"]
    assert metrics["cancelled"] >= 1
    assert metrics["cancelled_generations"] == 1
    assert metrics["tokens_generated_cancelled"] < 400


async def test_position_past_end_is_invalid_params_and_server_stays_up(client: LanguageClient):
    open_document(client, SAMPLE)
    with pytest.raises(JsonRpcException) as info:
        await client.text_document_inline_completion_async(inline_params(SAMPLE_URI, 99, 0))
    assert info.value.code == -32602
    with pytest.raises(JsonRpcException):
        await client.text_document_inline_completion_async(
            inline_params("file:///nowhere.py", 0, 0)
        )
    assert (await _status(client))["state"] in ("loading", "ready", "busy")


async def test_bad_setting_is_reported_and_previous_settings_stay(client: LanguageClient):
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"copilotServer": {"completion": {"maxTokens": -5}}}
        )
    )
    for _ in range(50):
        if client.messages:
            break
        await asyncio.sleep(0.05)
    assert client.messages, "expected window/showMessage"
    message = client.messages[-1].message
    assert "completion.max_tokens" in message and "previous settings kept" in message
    open_document(client, SAMPLE)
    result = await client.text_document_inline_completion_async(inline_params(SAMPLE_URI, 5, 8))
    assert items_of(result)


async def test_returning_to_an_earlier_cursor_is_answered_by_the_prompt_cache(
    client: LanguageClient,
):
    text = SAMPLE + "\n\n\ndef save_config(path, config):\n    with open(path, 'w') as f:\n        "
    open_document(client, text)
    first = items_of(
        await client.text_document_inline_completion_async(inline_params(SAMPLE_URI, 5, 8))
    )
    items_of(await client.text_document_inline_completion_async(inline_params(SAMPLE_URI, 10, 8)))
    again = items_of(
        await client.text_document_inline_completion_async(inline_params(SAMPLE_URI, 5, 8))
    )
    assert [text_of(i) for i in again] == [text_of(i) for i in first]
    metrics = (await _status(client))["metrics"]
    assert metrics["lru_hits"] == 1
    assert metrics["model_calls"] == 2


async def test_accept_command_counts_accepted_characters_locally(client: LanguageClient):
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="copilot.acceptedSuggestion", arguments=[{"id": "c1", "length": 17}]
        )
    )
    metrics = (await _status(client))["metrics"]
    assert metrics["accepted"] == 1 and metrics["accepted_chars"] == 17


async def test_workspace_folders_added_and_removed_are_indexed_and_dropped(
    client: LanguageClient, tmp_path
):
    caps = client.initialized_with.capabilities  # type: ignore[attr-defined]
    assert caps.workspace.workspace_folders.change_notifications
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, name in ((first, "from_first"), (second, "from_second")):
        folder.mkdir()
        (folder / f"{name}.py").write_text(f"def {name}(value):\n    return value\n")

    async def indexed(folders: list[str], files: int) -> dict:
        deadline = time.monotonic() + 30
        while True:
            index = (await _status(client))["index"]
            if (
                index["folders"] == folders
                and index["files"] == files
                and index["state"]
                in (
                    "watching",
                    "ready",
                )
            ):
                return index
            assert time.monotonic() < deadline, index
            await asyncio.sleep(0.1)

    def change(added: list, removed: list) -> None:
        client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(added=added, removed=removed)
            )
        )

    one = types.WorkspaceFolder(uri=first.as_uri(), name="first")
    two = types.WorkspaceFolder(uri=second.as_uri(), name="second")
    change([one], [])
    await indexed([str(first.resolve())], 1)
    change([two], [one])
    await indexed([str(second.resolve())], 1)
