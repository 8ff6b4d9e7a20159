"""`copilot/status` notifications and the model-load `$/progress`, like Copilot's didChangeStatus.

Engine state changes arrive on the loader's thread; they are handed to the event loop
with call_soon_threadsafe, since pygls' transport is not thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from ..engines.loader import EngineState

if TYPE_CHECKING:
    from .server import CopilotServer

log = logging.getLogger(__name__)

STATUS_NOTIFICATION = "copilot/status"


class StatusReporter:
    def __init__(self, server: CopilotServer) -> None:
        self._server = server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._progress_token: str | None = None
        self._busy = 0
        self._reported: EngineState | None = None  # the last state told to the user

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        state = self._server.loader.state
        if state.state == "error":
            # A fast failure (no such file, an empty file, a folder) comes within
            # milliseconds of `initialize`, before there was a loop to tell the user on.
            self._on_engine_state(state)
        else:
            self.publish()

    def state(self) -> str:
        engine_state = self._server.loader.state.state
        if engine_state != "ready":
            return engine_state
        if not self._server.settings.completion.enabled:
            return "disabled"
        if getattr(self._server.loader.engine, "error", None):
            return "error"  # a remote model server that failed its last call
        return "busy" if self._busy else "ready"

    def snapshot(self, host: bool = True) -> dict[str, Any]:
        loader = self._server.loader
        engine = loader.engine
        info = engine.info if engine is not None else None
        # The shared engine's host (pid, model, clients, uptime, memory): one round trip,
        # so only for the copilot.status command, not for every status notification.
        host_status = getattr(engine, "host_status", None) if host else None
        extra = {"host": host_status()} if host_status is not None else {}
        return extra | {
            "state": self.state(),
            "message": getattr(engine, "error", None) or loader.state.message,
            "model": info.path if info else None,
            "modelName": info.name if info else None,
            "gpuLayers": info.n_gpu_layers if info else 0,
            "gpuOffloadSupported": info.gpu_offload_supported if info else None,
            "enabled": self._server.settings.completion.enabled,
            "metrics": self._server.completions.metrics.as_dict(),
            "index": self._server.index.stats.as_dict()
            | {"folders": [str(folder) for folder in self._server.index.folders]},
        }

    def publish(self) -> None:
        if self._loop is None:
            return
        payload = {
            k: v for k, v in self.snapshot(host=False).items() if k not in ("metrics", "index")
        }
        self._server.protocol.notify(STATUS_NOTIFICATION, payload)

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        self._busy += 1
        if self._busy == 1:
            self.publish()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self.publish()

    def engine_state_changed(self, state: EngineState) -> None:
        """Called on the loader thread."""
        if self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._on_engine_state, state)

    def _on_engine_state(self, state: EngineState) -> None:
        self.publish()
        if state is self._reported:
            return  # told already (attach and the loader thread can both hand it over)
        self._reported = state
        level = types.MessageType.Error if state.state == "error" else types.MessageType.Info
        self._server.window_log_message(
            types.LogMessageParams(type=level, message=f"copilot-server: {state.message}")
        )
        if state.state == "error":
            self._server.window_show_message(
                types.ShowMessageParams(type=level, message=f"copilot-server: {state.message}")
            )
        if state.state in ("ready", "error"):
            self.end_loading_progress(state.message)

    async def begin_loading_progress(self) -> None:
        """Work-done progress for the model load, when the client supports it."""
        if self._server.loader.state.state != "loading":
            return
        window = self._server.client_capabilities.window
        if not (window and window.work_done_progress):
            return
        token = f"copilot-server-load-{uuid.uuid4().hex[:8]}"
        try:
            await asyncio.wait_for(self._server.work_done_progress.create_async(token), timeout=5)
        except Exception as exc:
            log.debug("progress create failed: %s", exc)
            return
        self._progress_token = token
        self._server.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title="copilot-server", message="loading model", cancellable=False
            ),
        )
        if self._server.loader.state.state != "loading":
            self.end_loading_progress(self._server.loader.state.message)

    def end_loading_progress(self, message: str) -> None:
        token, self._progress_token = self._progress_token, None
        if token is not None:
            self._server.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))
