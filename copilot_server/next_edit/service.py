"""One next-edit request: the cheapest source first, every candidate through the filters.

Sources, each on or off in `next_edit` settings (on by default only where its measured
precision on the bench is >= 0.5):

1. propagation of the last hunk (no model, ~1 ms);
2. a model rewrite of the window around the cursor (seconds on a CPU), on the shared
   model worker; an inline completion request cancels it between tokens, so completions
   keep priority.

Filters: a candidate is dropped when it changes nothing, undoes the user's last hunk, or
leaves its part of the file with more syntax errors than before (tree-sitter).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import Settings
from ..documents.history import EditHistory, Hunk
from ..engines.base import Engine, capabilities_of, count_tokens
from ..prompts.next_edit import build_prompt, window_around
from ..syntax.languages import Grammar
from ..syntax.problems import error_count
from ..syntax.tree import grammar_of, parse
from .diffing import Edit, line_edits, nearest_edit
from .propagation import propagate
from .rewrite import run_rewrite

log = logging.getLogger(__name__)

# The last hunk is propagated only this long after it was made: an hour-old rename is not
# what the user is doing now.
PROPAGATE_WITHIN_S = 600.0
# Lines of context parsed around a candidate for the syntax check (widened to top-level
# lines): enough to close the statements around it, cheap enough for every candidate.
SYNTAX_CONTEXT_LINES = 30
SYNTAX_SCAN_LINES = 200

RunOnModel = Callable[[Callable[[], Any]], Awaitable[Any]]
ContextBuilder = Callable[..., Any]


@dataclass(frozen=True)
class NextEditRequest:
    uri: str
    path: str
    language: str
    text: str
    cursor: int  # Python str offset in `text`
    version: int | None = None


@dataclass
class NextEditResult:
    edit: Edit | None
    source: str  # "propagation" | "model" | "none"
    latency_ms: float
    id: str = ""
    tokens_generated: int = 0
    tokens_shown: int = 0
    prompt_tokens: int = 0
    dropped: list[str] = field(default_factory=list)  # why candidates were dropped
    message: str = ""


@dataclass
class NextEditMetrics:
    """Local counters only; nothing is sent anywhere."""

    requests: int = 0
    offered_propagation: int = 0
    offered_model: int = 0
    model_calls: int = 0
    model_cancelled: int = 0
    shown: int = 0  # didShowInlineEdit from the client
    accepted: int = 0
    tokens_generated: int = 0
    tokens_shown: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class NextEditService:
    def __init__(
        self,
        settings: Callable[[], Settings],
        engine: Callable[[], Engine | None],
        run_on_model: RunOnModel,
        context_builder: ContextBuilder | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._run_on_model = run_on_model
        self._context_builder = context_builder
        self.history = EditHistory()
        self.metrics = NextEditMetrics()
        self._ids = itertools.count(1)
        self._model_cancel: threading.Event | None = None
        self._dropped: Counter[str] = Counter()
        self.focused: str | None = None  # the document textDocument/didFocus named

    # -- public ------------------------------------------------------------------------

    async def suggest(self, request: NextEditRequest) -> NextEditResult:
        started = time.perf_counter()
        settings = self._settings().next_edit
        self.metrics.requests += 1
        result = NextEditResult(None, "none", 0.0, id=f"ne-{next(self._ids)}")
        if not settings.enabled:
            result.message = "next edits are off (next_edit.enabled)"
        else:
            if settings.propagation:
                result.edit = self.propagated(request, result.dropped)
                if result.edit is not None:
                    result.source = "propagation"
                    self.metrics.offered_propagation += 1
            if result.edit is None and settings.model:
                await self._from_model(request, result)
        result.latency_ms = (time.perf_counter() - started) * 1000
        for reason in result.dropped:
            self._dropped[reason] += 1
        self.metrics.dropped = dict(self._dropped)
        return result

    def propagated(self, request: NextEditRequest, dropped: list[str] | None = None) -> Edit | None:
        """The nearest place the last hunk's change still applies (no model)."""
        hunk = self.history.last(request.uri)
        if hunk is None or time.monotonic() - hunk.updated > PROPAGATE_WITHIN_S:
            return None
        for edit in propagate(request.text, hunk, request.cursor, request.language):
            reason = rejection(request.text, edit, hunk, request.language)
            if reason is None:
                return edit
            if dropped is not None:
                dropped.append(reason)
        return None

    def cancel_model(self) -> None:
        """Stop a running rewrite between tokens: an inline completion wants the model."""
        if self._model_cancel is not None and not self._model_cancel.is_set():
            self._model_cancel.set()
            self.metrics.model_cancelled += 1

    def record_accepted(self) -> None:
        self.metrics.accepted += 1

    def forget_document(self, uri: str) -> None:
        self.history.forget(uri)

    # -- the model ---------------------------------------------------------------------

    async def _from_model(self, request: NextEditRequest, result: NextEditResult) -> None:
        engine = self._engine()
        if engine is None:
            result.message = "the model is not loaded yet"
            return
        settings = self._settings()
        ne = settings.next_edit
        self.cancel_model()  # one rewrite at a time: the newest request is the one that counts
        cancel = threading.Event()
        self._model_cancel = cancel
        hunks = self.history.hunks(request.uri)
        window = window_around(request.text, request.cursor, ne.window_lines)
        if capabilities_of(engine).tokenizes_remotely:
            # The context engine counts tokens: with a model server, round trips that
            # never run on the event loop.
            definitions = await asyncio.to_thread(self._definitions, request, engine, settings)
        else:
            definitions = self._definitions(request, engine, settings)

        def work():  # noqa: ANN202 - on the model thread
            prompt = build_prompt(
                engine,
                path=_display_path(request.path),
                language=request.language,
                document=request.text,
                window=window,
                hunks=hunks,
                definitions=definitions,
                max_tokens=ne.max_tokens,
            )
            return run_rewrite(engine, prompt, cancel, draft_tokens=ne.draft_tokens)

        self.metrics.model_calls += 1
        try:
            rewrite = await self._run_on_model(work)
        except asyncio.CancelledError:
            cancel.set()
            raise
        except Exception as exc:  # a model that fails must not fail the request
            log.warning("next-edit rewrite failed: %s", exc)
            result.message = f"model rewrite failed: {exc}"
            return
        finally:
            if self._model_cancel is cancel:
                self._model_cancel = None
        generation = rewrite.generation
        result.tokens_generated = generation.tokens_generated
        result.prompt_tokens = generation.prompt_tokens
        self.metrics.tokens_generated += generation.tokens_generated
        if generation.stop_reason == "cancelled":
            result.dropped.append("cancelled")
            return
        if rewrite.updated is None:
            result.dropped.append("incomplete")
            return
        edit = pick_edit(window.text, rewrite.updated, window.start, request.cursor)
        if edit is None:
            result.dropped.append("unchanged")
            return
        reason = copy_noise(request.text, edit)
        if reason is not None:
            result.dropped.append(reason)
            return
        reason = rejection(request.text, edit, hunks[-1] if hunks else None, request.language)
        if reason is not None:
            result.dropped.append(reason)
            return
        result.edit = Edit(edit.start, edit.end, edit.text, "model")
        result.source = "model"
        result.tokens_shown = await count_tokens(engine, edit.text)
        self.metrics.tokens_shown += result.tokens_shown
        self.metrics.offered_model += 1
        log.info(
            "next edit (model): %d prompt tokens, %d generated, %d shown, %d decode calls "
            "(%d of %d drafted tokens kept), %.0f ms",
            generation.prompt_tokens,
            generation.tokens_generated,
            result.tokens_shown,
            rewrite.decode_calls,
            rewrite.accepted,
            rewrite.drafted,
            generation.total_ms,
        )

    def _definitions(self, request: NextEditRequest, engine: Engine, settings: Settings) -> str:
        """Definitions of the names around the cursor, from the context engine."""
        if self._context_builder is None:
            return ""
        from ..completion import CompletionRequest

        try:
            context = self._context_builder(
                CompletionRequest(
                    uri=request.uri,
                    path=request.path,
                    language=request.language,
                    text=request.text,
                    offset=request.cursor,
                ),
                engine,
                settings,
            )
        except Exception:  # context is a help, never a reason to fail
            log.debug("no definitions for the next-edit prompt", exc_info=True)
            return ""
        parts = [s.text.rstrip("\n") for s in context.snippets if s.kind == "definition"]
        return "\n".join(parts)


