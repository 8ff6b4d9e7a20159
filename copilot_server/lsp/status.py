"""`copilot/status` notifications and the model-load `$/progress`, like Copilot's didChangeStatus.

Engine state changes arrive on the loader's thread; they are handed to the event loop
with call_soon_threadsafe, since the transport is not thread-safe. Everything the client
sees goes through the client port (ports.py).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..app import Busy
from ..config import Settings
from ..engines.base import capabilities_of, describe
from ..engines.loader import EngineLoader, EngineState
from ..ports import ClientPort, MessageLevel, Progress

log = logging.getLogger(__name__)

STATUS_NOTIFICATION = "copilot/status"


class StatusSources(Protocol):
    """What the status is read from (the App has these; so may a test's namespace)."""

    loader: EngineLoader
    completions: Any  # its `metrics`
    index: Any  # its `stats` and `folders`

    @property
    def settings(self) -> Settings: ...


class StatusReporter:
    def __init__(
        self,
        sources: StatusSources,
        port: ClientPort | None = None,
        busy: Busy | None = None,
    ) -> None:
        """`port`: where notifications and messages go (none: nothing is sent); `busy`:
        the app's `Busy` counter of model work, when there is one."""
        self._sources = sources
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._progress: Progress | None = None
        self._busy = busy if busy is not None else Busy()
        self._busy.subscribe(self.publish)
        self._reported: EngineState | None = None  # the last state told to the user

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        state = self._sources.loader.state
        if state.state == "error":
            # A fast failure (no such file, an empty file, a folder) comes within
            # milliseconds of `initialize`, before there was a loop to tell the user on.
            self._on_engine_state(state)
        else:
            self.publish()

    def state(self) -> str:
        engine_state = self._sources.loader.state.state
        if engine_state != "ready":
            return engine_state
        if not self._sources.settings.completion.enabled:
            return "disabled"
        engine = self._sources.loader.engine
        if engine is not None and capabilities_of(engine).last_error:
            return "error"  # a model server (or the engine host) that failed its last call
        return "busy" if self._busy.count else "ready"

    def snapshot(self, host: bool = True) -> dict[str, Any]:
        engine = self._sources.loader.engine
        # The shared engine's host (pid, model, clients, uptime, memory): one round trip,
        # so only for the copilot.status command, not for every status notification.
        return self._snapshot(describe(engine) if host and engine is not None else None)

    async def report(self) -> dict[str, Any]:
        """The copilot.status command's answer, from the event loop: the host's round trip
        runs on a thread (network I/O never runs on the loop)."""
        engine = self._sources.loader.engine
        extra = await asyncio.to_thread(describe, engine) if engine is not None else None
        return self._snapshot(extra)

    def _snapshot(self, extra: dict[str, Any] | None) -> dict[str, Any]:
        sources = self._sources
        loader = sources.loader
        engine = loader.engine
        info = engine.info if engine is not None else None
        return ({"host": extra} if extra is not None else {}) | {
            "state": self.state(),
            "message": capabilities_of(engine).last_error or loader.state.message,
            "model": info.path if info else None,
            "modelName": info.name if info else None,
            "gpuLayers": info.n_gpu_layers if info else 0,
            "gpuOffloadSupported": info.gpu_offload_supported if info else None,
            "enabled": sources.settings.completion.enabled,
            "metrics": sources.completions.metrics.as_dict(),
            "index": sources.index.stats.as_dict()
            | {"folders": [str(folder) for folder in sources.index.folders]},
        }

    def publish(self) -> None:
        if self._loop is None or self._port is None:
            return
        payload = {
            k: v for k, v in self.snapshot(host=False).items() if k not in ("metrics", "index")
        }
        self._port.notify(STATUS_NOTIFICATION, payload)

    def busy(self) -> AbstractContextManager[None]:
        return self._busy()

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
        if self._port is not None:
            level = MessageLevel.ERROR if state.state == "error" else MessageLevel.INFO
            self._port.log(level, f"copilot-server: {state.message}")
            if state.state == "error":
                self._port.show_message(level, f"copilot-server: {state.message}")
        if state.state in ("ready", "error"):
            self.end_loading_progress(state.message)

    async def begin_loading_progress(self) -> None:
        """Work-done progress for the model load, when the client supports it."""
        if self._sources.loader.state.state != "loading" or self._port is None:
            return
        progress = await self._port.begin_progress("copilot-server", message="loading model")
        if progress is None:
            return
        self._progress = progress
        if self._sources.loader.state.state != "loading":
            self.end_loading_progress(self._sources.loader.state.message)

    def end_loading_progress(self, message: str) -> None:
        progress, self._progress = self._progress, None
        if progress is not None:
            progress.end(message)
