"""pygls wiring only: lifecycle, document sync, and each feature handed to its service."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.exceptions import JsonRpcInvalidRequest

from .. import __version__
from ..app import build_app
from ..completion import Superseded
from ..config import CONFIG_SECTION, Settings, SettingsChange
from ..context.notebooks import NOTEBOOK_CONTEXT
from ..engines.loader import EngineLoader, EngineState
from ..ports import MessageLevel
from . import code_actions as actions
from . import next_edit as next_edit_lsp
from .client_port import PyglsClientPort
from .convert import (
    completion_request_from_params,
    content_changes,
    document_snapshot,
    inline_items,
    int_arg,
    plain_completion_items,
    workspace_folders,
)
from .protocol import HardenedLanguageServer
from .status import StatusReporter

log = logging.getLogger(__name__)

ACCEPT_COMMAND = "copilot.acceptedSuggestion"
STATUS_COMMAND = "copilot.status"
TOGGLE_COMMAND = "copilot.toggle"
RELOAD_MODEL_COMMAND = "copilot.reloadModel"
# Returns the server's copy of a document; registered only with COPILOT_SERVER_DEBUG=1
# (the fuzz suite and the soak compare it with the editor's text).
DEBUG_DOCUMENT_COMMAND = "copilot.debugDocument"
DEBUG_ENV = "COPILOT_SERVER_DEBUG"


def _prefer_utf8(client_capabilities: types.ClientCapabilities) -> str:
    """UTF-8 when the client offers it (no conversion needed), else the LSP default UTF-16."""
    general = client_capabilities.general
    offered = (general.position_encodings if general else None) or []
    if types.PositionEncodingKind.Utf8 in offered:
        return types.PositionEncodingKind.Utf8
    return types.PositionEncodingKind.Utf16


# pygls takes the client's first listed encoding; we want UTF-8 whenever it is offered.
ServerCapabilitiesBuilder.choose_position_encoding = classmethod(  # type: ignore[method-assign]
    lambda cls, caps: _prefer_utf8(caps)
)


class CopilotServer(HardenedLanguageServer):
    """pygls's server around the app's services (app.py): the handlers below convert LSP
    values, call a service, and convert its answer; the client port sends what the
    services have to say to the editor."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__("copilot-server", __version__)
        self.initialize_received = False
        # The process's exit code (cli.serve): 0 only after `shutdown` (LSP: `exit` without
        # it is an error). pygls's own sys.exit on `exit` is swallowed by its read loop.
        self.exit_code = 1
        self.app = build_app(settings, measure_profile=True)
        self.port = PyglsClientPort(self)
        self.status = StatusReporter(self.app, self.port, busy=self.app.busy)
        self.app.loader.add_listener(self.status.engine_state_changed)
        self.app.store.subscribe(self._settings_changed)

    def apply_settings(
        self,
        overrides: dict[str, Any] | None,
        source: str,
        *,
        merge: bool = False,
        reload_model: bool = False,
    ) -> bool:
        """Apply one layer (see SettingsStore); on error keep the previous settings and tell
        the user. `reload_model` loads the model again even when its settings are unchanged
        (the file was fixed on disk)."""
        change = self.app.store.apply(overrides, source, merge=merge)
        for message, level in (
            (change.refused, MessageLevel.WARNING),
            (change.error, MessageLevel.ERROR),
        ):
            if message:
                log.warning("%s", message)
                self.port.show_message(level, message)
        if change.error:
            return False
        loader = self.app.loader
        # Also after a failed load (no engine): fixing model.path must load the model.
        if reload_model and not change.model_changed and loader.started:
            loader.reload(change.new)
        return True

    def _settings_changed(self, change: SettingsChange) -> None:
        if change.enabled_changed:
            self.status.publish()


def create_server(settings: Settings | None = None) -> CopilotServer:
    server = CopilotServer(settings)
    _register(server)
    return server


def _prepare_when_ready(
    ls: CopilotServer, loop: asyncio.AbstractEventLoop, state: EngineState
) -> None:
    """On the loader thread: once a model is loaded, get the documents opened while it
    loaded ready for their first completion (see ContextEngine.prepare_soon)."""
    if state.state != "ready" or loop.is_closed():
        return

    def prepare_open_documents() -> None:
        for doc in ls.app.documents.all():
            ls.app.context.prepare_soon(doc.uri, ls.app.loader.engine)

    loop.call_soon_threadsafe(prepare_open_documents)