# -- choosing and filtering ----------------------------------------------------------------


def pick_edit(old_window: str, new_window: str, base: int, cursor: int) -> Edit | None:
    """The model's change as one edit: the group of changed lines nearest the cursor."""
    return nearest_edit(line_edits(old_window, new_window, base), cursor)


def copy_noise(text: str, edit: Edit) -> str | None:
    """Why a model's edit is a copying slip rather than an edit, or None: only whitespace
    moved (a blank line lost), or whole lines gone with nothing in their place (a small
    model that skipped lines while writing the window out)."""
    if _words(text[edit.start : edit.end]) == _words(edit.text):
        return "whitespace"
    if not edit.text.strip() and text.count("\n", edit.start, edit.end) >= 2:
        return "deleted lines"
    return None


def rejection(text: str, edit: Edit, last: Hunk | None, language: str) -> str | None:
    """Why `edit` must not be shown, or None: it changes nothing, it undoes the user's
    last hunk, or its part of the file parses with more errors afterwards. Each check
    reads the lines around the edit only (a few ms on a 5,000-line file)."""
    if not edit.changes(text):
        return "unchanged"
    if last is not None and last.end <= len(text) and text[last.start : last.end] == last.new:
        # The document after the edit equals the one before the hunk: they can differ only
        # where the edit or the hunk is.
        lo, hi = min(edit.start, last.start), max(edit.end, last.end)
        edited = text[lo : edit.start] + edit.text + text[edit.end : hi]
        undone = text[lo : last.start] + last.old + text[last.end : hi]
        if edited == undone:
            return "reverts"
    if more_syntax_errors(text, edit, language):
        return "syntax"
    return None


