"""The composition root: every service of the language server built once, from settings.

The LSP edge (lsp/server.py) builds one `App` and hands its services to the handlers;
nothing below lsp/ sees the server. Side effects of a settings change that are not the
client's business (log level, reloading the model) are subscribed here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .actions.service import ActionService
from .completion.service import CompletionService
from .config import Settings, SettingsChange, SettingsStore
from .context.engine import ContextEngine
from .context.index import WorkspaceIndex
from .context.notebooks import NotebookContexts
from .documents import DocumentStore
from .engines.loader import EngineLoader
from .logs import set_log_level
from .next_edit import NextEditService


class Busy:
    """Model work in flight (completions, explain, fix); listeners hear when the first
    starts and when the last ends (the status shows `busy` meanwhile)."""

    def __init__(self) -> None:
        self.count = 0
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self.count += 1
        if self.count == 1:
            self._changed()
        try:
            yield
        finally:
            self.count -= 1
            if self.count == 0:
                self._changed()

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()


@dataclass
class App:
    store: SettingsStore
    documents: DocumentStore
    loader: EngineLoader
    index: WorkspaceIndex
    context: ContextEngine
    notebooks: NotebookContexts
    completions: CompletionService
    next_edits: NextEditService
    actions: ActionService
    busy: Busy

    @property
    def settings(self) -> Settings:
        return self.store.current

    def close(self) -> None:
        self.index.stop()
        self.completions.close()
        self.loader.close()


def build_app(settings: Settings | None = None, *, measure_profile: bool = False) -> App:
    store = SettingsStore(settings or Settings())
    documents = DocumentStore()
    loader = EngineLoader(store.current, measure_profile=measure_profile)
    # Workspace definitions for the context engine; started by the LSP `initialized`.
    index = WorkspaceIndex(settings=lambda: store.current.context)
    context = ContextEngine(documents, index)
    # A notebook cell's other cells (copilot/notebookContext) join its context.
    notebooks = NotebookContexts()
    completions = CompletionService(store, loader, context_builder=notebooks.wrap(context))
    # Next edit suggestions share the model worker (completions keep priority).
    next_edits = NextEditService(
        lambda: store.current,
        lambda: loader.engine,
        completions.run_on_model,
        context_builder=context,
    )
    busy = Busy()
    actions = ActionService(
        lambda: store.current,
        loader,
        completions.run_on_model,
        context_builder=completions.context_builder,
        busy=busy,
    )

    def settings_changed(change: SettingsChange) -> None:
        set_log_level(change.new.log_level)
        # Also after a failed load (no engine): fixing model.path must load the model.
        if change.model_changed and loader.started:
            loader.reload(change.new)

    store.subscribe(settings_changed)
    return App(
        store, documents, loader, index, context, notebooks, completions, next_edits, actions, busy
    )
