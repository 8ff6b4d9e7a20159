"""Load the engine in the background and let requests wait for it, bounded in time."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Settings
from .base import Engine
from .models import ModelNotFoundError, resolve_model_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineState:
    state: str  # "loading" | "ready" | "error"
    message: str = ""


StateListener = Callable[[EngineState], None]


def create_engine(settings: Settings, progress: Callable[[int, int], None] | None = None) -> Engine:
    """Build the engine the settings ask for (blocking: loads the model)."""
    kind = settings.engine.kind
    if kind != "local":
        from . import remote

        return remote.create_remote_engine(settings)
    from .llama import LlamaEngine

    path = resolve_model_path(settings.model.path, progress=progress)
    return LlamaEngine(path, settings.model)


class EngineLoader:
    """Owns the one engine; loads it on a thread so the server answers meanwhile."""

    def __init__(
        self, settings: Settings, factory: Callable[[Settings], Engine] = create_engine
    ) -> None:
        self._settings = settings
        self._factory = factory
        self._engine: Engine | None = None
        self._state = EngineState("loading", "model not loaded yet")
        self._ready = threading.Event()
        self._listeners: list[StateListener] = []
        self._thread: threading.Thread | None = None
        self.load_seconds: float | None = None

    @property
    def engine(self) -> Engine | None:
        return self._engine

    @property
    def state(self) -> EngineState:
        return self._state

    def add_listener(self, listener: StateListener) -> None:
        self._listeners.append(listener)

    def _set_state(self, state: EngineState) -> None:
        self._state = state
        for listener in list(self._listeners):
            try:
                listener(state)
            except Exception:  # a broken listener must not break loading
                log.exception("state listener failed")

    def start(self, settings: Settings | None = None) -> None:
        if settings is not None:
            self._settings = settings
        if self._thread is not None and self._thread.is_alive():
            return
        self._ready.clear()
        self._thread = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self._thread.start()

    def reload(self, settings: Settings) -> None:
        """Load again with new model settings (the old engine is closed first)."""
        self._settings = settings
        if self._thread is not None:
            self._thread.join()
        old, self._engine = self._engine, None
        if old is not None:
            old.close()
        self.start()

    def _load(self) -> None:
        self._set_state(EngineState("loading", "loading model"))
        started = time.perf_counter()
        try:
            engine = self._factory(self._settings)
        except ModelNotFoundError as exc:
            log.error("%s", exc)
            self._set_state(EngineState("error", str(exc)))
            self._ready.set()
            return
        except Exception as exc:  # any load failure becomes a status, never a crash
            log.exception("model load failed")
            self._set_state(EngineState("error", f"model load failed: {exc}"))
            self._ready.set()
            return
        self._engine = engine
        self.load_seconds = time.perf_counter() - started
        self._set_state(
            EngineState("ready", f"{engine.info.name} loaded in {self.load_seconds:.1f}s")
        )
        self._ready.set()

    def wait_blocking(self, timeout: float | None = None) -> Engine | None:
        self._ready.wait(timeout)
        return self._engine

    async def wait(self, timeout: float) -> Engine | None:
        if self._ready.is_set():
            return self._engine
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._ready.wait, timeout)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
