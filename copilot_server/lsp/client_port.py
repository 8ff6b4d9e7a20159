"""The client port (ports.py) on pygls: the one place that sends notifications, messages,
progress and edits to the editor."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ..documents.positions import Encoding
from ..ports import ClientFeatures, MessageLevel, OnCancel
from .convert import workspace_folders

log = logging.getLogger(__name__)

_ENCODINGS: dict[str, Encoding] = {"utf-8": "utf-8", "utf-16": "utf-16", "utf-32": "utf-32"}


def encoding_of(workspace: Any) -> Encoding:
    """The position encoding negotiated at `initialize` (pygls keeps it on the workspace)."""
    kind = workspace.position_encoding or "utf-16"
    # An enum member: str() gives "PositionEncodingKind.Utf8", its value "utf-8".
    return _ENCODINGS.get(str(getattr(kind, "value", kind)), "utf-16")


def features_of(caps: types.ClientCapabilities, encoding: Encoding) -> ClientFeatures:
    text = caps.text_document
    action = text.code_action if text else None
    resolve = action.resolve_support if action else None
    workspace = caps.workspace
    edit = workspace.workspace_edit if workspace else None
    return ClientFeatures(
        encoding=encoding,
        work_done_progress=bool(caps.window and caps.window.work_done_progress),
        code_action_resolve_edit=bool(resolve and "edit" in resolve.properties),
        code_action_disabled=bool(action and action.disabled_support),
        document_changes=bool(edit and edit.document_changes),
        configuration=bool(workspace and workspace.configuration),
        inline_completion=bool(text and text.inline_completion is not None),
    )


class _PyglsProgress:
    def __init__(self, server: LanguageServer, token: str, forget: bool) -> None:
        self._server = server
        self._token = token
        self._forget = forget  # a cancellable one's tracker is dropped at the end
        self._loop = asyncio.get_running_loop()

    def report(self, message: str, percentage: int) -> None:
        value = types.WorkDoneProgressReport(message=message, percentage=percentage)
        # From the model thread too: pygls' transport is not thread-safe.
        self._loop.call_soon_threadsafe(self._server.work_done_progress.report, self._token, value)

    def end(self, message: str | None = None) -> None:
        end = types.WorkDoneProgressEnd(message=message)
        self._server.work_done_progress.end(self._token, end)
        if self._forget:
            self._server.work_done_progress.tokens.pop(self._token, None)


class PyglsClientPort:
    def __init__(self, server: LanguageServer) -> None:
        self._server = server
        self._features: ClientFeatures | None = None
        self._caps: Any = None

    @property
    def features(self) -> ClientFeatures:
        # Read once the client has said them (`initialize`); before, the defaults.
        caps = self._server.client_capabilities
        if self._features is None or caps is not self._caps:
            self._caps = caps
            self._features = features_of(caps, encoding_of(self._server.workspace))
        return self._features

    def notify(self, method: str, params: Any) -> None:
        self._server.protocol.notify(method, params)

    def log(self, level: MessageLevel, message: str) -> None:
        self._server.window_log_message(
            types.LogMessageParams(type=types.MessageType(level), message=message)
        )

    def show_message(self, level: MessageLevel, message: str) -> None:
        self._server.window_show_message(
            types.ShowMessageParams(type=types.MessageType(level), message=message)
        )

    async def begin_progress(
        self, title: str, *, message: str | None = None, on_cancel: OnCancel | None = None
    ) -> _PyglsProgress | None:
        cancellable = on_cancel is not None
        if not self.features.work_done_progress:
            return None
        token = f"copilot-server-{uuid.uuid4().hex[:8]}"
        try:
            await asyncio.wait_for(self._server.work_done_progress.create_async(token), timeout=5)
        except Exception as exc:  # no progress is no reason to fail the work
            log.debug("progress create failed: %s", exc)
            return None
        tracker = self._server.work_done_progress.tokens.get(token)
        if tracker is not None and on_cancel is not None:
            tracker.add_done_callback(lambda f: on_cancel() if f.cancelled() else None)
        begin = types.WorkDoneProgressBegin(
            title=title,
            message=message,
            cancellable=cancellable,
            percentage=0 if cancellable else None,
        )
        self._server.work_done_progress.begin(token, begin)
        return _PyglsProgress(self._server, token, forget=cancellable)

    async def apply_edit(self, edit: types.WorkspaceEdit, label: str) -> bool:
        result = await self._server.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=edit, label=label)
        )
        return bool(result and result.applied)

    async def configuration(self, section: str) -> Any:
        if not self.features.configuration:
            return None
        try:
            result = await asyncio.wait_for(
                self._server.workspace_configuration_async(
                    types.ConfigurationParams(items=[types.ConfigurationItem(section=section)])
                ),
                timeout=5,
            )
        except Exception as exc:  # a client that fails this request must not stop us
            log.warning("workspace/configuration failed: %s", exc)
            return None
        return result[0] if result else None

    def workspace_folders(self) -> list[str]:
        return workspace_folders(self._server.workspace)