def more_syntax_errors(before: str, edit: Edit, language: str) -> bool:
    """Whether the lines around `edit` parse with more errors after it than before."""
    try:
        grammar = grammar_of(language)
    except Exception:  # a grammar that fails to load: no opinion
        return False
    if grammar is None:
        return False
    lo, hi = _region(before, edit.start, edit.end)
    old_errors = _error_count(grammar, before[lo:hi])
    new_errors = _error_count(grammar, before[lo : edit.start] + edit.text + before[edit.end : hi])
    return new_errors > old_errors


def _region(text: str, start: int, end: int) -> tuple[int, int]:
    """Offsets of whole lines around [start, end): SYNTAX_CONTEXT_LINES each side, then on
    to a line that starts at column 0 (a top-level statement), within SYNTAX_SCAN_LINES."""
    lo = text.rfind("\n", 0, start) + 1
    for scanned in range(SYNTAX_SCAN_LINES):
        if lo == 0:
            break
        if scanned >= SYNTAX_CONTEXT_LINES and text[lo : lo + 1] not in ("", " ", "\t", "\n"):
            break
        lo = text.rfind("\n", 0, lo - 1) + 1
    hi = text.find("\n", end)
    hi = len(text) if hi < 0 else hi + 1
    for scanned in range(SYNTAX_SCAN_LINES):
        if hi >= len(text):
            break
        if scanned >= SYNTAX_CONTEXT_LINES and text[hi : hi + 1] not in (" ", "\t", "\n"):
            break
        nl = text.find("\n", hi)
        hi = len(text) if nl < 0 else nl + 1
    return lo, hi


def _error_count(grammar: Grammar, text: str) -> int:
    return error_count(parse(grammar, text.encode("utf-8", errors="replace")).root_node)


def _words(text: str) -> list[str]:
    return text.split()


def _display_path(path: str) -> str:
    return path.rsplit("/", 1)[-1] if "/" in path else path
