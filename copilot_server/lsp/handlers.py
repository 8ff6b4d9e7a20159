"""One function per LSP method and command: convert the params, call a service, convert its
answer. Each takes the `Session` (the app's services, the client port, the status) and the
params, so it can be imported and called alone; lsp/server.py only registers them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from lsprotocol import types

from ..app import App
from ..completion import Superseded
from ..config import CONFIG_SECTION, SettingsChange
from ..engines.loader import EngineState
from ..ports import ClientPort, MessageLevel
from . import code_actions as actions
from . import next_edit as next_edit_lsp
from .convert import (
    completion_request_from_params,
    content_changes,
    document_snapshot,
    inline_items,
    int_arg,
    plain_completion_items,
)
from .status import StatusReporter

log = logging.getLogger(__name__)

ACCEPT_COMMAND = "copilot.acceptedSuggestion"
STATUS_COMMAND = "copilot.status"
TOGGLE_COMMAND = "copilot.toggle"
RELOAD_MODEL_COMMAND = "copilot.reloadModel"
# Returns the server's copy of a document; registered only with COPILOT_SERVER_DEBUG=1
# (the fuzz suite and the soak compare it with the editor's text).
DEBUG_DOCUMENT_COMMAND = "copilot.debugDocument"


@dataclass
class Session:
    """One editor's connection: the app's services, the port to the client, and the status
    the client is shown."""

    app: App
    port: ClientPort
    status: StatusReporter
    # The process's exit code (cli/serve.py): 0 only after `shutdown` (LSP: `exit` without
    # it is an error). pygls's own sys.exit on `exit` is swallowed by its read loop.
    exit_code: int = 1


def open_session(app: App, port: ClientPort) -> Session:
    status = StatusReporter(app, port, busy=app.busy)
    app.loader.add_listener(status.engine_state_changed)
    session = Session(app, port, status)
    app.store.subscribe(lambda change: _settings_changed(session, change))
    return session


def _settings_changed(session: Session, change: SettingsChange) -> None:
    if change.enabled_changed:
        session.status.publish()


def apply_settings(
    session: Session,
    overrides: dict[str, Any] | None,
    source: str,
    *,
    merge: bool = False,
    reload_model: bool = False,
) -> bool:
    """Apply one layer (see SettingsStore); on error keep the previous settings and tell
    the user. `reload_model` loads the model again even when its settings are unchanged
    (the file was fixed on disk)."""
    change = session.app.store.apply(overrides, source, merge=merge)
    for message, level in (
        (change.refused, MessageLevel.WARNING),
        (change.error, MessageLevel.ERROR),
    ):
        if message:
            log.warning("%s", message)
            session.port.show_message(level, message)
    if change.error:
        return False
    loader = session.app.loader
    # Also after a failed load (no engine): fixing model.path must load the model.
    if reload_model and not change.model_changed and loader.started:
        loader.reload(change.new)
    return True


def _section(data: Any) -> Any:
    """Accept either {"copilotServer": {...}} or the section's contents directly."""
    if isinstance(data, dict) and CONFIG_SECTION in data:
        return data[CONFIG_SECTION]
    copilot = next_edit_lsp.from_copilot_client(data)  # copilot-lsp / sidekick set-ups
    return data if copilot is None else copilot


async def _pull_configuration(session: Session) -> None:
    settings = await session.port.configuration(CONFIG_SECTION)
    if isinstance(settings, dict) and settings:
        apply_settings(session, settings, "workspace/configuration")


def _prepare_when_ready(
    session: Session, loop: asyncio.AbstractEventLoop, state: EngineState
) -> None:
    """On the loader thread: once a model is loaded, get the documents opened while it
    loaded ready for their first completion (see ContextEngine.prepare_soon)."""
    if state.state != "ready" or loop.is_closed():
        return

    def prepare_open_documents() -> None:
        app = session.app
        for doc in app.documents.all():
            app.context.prepare_soon(doc.uri, app.loader.engine)

    loop.call_soon_threadsafe(prepare_open_documents)


# -- lifecycle and settings ---------------------------------------------------------------


def initialize(session: Session, params: types.InitializeParams) -> None:
    if params.initialization_options:
        apply_settings(session, _section(params.initialization_options), "initializationOptions")
    session.app.loader.start(session.app.settings)


async def initialized(session: Session, params: types.InitializedParams) -> None:
    loop = asyncio.get_running_loop()
    session.status.attach(loop)
    session.app.loader.add_listener(lambda state: _prepare_when_ready(session, loop, state))
    await session.status.begin_loading_progress()
    await _pull_configuration(session)
    session.app.index.start(session.port.workspace_folders())  # background: returns at once


async def did_change_workspace_folders(
    session: Session, params: types.DidChangeWorkspaceFoldersParams
) -> None:
    # pygls has already updated its workspace; the index follows it.
    await asyncio.to_thread(session.app.index.change_folders, session.port.workspace_folders())


def shutdown(session: Session, params: None = None) -> None:
    session.app.index.stop()
    session.exit_code = 0  # `exit` after `shutdown`: success (LSP)


async def did_change_configuration(
    session: Session, params: types.DidChangeConfigurationParams
) -> None:
    pushed = params.settings
    if isinstance(pushed, dict) and pushed:
        apply_settings(session, _section(pushed), "didChangeConfiguration")
    else:
        await _pull_configuration(session)


