"""pygls wiring only: the server, and each LSP method and command handed to its handler
in lsp/handlers.py (the table below is the server's table of contents)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.exceptions import JsonRpcInvalidRequest

from .. import __version__
from ..app import App, build_app
from ..config import Settings
from ..context.notebooks import NOTEBOOK_CONTEXT
from . import code_actions, handlers
from . import next_edit as next_edit_lsp
from .client_port import PyglsClientPort
from .handlers import Session
from .protocol import HardenedLanguageServer

DEBUG_ENV = "COPILOT_SERVER_DEBUG"

# (method, handler, options): what the server answers, in the order a session meets it.
FEATURES: list[tuple[str, Callable[..., Any], Any]] = [
    (types.INITIALIZE, handlers.initialize, None),
    (types.INITIALIZED, handlers.initialized, None),
    (types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS, handlers.did_change_workspace_folders, None),
    (types.SHUTDOWN, handlers.shutdown, None),
    (types.WORKSPACE_DID_CHANGE_CONFIGURATION, handlers.did_change_configuration, None),
    (types.TEXT_DOCUMENT_DID_OPEN, handlers.did_open, None),
    (types.TEXT_DOCUMENT_DID_CHANGE, handlers.did_change, None),
    (types.TEXT_DOCUMENT_DID_CLOSE, handlers.did_close, None),
    (
        types.TEXT_DOCUMENT_INLINE_COMPLETION,
        handlers.inline_completion,
        types.InlineCompletionOptions(),
    ),
    (
        types.TEXT_DOCUMENT_COMPLETION,
        handlers.completion,
        types.CompletionOptions(trigger_characters=[".", "(", " "], resolve_provider=False),
    ),
    (next_edit_lsp.INLINE_EDIT, handlers.copilot_inline_edit, None),
    (NOTEBOOK_CONTEXT, handlers.notebook_context, None),
    (next_edit_lsp.DID_FOCUS, handlers.did_focus, None),
    (next_edit_lsp.DID_SHOW, handlers.did_show_inline_edit, None),
    (
        types.TEXT_DOCUMENT_CODE_ACTION,
        handlers.code_action,
        types.CodeActionOptions(
            code_action_kinds=code_actions.CODE_ACTION_KINDS, resolve_provider=True
        ),
    ),
    (types.CODE_ACTION_RESOLVE, handlers.code_action_resolve, None),
]

# (command, handler): workspace/executeCommand; pygls passes each argument on its own.
COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    (handlers.ACCEPT_COMMAND, handlers.accepted),
    (handlers.STATUS_COMMAND, handlers.status),
    (next_edit_lsp.ACCEPT_COMMAND, handlers.accepted_next_edit),
    (code_actions.EXPLAIN_COMMAND, handlers.explain),
    (code_actions.FIX_COMMAND, handlers.fix),
    (handlers.RELOAD_MODEL_COMMAND, handlers.reload_model),
    (handlers.TOGGLE_COMMAND, handlers.toggle),
]


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


class SessionServer(HardenedLanguageServer):
    """pygls's server carrying the one session its handlers work on; no logic of its own."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__("copilot-server", __version__)
        app = build_app(settings, measure_profile=True)
        self.session = handlers.open_session(app, PyglsClientPort(self))

    @property
    def app(self) -> App:
        return self.session.app

    @property
    def exit_code(self) -> int:
        """The process's exit code (cli/serve.py): 0 only after `shutdown`."""
        return self.session.exit_code


def create_server(settings: Settings | None = None) -> SessionServer:
    server = SessionServer(settings)
    _initialize_once(server)
    session = server.session
    for method, handler, options in FEATURES:
        server.feature(method, options)(_bound(handler, session))
    commands = COMMANDS
    if os.environ.get(DEBUG_ENV) == "1":
        commands = [*COMMANDS, (handlers.DEBUG_DOCUMENT_COMMAND, handlers.debug_document)]
    for name, handler in commands:
        server.command(name)(_bound(handler, session))
    return server


def _bound(handler: Callable[..., Any], session: Session) -> Callable[..., Any]:
    """`handler` with the session as its first argument, in the shape pygls reads: still a
    coroutine function where it was one, and `*args` so a command gets its arguments as
    they came (pygls structures named parameters by their annotations)."""
    if inspect.iscoroutinefunction(handler):

        async def bound_async(*args: Any) -> Any:
            return await handler(session, *args)

        return bound_async

    def bound(*args: Any) -> Any:
        return handler(session, *args)

    return bound


def _initialize_once(server: HardenedLanguageServer) -> None:
    """A second `initialize` is answered -32600 before pygls replaces the workspace and the
    client's capabilities, and before a second model would load beside the first."""
    builtin = server.protocol.fm.builtin_features
    pygls_initialize = builtin[types.INITIALIZE]
    received = False

    def initialize_once(params: types.InitializeParams) -> Any:
        nonlocal received
        if received:
            raise JsonRpcInvalidRequest("the server is already initialized")
        received = True
        return (yield from pygls_initialize(params))

    builtin[types.INITIALIZE] = initialize_once


__all__ = ["COMMANDS", "FEATURES", "SessionServer", "create_server"]