def _initialize_once(server: CopilotServer) -> None:
    """A second `initialize` is answered -32600 before pygls replaces the workspace and the
    client's capabilities, and before a second model would load beside the first."""
    builtin = server.protocol.fm.builtin_features
    pygls_initialize = builtin[types.INITIALIZE]

    def initialize_once(params: types.InitializeParams) -> Any:
        if server.initialize_received:
            raise JsonRpcInvalidRequest("the server is already initialized")
        server.initialize_received = True
        return (yield from pygls_initialize(params))

    builtin[types.INITIALIZE] = initialize_once


def _register(server: CopilotServer) -> None:
    _initialize_once(server)

    @server.feature(types.INITIALIZE)
    def initialize(ls: CopilotServer, params: types.InitializeParams) -> None:
        if params.initialization_options:
            ls.apply_settings(_section(params.initialization_options), "initializationOptions")
        ls.app.loader.start(ls.app.settings)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: CopilotServer, params: types.InitializedParams) -> None:
        loop = asyncio.get_running_loop()
        ls.status.attach(loop)
        ls.app.loader.add_listener(lambda state: _prepare_when_ready(ls, loop, state))
        await ls.status.begin_loading_progress()
        await _pull_configuration(ls)
        ls.app.index.start(workspace_folders(ls.workspace))  # background: returns at once

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def did_change_workspace_folders(
        ls: CopilotServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        # pygls has already updated ls.workspace; the index follows it.
        await asyncio.to_thread(ls.app.index.change_folders, workspace_folders(ls.workspace))

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: CopilotServer, params: None = None) -> None:
        ls.app.index.stop()
        ls.exit_code = 0  # `exit` after `shutdown`: success (LSP)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: CopilotServer, params: types.DidChangeConfigurationParams
    ) -> None:
        pushed = params.settings
        if isinstance(pushed, dict) and pushed:
            ls.apply_settings(_section(pushed), "didChangeConfiguration")
        else:
            await _pull_configuration(ls)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CopilotServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        ls.app.documents.open(doc.uri, doc.language_id, doc.version, doc.text)
        ls.app.context.prepare_soon(doc.uri, ls.app.loader.engine)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CopilotServer, params: types.DidChangeTextDocumentParams) -> None:
        changes = content_changes(params.content_changes)
        uri, version = params.text_document.uri, params.text_document.version
        # The edit history (next edits) sees each change's span before it is applied.
        documents, history = ls.app.documents, ls.app.next_edits.history
        encoding = ls.port.features.encoding
        pending = history.begin(documents.get(uri), changes, encoding)
        documents.change(uri, version, changes, encoding)
        history.finish(pending, documents.get(uri), version)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CopilotServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.app.documents.close(params.text_document.uri)
        ls.app.completions.forget_document(params.text_document.uri)
        ls.app.next_edits.forget_document(params.text_document.uri)
        ls.app.notebooks.forget(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: CopilotServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        started = time.perf_counter()
        ls.app.next_edits.cancel_model()  # a next-edit rewrite yields the model to typing
        request = completion_request_from_params(
            params, ls.app.documents, ls.app.settings, ls.port.features.encoding
        )
        if request is None:
            return types.InlineCompletionList(items=[])
        try:
            with ls.app.busy():
                result = await ls.app.completions.complete(request)
        except Superseded:
            return types.InlineCompletionList(items=[])
        items = inline_items(params, request, result, ACCEPT_COMMAND, ls.port.features.encoding)
        # The handler's own time around the service (position conversion, status, items).
        edge_ms = (time.perf_counter() - started) * 1000 - result.latency_ms
        ls.app.completions.note_server_time(result, max(0.0, edge_ms))
        return types.InlineCompletionList(items=items)

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=[".", "(", " "], resolve_provider=False),
    )
    async def completion(
        ls: CopilotServer, params: types.CompletionParams
    ) -> types.CompletionList | None:
        # Fallback for clients without inline completion (Helix, older set-ups).
        if ls.port.features.inline_completion:
            return None
        request = completion_request_from_params(
            params, ls.app.documents, ls.app.settings, ls.port.features.encoding
        )
        if request is None:
            return None
        try:
            with ls.app.busy():
                result = await ls.app.completions.complete(request)
        except Superseded:
            return types.CompletionList(is_incomplete=True, items=[])
        return plain_completion_items(params, request, result, ACCEPT_COMMAND)

    @server.command(ACCEPT_COMMAND)
    def accepted(ls: CopilotServer, *args: Any) -> None:
        # pygls passes each command argument as its own parameter.
        info = args[0] if args else {}
        length = int_arg(info, "length") if isinstance(info, dict) else 0
        ls.app.completions.record_accepted(length)
        log.info("suggestion accepted (%d chars)", length)

    @server.command(STATUS_COMMAND)
    async def status(ls: CopilotServer, *args: Any) -> dict[str, Any]:
        return await ls.status.report() | {"nextEdits": ls.app.next_edits.metrics.as_dict()}

    # Next edit suggestions in the shapes of GitHub's copilot-language-server (next_edit/lsp.py).
    @server.feature(next_edit_lsp.INLINE_EDIT)
    async def copilot_inline_edit(ls: CopilotServer, params: Any) -> dict[str, Any]:
        return await next_edit_lsp.inline_edit(
            ls.app.next_edits, ls.app.documents, ls.port.features.encoding, params
        )

    @server.feature(NOTEBOOK_CONTEXT)
    def notebook_context(ls: CopilotServer, params: Any) -> None:
        ls.app.notebooks.update(params)

    @server.feature(next_edit_lsp.DID_FOCUS)
    def did_focus(ls: CopilotServer, params: Any) -> None:
        next_edit_lsp.did_focus(ls.app.next_edits, params)

    @server.feature(next_edit_lsp.DID_SHOW)
    def did_show_inline_edit(ls: CopilotServer, params: Any) -> None:
        next_edit_lsp.did_show(ls.app.next_edits, params)

    @server.command(next_edit_lsp.ACCEPT_COMMAND)
    def accepted_next_edit(ls: CopilotServer, *args: Any) -> None:
        next_edit_lsp.accepted(ls.app.next_edits, args)

    if os.environ.get(DEBUG_ENV) == "1":

        @server.command(DEBUG_DOCUMENT_COMMAND)
        def debug_document(ls: CopilotServer, *args: Any) -> dict[str, Any]:
            return document_snapshot(ls.app.documents, args)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=actions.CODE_ACTION_KINDS, resolve_provider=True),
    )
    def code_action(ls: CopilotServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return actions.code_actions(ls.app, ls.port, params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(ls: CopilotServer, params: types.CodeAction) -> types.CodeAction:
        return await actions.resolve_code_action(ls.app, ls.port, params)

    @server.command(actions.EXPLAIN_COMMAND)
    async def explain(ls: CopilotServer, *args: Any) -> dict[str, Any]:
        return await actions.explain_command(ls.app, ls.port, args)

    @server.command(actions.FIX_COMMAND)
    async def fix(ls: CopilotServer, *args: Any) -> dict[str, Any]:
        return await actions.fix_command(ls.app, ls.port, args)

    @server.command(RELOAD_MODEL_COMMAND)
    def reload_model(ls: CopilotServer, *args: Any) -> dict[str, Any]:
        # Arguments are user settings, like initializationOptions (the editor sends them from
        # the user's settings, never the project's); the model loads again even if unchanged.
        settings = _section(args[0]) if args else None
        ok = ls.apply_settings(settings, "initializationOptions", merge=True, reload_model=True)
        return {"reloading": ok and ls.app.loader.started, "state": ls.app.loader.state.state}

    @server.command(TOGGLE_COMMAND)
    def toggle(ls: CopilotServer, *args: Any) -> dict[str, Any]:
        enabled = not ls.app.settings.completion.enabled
        ls.apply_settings({"completion": {"enabled": enabled}}, "runtime")
        return {"enabled": enabled}


def _section(data: Any) -> Any:
    """Accept either {"copilotServer": {...}} or the section's contents directly."""
    if isinstance(data, dict) and CONFIG_SECTION in data:
        return data[CONFIG_SECTION]
    copilot = next_edit_lsp.from_copilot_client(data)  # copilot-lsp / sidekick set-ups
    return data if copilot is None else copilot


async def _pull_configuration(ls: CopilotServer) -> None:
    if not ls.port.features.configuration:
        return
    try:
        result = await asyncio.wait_for(
            ls.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=CONFIG_SECTION)])
            ),
            timeout=5,
        )
    except Exception as exc:  # a client that fails this request must not stop us
        log.warning("workspace/configuration failed: %s", exc)
        return
    if result and isinstance(result[0], dict) and result[0]:
        ls.apply_settings(result[0], "workspace/configuration")


__all__ = ["create_server", "CopilotServer", "EngineState", "EngineLoader"]
