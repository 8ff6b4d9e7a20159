"""Load the engine in the background and let requests wait for it, bounded in time."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import LOCAL_MODEL_KINDS, ModelSettings, Settings
from .base import Engine
from .models import ModelNotFoundError, resolve_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineState:
    state: str  # "loading" | "ready" | "error"
    message: str = ""


StateListener = Callable[[EngineState], None]


def create_engine(
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
    *,
    start_host: bool = False,
) -> Engine:
    """Build the engine the settings ask for (blocking: loads the model, or connects).

    With `engine.kind = "shared"`, the user's engine host for this model serves it: a
    running one always; one is started only with `start_host` (the LSP server, see
    `create_served_engine`). One-shot commands without a running host load the model in
    process rather than leave a host behind."""
    kind = settings.engine.kind
    if kind not in LOCAL_MODEL_KINDS:
        from . import remote

        return remote.create_remote_engine(settings)
    resolved = resolve_model(settings.model, progress=progress)
    log.info("model %s (profile %s: %s)", resolved.path.name, resolved.profile, resolved.reason)
    if kind == "shared" and os.name == "posix":  # Unix sockets and flock; elsewhere in process
        from .shared import SharedEngine, connect_running

        if start_host:
            return SharedEngine(resolved.path, settings)
        running = connect_running(resolved.path, settings)
        if running is not None:
            return running
    return local_engine(resolved.path, settings.model)


def local_engine(model_path: Path, model: ModelSettings) -> Engine:
    """llama.cpp in this process for one GGUF file: what create_engine falls back to, and
    what the doctor and the benchmarks measure (this machine, never a host or a server)."""
    from .llama import LlamaEngine  # llama.cpp itself: not imported by a shared engine's server

    return LlamaEngine(model_path, model)


def create_served_engine(settings: Settings) -> Engine:
    """The LSP server's engine: with `engine.kind = "shared"` the engine host is started
    when none runs."""
    return create_engine(settings, start_host=True)


class EngineLoader:
    """Owns the one engine; loads it on a thread so the server answers meanwhile."""

    def __init__(
        self,
        settings: Settings,
        factory: Callable[[Settings], Engine] = create_served_engine,
        measure_profile: bool = False,
    ) -> None:
        self._settings = settings
        # A long-lived server measures the machine for `model.profile = auto` once the
        # model is loaded (engines/profiles.py); one-shot commands do not.
        self._measure_profile = measure_profile
        self.measurement: Any = None  # profiles.BackgroundMeasurement while it runs
        self._last_wanted = 0.0
        self._factory = factory
        self._engine: Engine | None = None
        self._state = EngineState("loading", "model not loaded yet")
        self._ready = threading.Event()
        self._listeners: list[StateListener] = []
        self._thread: threading.Thread | None = None
        # Bumped by each reload: a load that a newer reload overtook does not say "ready".
        self._generation = 0
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

    @property
    def started(self) -> bool:
        """Whether a load was started: new model settings then need a reload."""
        return self._thread is not None

    def reload(self, settings: Settings) -> None:
        """Load again with `settings`, after a failed load too; returns at once (the event
        loop calls it). A load in progress ends first; the old engine is closed on the
        loader thread, then the new one loads. Of several quick reloads only the last runs."""
        self._settings = settings
        self._generation += 1
        self._ready.clear()
        previous = self._thread
        self._thread = threading.Thread(
            target=self._reload, args=(previous, self._generation), name="model-loader", daemon=True
        )
        self._thread.start()

    def _reload(self, previous: threading.Thread | None, generation: int) -> None:
        if previous is not None:
            previous.join()
        if generation != self._generation:
            return  # a newer reload follows this one
        self._stop_measurement()
        old, self._engine = self._engine, None
        if old is not None:
            old.close()
        self._load()

    def _load(self) -> None:
        generation = self._generation
        self._set_state(EngineState("loading", "loading model"))
        started = time.perf_counter()
        try:
            engine = self._factory(self._settings)
        except ModelNotFoundError as exc:
            log.error("%s", exc)
            self._set_state(EngineState("error", str(exc)))
            self._loaded(generation)
            return
        except Exception as exc:  # any load failure becomes a status, never a crash
            log.exception("model load failed")
            self._set_state(EngineState("error", f"model load failed: {exc}"))
            self._loaded(generation)
            return
        if self._measure_profile:
            # Started before the engine is published, so that close() and reload() always
            # see (and stop) it; a request from then on makes it give way.
            from .profiles import measure_in_background

            self.measurement = measure_in_background(self._settings, engine, self._last_wanted)
        self.load_seconds = time.perf_counter() - started
        message = f"{engine.info.name} loaded in {self.load_seconds:.1f}s"
        note = self._profile_note()  # before publishing: the engine and "ready" come together
        self._engine = engine
        watch = getattr(engine, "watch", None)
        if watch is not None:  # the shared engine: its host went away or a new one serves
            watch(lambda message: self._set_state(EngineState("ready", message)))
        self._set_state(EngineState("ready", f"{message}. {note}" if note else message))
        self._loaded(generation)

    def _loaded(self, generation: int) -> None:
        if generation == self._generation:  # else a reload is pending: requests wait for it
            self._ready.set()

    def _profile_note(self) -> str:
        """The one message about a quality model that was wanted but is not installed."""
        if self._settings.engine.kind not in LOCAL_MODEL_KINDS:
            return ""
        try:
            from .profiles import decide, explicit_model

            if explicit_model(self._settings.model):
                return ""
            return decide(self._settings.model).choice.note
        except Exception:  # a note is a courtesy; never fail a load over it
            log.debug("no profile note", exc_info=True)
            return ""

    def _engine_wanted(self) -> None:
        # A request asks for the model: a speed measurement on it gives way at once.
        self._last_wanted = time.monotonic()
        if self.measurement is not None:
            self.measurement.engine_wanted()

    def _stop_measurement(self) -> None:
        if self.measurement is not None:
            self.measurement.stop()
            self.measurement = None

    def wait_blocking(self, timeout: float | None = None) -> Engine | None:
        self._engine_wanted()
        self._ready.wait(timeout)
        return self._engine

    async def wait(self, timeout: float) -> Engine | None:
        self._engine_wanted()
        if self._ready.is_set():
            return self._engine
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._ready.wait, timeout)
        return self._engine

    def close(self) -> None:
        self._stop_measurement()
        if self._engine is not None:
            self._engine.close()
            self._engine = None
