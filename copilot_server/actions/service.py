"""Explain and fix on the model: waiting for the engine, the model thread, cancellation,
and the checks around a fix. Values in, values out: the LSP edge (lsp/code_actions.py)
turns them into code actions, edits and notifications."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any

from ..completion.types import ContextBuilder
from ..config import Settings
from ..documents import Document
from ..engines.base import Engine, EngineUnavailable
from ..engines.loader import EngineLoader
from ..syntax.tree import own_tree
from .explain import Explanation, compute_explanation, context_snippets
from .fix import FixOutcome, compute_fix
from .progress import TokenCallback
from .regions import Region, explain_target

# (title, cancel, token budget) -> a context yielding a token callback; the edge shows it
# as cancellable progress (cancelling sets `cancel`).
ProgressFactory = Callable[[str, threading.Event, int], AbstractAsyncContextManager[TokenCallback]]
Work = Callable[[Engine, threading.Event, TokenCallback], Any]


class ModelUnavailable(Exception):
    """No model to run on: still loading, failed, or a model server that is down."""


class ActionCancelled(Exception):
    """The request was cancelled while the model wrote."""


@contextlib.asynccontextmanager
async def no_progress(title: str, cancel: threading.Event, budget: int):  # noqa: ANN201
    yield lambda count: None


class ActionService:
    def __init__(
        self,
        settings: Callable[[], Settings],
        loader: EngineLoader,
        run_on_model: Callable[[Callable[[], Any]], Awaitable[Any]],
        *,
        context_builder: ContextBuilder | None = None,
        busy: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self._settings = settings
        self._loader = loader
        self._run_on_model = run_on_model
        self._context_builder = context_builder
        self._busy = busy

    async def _on_model(
        self, title: str, budget: int, work: Work, progress: ProgressFactory
    ) -> Any:
        engine = await self._loader.wait(self._settings().completion.model_wait_s)
        if engine is None:
            raise ModelUnavailable(self._loader.state.message or "the model is not loaded")
        cancel = threading.Event()
        async with progress(title, cancel, budget) as on_token:
            with self._busy():
                try:
                    return await self._run_on_model(lambda: work(engine, cancel, on_token))
                except asyncio.CancelledError:
                    cancel.set()  # $/cancelRequest: stop the decode loop at the next token
                    raise
                except EngineUnavailable as exc:  # a model server that is down or failing
                    raise ModelUnavailable(str(exc)) from None

    async def fix(
        self,
        doc: Document,
        first_line: int,
        last_line: int,
        message: str,
        progress: ProgressFactory = no_progress,
    ) -> FixOutcome:
        """A fix of lines first..last of the document as it is now (raises
        ModelUnavailable, ActionCancelled)."""
        text, settings = doc.text, self._settings()
        # Taken on the loop, which edits the document's tree in place: the model thread
        # reads a copy.
        tree = own_tree(doc.language_id, text, doc.syntax)
        tree = tree.copy() if tree is not None else None

        def work(engine: Engine, cancel: threading.Event, on_token: TokenCallback) -> FixOutcome:
            return compute_fix(
                engine,
                settings,
                language=doc.language_id,
                text=text,
                first_line=first_line,
                last_line=last_line,
                message=message,
                cancel=cancel,
                on_token=on_token,
                tree=tree,
            )

        outcome = await self._on_model("Fixing", settings.fix_max_tokens, work, progress)
        if outcome.reason == "cancelled":
            raise ActionCancelled("fix cancelled")
        return outcome

    async def explain(
        self, doc: Document, begin: int, stop: int, progress: ProgressFactory = no_progress
    ) -> tuple[Region, Explanation]:
        """An explanation of the code between two offsets (or the definition around
        them) and the region it covers (raises ModelUnavailable, ActionCancelled)."""
        text, settings = doc.text, self._settings()
        tree = own_tree(doc.language_id, text, doc.syntax)
        region, selection, name = explain_target(doc.language_id, text, begin, stop, tree)
        builder = self._context_builder

        def work(engine: Engine, cancel: threading.Event, on_token: TokenCallback) -> Explanation:
            helpers = context_snippets(
                builder,
                engine,
                settings,
                uri=doc.uri,
                path=doc.path,
                language=doc.language_id,
                text=text,
                region=region,
            )
            return compute_explanation(
                engine,
                settings,
                language=doc.language_id,
                text=text,
                region=region,
                selection=selection,
                name=name,
                helpers=helpers,
                cancel=cancel,
                on_token=on_token,
            )

        result = await self._on_model("Explaining", settings.explain_max_tokens, work, progress)
        if result.stop_reason == "cancelled":
            raise ActionCancelled("explanation cancelled")
        return region, result