def reload_model(session: Session, *args: Any) -> dict[str, Any]:
    # Arguments are user settings, like initializationOptions (the editor sends them from
    # the user's settings, never the project's); the model loads again even if unchanged.
    settings = _section(args[0]) if args else None
    ok = apply_settings(session, settings, "initializationOptions", merge=True, reload_model=True)
    loader = session.app.loader
    return {"reloading": ok and loader.started, "state": loader.state.state}


def toggle(session: Session, *args: Any) -> dict[str, Any]:
    enabled = not session.app.settings.completion.enabled
    apply_settings(session, {"completion": {"enabled": enabled}}, "runtime")
    return {"enabled": enabled}


async def status(session: Session, *args: Any) -> dict[str, Any]:
    return await session.status.report() | {"nextEdits": session.app.next_edits.metrics.as_dict()}


# -- documents ----------------------------------------------------------------------------


def did_open(session: Session, params: types.DidOpenTextDocumentParams) -> None:
    doc, app = params.text_document, session.app
    app.documents.open(doc.uri, doc.language_id, doc.version, doc.text)
    app.context.prepare_soon(doc.uri, app.loader.engine)


def did_change(session: Session, params: types.DidChangeTextDocumentParams) -> None:
    changes = content_changes(params.content_changes)
    uri, version = params.text_document.uri, params.text_document.version
    # The edit history (next edits) sees each change's span before it is applied.
    documents, history = session.app.documents, session.app.next_edits.history
    encoding = session.port.features.encoding
    pending = history.begin(documents.get(uri), changes, encoding)
    documents.change(uri, version, changes, encoding)
    history.finish(pending, documents.get(uri), version)


def did_close(session: Session, params: types.DidCloseTextDocumentParams) -> None:
    uri, app = params.text_document.uri, session.app
    app.documents.close(uri)
    app.completions.forget_document(uri)
    app.next_edits.forget_document(uri)
    app.notebooks.forget(uri)


def notebook_context(session: Session, params: Any) -> None:
    session.app.notebooks.update(params)


def debug_document(session: Session, *args: Any) -> dict[str, Any]:
    return document_snapshot(session.app.documents, args)


# -- completions --------------------------------------------------------------------------


async def inline_completion(
    session: Session, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    started = time.perf_counter()
    app, encoding = session.app, session.port.features.encoding
    app.next_edits.cancel_model()  # a next-edit rewrite yields the model to typing
    request = completion_request_from_params(params, app.documents, app.settings, encoding)
    if request is None:
        return types.InlineCompletionList(items=[])
    try:
        with app.busy():
            result = await app.completions.complete(request)
    except Superseded:
        return types.InlineCompletionList(items=[])
    items = inline_items(params, request, result, ACCEPT_COMMAND, encoding)
    # The handler's own time around the service (position conversion, status, items).
    edge_ms = (time.perf_counter() - started) * 1000 - result.latency_ms
    app.completions.note_server_time(result, max(0.0, edge_ms))
    return types.InlineCompletionList(items=items)


async def completion(
    session: Session, params: types.CompletionParams
) -> types.CompletionList | None:
    # Fallback for clients without inline completion (Helix, older set-ups).
    app, features = session.app, session.port.features
    if features.inline_completion:
        return None
    request = completion_request_from_params(params, app.documents, app.settings, features.encoding)
    if request is None:
        return None
    try:
        with app.busy():
            result = await app.completions.complete(request)
    except Superseded:
        return types.CompletionList(is_incomplete=True, items=[])
    return plain_completion_items(params, request, result, ACCEPT_COMMAND)


def accepted(session: Session, *args: Any) -> None:
    # pygls passes each command argument as its own parameter.
    info = args[0] if args else {}
    length = int_arg(info, "length") if isinstance(info, dict) else 0
    session.app.completions.record_accepted(length)
    log.info("suggestion accepted (%d chars)", length)


# -- next edits (the shapes of GitHub's copilot-language-server, lsp/next_edit.py) --------


async def copilot_inline_edit(session: Session, params: Any) -> dict[str, Any]:
    app = session.app
    return await next_edit_lsp.inline_edit(
        app.next_edits, app.documents, session.port.features.encoding, params
    )


def did_focus(session: Session, params: Any) -> None:
    next_edit_lsp.did_focus(session.app.next_edits, params)


def did_show_inline_edit(session: Session, params: Any) -> None:
    next_edit_lsp.did_show(session.app.next_edits, params)


def accepted_next_edit(session: Session, *args: Any) -> None:
    next_edit_lsp.accepted(session.app.next_edits, args)


# -- code actions: explain and fix (lsp/code_actions.py) ----------------------------------


def code_action(session: Session, params: types.CodeActionParams) -> list[types.CodeAction]:
    return actions.code_actions(session.app, session.port, params)


async def code_action_resolve(session: Session, params: types.CodeAction) -> types.CodeAction:
    return await actions.resolve_code_action(session.app, session.port, params)


async def explain(session: Session, *args: Any) -> dict[str, Any]:
    return await actions.explain_command(session.app, session.port, args)


async def fix(session: Session, *args: Any) -> dict[str, Any]:
    return await actions.fix_command(session.app, session.port, args)
