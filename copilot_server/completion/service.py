"""The path of one inline completion: cache → supersede → context → prompt → engine → trimmer.

Every editor request and the headless `complete` command go through `CompletionService`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import threading
import time
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..config import Settings, SettingsStore
from ..context import Context
from ..context.windows import default_context_builder
from ..engines.base import (
    Engine,
    EngineUnavailable,
    Generation,
    background_work,
    capabilities_of,
    count_tokens,
    ensure_ready,
)
from ..engines.loader import EngineLoader
from ..priority import lower_thread_priority
from ..prompts import Prompt, build_fim_prompt
from ..prompts.healing import vocabulary_for
from ..prompts.layout import with_lead_lines
from ..prompts.whitespace import healed, trailing_whitespace, without_trailing_whitespace
from ..stats import percentile
from ..trimming import Trimmer, TrimRequest
from ..trimming.rules import stop_at_suffix_repeat
from . import alternatives
from .metrics import SERVER_MS_WINDOW, Metrics
from .types import CompletionRequest, CompletionResult, ContextBuilder, Superseded

# The rule whose empty answer is worth a second branch (see _instead_of_suffix).
REPEATS_SUFFIX = stop_at_suffix_repeat.__name__

log = logging.getLogger(__name__)


SHOWN_DOCUMENTS = 16
# Explicit requests' alternatives kept per prompt; a few places in flight is all cycling needs.
ALTERNATIVES_CACHE = 32


class _Early:
    """A block suggestion's first line, offered as the answer while the model writes the
    rest: on a 2-core CPU a 5-line block is ~2 s of decoding, its first line ~0.4 s. The
    rest completes the typed-through cache (see `_continued`)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, request: TrimRequest, enabled: bool = True
    ) -> None:
        self.loop = loop
        self.enabled = enabled
        self.future: asyncio.Future[str] = loop.create_future()
        self.request = replace(request, check_syntax=False)  # half a block does not parse
        self.streamed = ""  # the healed text so far, for requests typing through it
        self.submitted = 0.0  # when the request was handed to the model thread
        self.begun = 0.0  # when the model call started (after any queueing)
        self.waited_ms = 0.0  # waiting for the model to load
        self.model_ms = 0.0  # model time up to the first line
        self.stop_ms = 0.0  # time spent in the stop rules so far (server time)
        self.changed = asyncio.Event()  # set when the stream completes another line
        self._lines = 0
        self._done = False

    def offer(self, text: str, called: float) -> None:
        """Called on the model thread with the healed text after each token (`called`:
        when this token's stop check began; the time before it was the model's)."""
        self.streamed = text
        lines = text.count("\n")
        if lines > self._lines:
            self._lines = lines
            self.loop.call_soon_threadsafe(self.changed.set)
        if self._done or not lines or not self.enabled:
            return
        self._done = True
        first = Trimmer(self.request).finish(text.split("\n", 1)[0])
        if first:
            self.model_ms = (called - self.begun) * 1000 - self.stop_ms
            self.loop.call_soon_threadsafe(_resolve, self.future, first)


@dataclass
class _Continuation:
    """A generation still writing the block whose first line was answered early."""

    before: str
    after: str
    future: asyncio.Future
    early: _Early


def _resolve(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


@dataclass
class _Shown:
    """The last suggestion shown in a document, for answering typed-through requests."""

    uri: str
    before: str
    after: str
    text: str


class CompletionService:
    def __init__(
        self,
        settings: Settings | SettingsStore,
        loader: EngineLoader,
        context_builder: ContextBuilder = default_context_builder,
    ) -> None:
        self._store = SettingsStore.of(settings)
        self.loader = loader
        self.context_builder = context_builder
        self.metrics = Metrics()
        # One model, one worker thread: llama.cpp contexts are not thread-safe.
        self._worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="model", initializer=lower_thread_priority
        )
        self._background: concurrent.futures.ThreadPoolExecutor | None = None  # run_on_model
        self._inflight: dict[str, threading.Event] = {}
        self._shown: dict[str, _Shown] = {}
        self._lru: OrderedDict[str, str] = OrderedDict()
        # (prompt key, first suggestion, count) -> alternatives: cycling again costs nothing.
        self._alternatives: OrderedDict[tuple, list[str]] = OrderedDict()
        self._counter = 0
        self._continuing: dict[str, _Continuation] = {}
        self._server_ms: deque[float] = deque(maxlen=SERVER_MS_WINDOW)

    # -- public ------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The current settings (the store's: a change applies from the next request)."""
        return self._store.current

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        started = time.perf_counter()
        self.metrics.requests += 1
        # A request for alternatives needs the prompt: no answer from the suggestion shown.
        cycling = request.alternatives > 1
        cached = None if cycling else self._typed_through(request)
        rest_ms = 0.0  # waiting for the block of an earlier answer: model time, not ours
        if cached is None and not cycling:
            waiting = time.perf_counter()
            partial = await self._rest_of_block(request)
            if partial:
                cached = self._honour_selected(request, partial) or None
            elif partial == "":
                cached = self._typed_through(request)
            rest_ms = _ms(waiting)
        if cached is not None:
            self.metrics.typed_through_hits += 1
            log.debug("typed-through cache hit for %s", request.uri)
            shown = await self._shown_tokens(cached)
            result = self._finish_result(cached, "typed-through", started, request, shown)
            result.server_ms = max(0.0, result.latency_ms - rest_ms)
            return result

        # A newer request for the same document supersedes the older one.
        cancel = threading.Event()
        previous = self._inflight.get(request.uri)
        if previous is not None:
            previous.set()
            self.metrics.superseded += 1
        self._inflight[request.uri] = cancel
        continuing = False
        try:
            waiting = time.perf_counter()
            engine = await self.loader.wait(self.settings.completion.model_wait_s)
            waited_ms = _ms(waiting) + rest_ms
            if engine is None:
                state = self.loader.state
                return CompletionResult("", "none", _ms(started), message=state.message)
            if cancel.is_set():
                raise Superseded
            if capabilities_of(engine).tokenizes_remotely:
                # Each token count is a round trip to the model server: readiness, context
                # and prompt are made on a thread, never on the event loop.
                await ensure_ready(engine)
                context, prompt, heal = await asyncio.to_thread(self._lay_out, request, engine)
            else:
                context, prompt, heal = self._lay_out(request, engine)
            key = _prompt_key(prompt)
            if key in self._lru:
                self._lru.move_to_end(key)
                self.metrics.lru_hits += 1
                log.debug("LRU cache hit for %s", request.uri)
                shown = await self._shown_tokens(self._lru[key])
                result = self._finish_result(self._lru[key], "lru", started, request, shown)
                result.server_ms = max(0.0, result.latency_ms - waited_ms)
                await self._add_alternatives(request, result, engine, prompt, context, heal, cancel)
                return result
            trimmer = Trimmer(self._trim_request(request, context, prompt))
            # While typing, a block's first line is answered as soon as it is written; an
            # explicit request (and the `complete` command) waits for the whole block.
            early = _Early(asyncio.get_running_loop(), trimmer.request, not request.invoked)
            early.waited_ms = waited_ms
            early.submitted = time.perf_counter()
            running = asyncio.wrap_future(
                self._worker.submit(self._generate, engine, prompt, trimmer, cancel, heal, early)
            )
            try:
                await asyncio.wait({running, early.future}, return_when=asyncio.FIRST_COMPLETED)
                if not running.done():
                    first = self._honour_selected(request, early.future.result())
                    if first:
                        continuing = True
                        shown = await self._shown_tokens(first)
                        return self._answer_early(
                            request, first, shown, early, running, cancel, key, started
                        )
                generation, text = await running
            except asyncio.CancelledError:
                cancel.set()
                self.metrics.cancelled += 1
                raise
            if generation.stop_reason == "cancelled":
                raise Superseded
            text = self._honour_selected(request, text)
            self._remember_lru(key, text)
            shown = await self._shown_tokens(text, engine)
            result = self._finish_result(text, "model", started, request, shown, generation)
            result.server_ms = max(0.0, result.latency_ms - waited_ms - _model_ms(generation))
            await self._add_alternatives(request, result, engine, prompt, context, heal, cancel)
            log.info(
                "completion %s: %d prompt tokens (%d evaluated), %d generated, %d shown, "
                "stop=%s rule=%s, %.0f ms",
                request.uri.rsplit("/", 1)[-1],
                generation.prompt_tokens,
                generation.prompt_tokens_evaluated,
                generation.tokens_generated,
                result.tokens_shown,
                generation.stop_reason,
                trimmer.fired,
                result.latency_ms,
            )
            return result
        except EngineUnavailable as exc:
            # A model server that is down, slow or failing: no suggestion; the status says why.
            self.metrics.empty += 1
            return CompletionResult("", "none", _ms(started), message=str(exc))
        finally:
            if not continuing and self._inflight.get(request.uri) is cancel:
                del self._inflight[request.uri]

    def _lay_out(self, request: CompletionRequest, engine: Engine) -> tuple[Context, Prompt, str]:
        """The request's context, its prompt, and the text the model must write first."""
        context = self.context_builder(request, engine, self.settings)
        cursor_line = request.text.count("\n", 0, request.offset)
        prompt_context = with_lead_lines(context, cursor_line)
        heal = ""
        if vocabulary_for(engine) is None:
            # No token healing (remote engines): typed whitespace is left for the model
            # to write, unconstrained, and `healed` drops what the user already typed.
            heal = trailing_whitespace(context.line_prefix)
            prompt_context = without_trailing_whitespace(prompt_context)
        prompt = build_fim_prompt(engine, prompt_context, self.settings.model.template)
        heal = prompt.heal or heal  # token healing: the model writes it again, constrained
        return context, prompt, heal

    async def run_on_model(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the one model thread: explain and fix share the engine with completions.

        An engine that orders requests itself (the shared engine host: completions first,
        between tokens) gets `fn` on a thread of its own, as background work, so a
        completion of this window never queues behind an explain or fix here."""
        if getattr(self.loader.engine, "schedules_priorities", False):
            if self._background is None:
                self._background = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix="background", initializer=lower_thread_priority
                )
            return await asyncio.wrap_future(self._background.submit(_as_background, fn))
        return await asyncio.wrap_future(self._worker.submit(fn))

    def cancel_document(self, uri: str) -> None:
        event = self._inflight.get(uri)
        if event is not None:
            event.set()

    def note_server_time(self, result: CompletionResult, edge_ms: float = 0.0) -> None:
        """Record one answered request's time outside the model (plus `edge_ms` spent in
        the LSP handler around it) for the status metrics."""
        self._server_ms.append(result.server_ms + edge_ms)
        self.metrics.server_ms_p50 = round(percentile(self._server_ms, 50), 3)
        self.metrics.server_ms_p95 = round(percentile(self._server_ms, 95), 3)
        self.metrics.server_ms_max = round(max(self._server_ms), 3)

    def record_accepted(self, text_length: int) -> None:
        self.metrics.accepted += 1
        self.metrics.accepted_chars += max(0, text_length)

    def forget_document(self, uri: str) -> None:
        self._shown.pop(uri, None)
        self.cancel_document(uri)

    def close(self) -> None:
        for event in self._inflight.values():
            event.set()
        self._worker.shutdown(wait=True, cancel_futures=True)
        if self._background is not None:
            self._background.shutdown(wait=True, cancel_futures=True)

    # -- steps -------------------------------------------------------------------------

    def _trim_request(
        self, request: CompletionRequest, context: Context, prompt: Prompt
    ) -> TrimRequest:
        return TrimRequest(
            line_prefix=context.line_prefix,
            line_suffix=context.line_suffix,
            suffix=context.suffix,
            prefix=context.prefix,
            language=request.language,
            max_lines=self.settings.completion.max_lines,
            max_tokens=self.settings.completion.max_tokens,
            chat=prompt.chat,
        )

    async def _add_alternatives(
        self,
        request: CompletionRequest,
        result: CompletionResult,
        engine: Engine,
        prompt: Prompt,
        context: Context,
        heal: str,
        cancel: threading.Event,
    ) -> None:
        """Explicit requests: more suggestions after the first, on the model thread."""
        if request.alternatives <= 1 or not result.text.strip():
            return
        cache_key = (_prompt_key(prompt), result.text, request.alternatives)
        if cache_key in self._alternatives:
            self._alternatives.move_to_end(cache_key)
            result.alternatives = list(self._alternatives[cache_key])
            self.metrics.alternatives_shown += len(result.alternatives)
            return
        running = self._worker.submit(
            alternatives.generate,
            engine,
            prompt,
            lambda: Trimmer(self._trim_request(request, context, prompt)),
            lambda raw: healed(raw, heal),
            cancel,
            count=request.alternatives - 1,
            exclude=[result.text],
            max_tokens=self.settings.completion.max_tokens,
            heal=heal,
        )
        try:
            found = await asyncio.wrap_future(running)
        except asyncio.CancelledError:
            cancel.set()
            raise
        if cancel.is_set():
            raise Superseded
        honoured = (self._honour_selected(request, text) for text in found.texts)
        result.alternatives = [text for text in honoured if text.strip()]
        self._alternatives[cache_key] = list(result.alternatives)
        while len(self._alternatives) > ALTERNATIVES_CACHE:
            self._alternatives.popitem(last=False)
        result.latency_ms += found.ms
        self.metrics.alternatives_shown += len(result.alternatives)
        self.metrics.alternatives_tokens_generated += found.tokens_generated
        self.metrics.alternatives_ms += found.ms
        log.info(
            "alternatives %s: %d more in %d model calls, %d tokens generated, %.0f ms",
            request.uri.rsplit("/", 1)[-1],
            len(result.alternatives),
            found.model_calls,
            found.tokens_generated,
            found.ms,
        )

    def _generate(
        self,
        engine: Engine,
        prompt: Prompt,
        trimmer: Trimmer,
        cancel: threading.Event,
        heal: str,
        early: _Early | None = None,
    ) -> tuple[Generation, str]:
        stop_ms = 0.0

        def should_stop(raw: str) -> bool:
            nonlocal stop_ms
            began = time.perf_counter()
            text = healed(raw, heal)
            stop = trimmer.should_stop(text)
            if early is not None and not stop:
                early.offer(text, began)
            stop_ms += _ms(began)
            if early is not None:
                early.stop_ms = stop_ms
            return stop

        if early is not None:
            early.begun = time.perf_counter()
        generation = engine.generate(
            prompt.tokens,
            max_tokens=self.settings.completion.max_tokens,
            should_stop=should_stop,
            cancel=cancel,
            temperature=self.settings.completion.temperature,
            stop_tokens=prompt.stop_tokens,
            heal=prompt.heal,
        )
        if generation.stop_reason == "cancelled":
            self.metrics.cancelled_generations += 1
            self.metrics.tokens_generated_cancelled += generation.tokens_generated
        started = time.perf_counter()
        text = trimmer.finish(healed(generation.text, heal))
        if (
            not text.strip()
            and trimmer.fired == REPEATS_SUFFIX
            and capabilities_of(engine).branches  # a remote engine would pay a whole request
            and not cancel.is_set()
        ):
            text = self._instead_of_suffix(
                engine, prompt, trimmer.request, cancel, heal, generation
            )
        generation.trim_ms = _ms(started)
        generation.stop_ms = stop_ms
        if early is not None:
            generation.queued_ms = (early.begun - early.submitted) * 1000
        return generation, text

    def _instead_of_suffix(
        self,
        engine: Engine,
        prompt: Prompt,
        trim: TrimRequest,
        cancel: threading.Event,
        heal: str,
        generation: Generation,
    ) -> str:
        """The likeliest suggestion that does not start with the line after the cursor.

        The greedy answer was that line, cut away as a repeat: the model skipped the line
        being written (e.g. a blank indented line before `streamwriter=…` in a call whose
        `streamreader=…` is missing). Nothing shown helps no one; the next branch where the
        suggestion starts usually is the missing line. Costs one branch's tokens, and only
        here (the prompt is in the KV cache)."""
        found = alternatives.generate(
            engine,
            prompt,
            lambda: Trimmer(trim),
            lambda raw: healed(raw, heal),
            cancel,
            count=1,
            exclude=[],
            max_tokens=self.settings.completion.max_tokens,
            heal=heal,
        )
        generation.tokens_generated += found.tokens_generated
        generation.prompt_tokens_evaluated += found.prompt_tokens_evaluated
        self.metrics.suffix_repeat_branches += 1
        return found.texts[0] if found.texts else ""

    def _answer_early(
        self,
        request: CompletionRequest,
        first: str,
        shown_tokens: int,
        early: _Early,
        running: asyncio.Future,
        cancel: threading.Event,
        key: str,
        started: float,
    ) -> CompletionResult:
        """Answer with the block's first line; the generation goes on and, when done, puts
        the whole block in the caches (until then the request stays cancellable by a newer
        one in `_inflight`)."""
        result = self._finish_result(first, "model", started, request, shown_tokens)
        result.stop_reason = "first-line"
        self.metrics.model_calls += 1  # the rest of its figures come with the block
        queued_ms = (early.begun - early.submitted) * 1000
        outside = result.latency_ms - early.waited_ms - queued_ms - early.model_ms
        result.server_ms = max(0.0, outside)
        self.metrics.early_answers += 1
        before, after = request.text[: request.offset], request.text[request.offset :]
        self._continuing[request.uri] = _Continuation(before, after, running, early)
        running.add_done_callback(
            lambda done: self._continued(done, request, first, cancel, key, started)
        )
        log.info(
            "completion %s: first line after %.0f ms, the rest of the block continues",
            request.uri.rsplit("/", 1)[-1],
            result.latency_ms,
        )
        return result

    def _continued(
        self,
        done: asyncio.Future,
        request: CompletionRequest,
        first: str,
        cancel: threading.Event,
        key: str,
        started: float,
    ) -> None:
        """The generation behind an early answer ended: count it and cache the block."""
        if self._inflight.get(request.uri) is cancel:
            del self._inflight[request.uri]
        continuation = self._continuing.get(request.uri)
        if continuation is not None and continuation.future is done:
            del self._continuing[request.uri]
        if done.cancelled() or done.exception() is not None:
            return
        generation, text = done.result()
        self.metrics.tokens_generated += generation.tokens_generated
        self.metrics.prompt_tokens += generation.prompt_tokens
        self.metrics.prompt_tokens_evaluated += generation.prompt_tokens_evaluated
        if generation.stop_reason == "cancelled":
            return
        text = self._honour_selected(request, text)
        self._remember_lru(key, text)
        # The suggestion on screen is the first line, or what is left of it (or of the
        # lines streamed since) after typed-through answers: it grows into the whole block.
        before = request.text[: request.offset]
        shown = self._shown.get(request.uri)
        if (
            shown is not None
            and text.startswith(first)
            and shown.after == request.text[request.offset :]
            and shown.before.startswith(before)
            and (before + text).startswith(shown.before + shown.text)
        ):
            shown.text = (before + text)[len(shown.before) :]
        log.info(
            "completion %s: %d prompt tokens (%d evaluated), %d generated, stop=%s, "
            "block done after %.0f ms",
            request.uri.rsplit("/", 1)[-1],
            generation.prompt_tokens,
            generation.prompt_tokens_evaluated,
            generation.tokens_generated,
            generation.stop_reason,
            _ms(started),
        )

    async def _rest_of_block(self, request: CompletionRequest) -> str | None:
        """The user types through a first line answered early while its block is still
        being written: answer from the lines already streamed past what was typed, or wait
        for the next one (a fresh request would cancel the block and start over).

        Returns those lines; "" when the block ended (the caches answer); None when there
        is no such block or the user typed something else.
        """
        continuation = self._continuing.get(request.uri)
        if continuation is None or continuation.future.done():
            return None
        before = request.text[: request.offset]
        if request.text[request.offset :] != continuation.after or not before.startswith(
            continuation.before
        ):
            return None
        typed = before[len(continuation.before) :]
        early = continuation.early
        while not continuation.future.done():
            streamed = early.streamed
            if not (streamed.startswith(typed) or typed.startswith(streamed)):
                return None
            rest = streamed[len(typed) :] if streamed.startswith(typed) else ""
            lines = rest[: rest.rfind("\n")] if "\n" in rest else ""
            if lines.strip():
                return lines  # complete lines the stream rules have let through so far
            early.changed.clear()
            waiter = asyncio.ensure_future(early.changed.wait())
            try:
                await asyncio.wait(
                    {waiter, continuation.future}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waiter.cancel()
        if continuation.future.cancelled() or continuation.future.exception() is not None:
            return None
        return ""

    def _typed_through(self, request: CompletionRequest) -> str | None:
        shown = self._shown.get(request.uri)
        if shown is None:
            return None
        before = request.text[: request.offset]
        after = request.text[request.offset :]
        if after != shown.after or not before.startswith(shown.before):
            return None
        typed = before[len(shown.before) :]
        if not typed or not shown.text.startswith(typed) or len(typed) >= len(shown.text):
            return None
        rest = shown.text[len(typed) :]
        return self._honour_selected(request, rest) or None

    def _honour_selected(self, request: CompletionRequest, text: str) -> str:
        """With a completion-widget item selected, the suggestion must extend it."""
        if request.selected_text is None or request.replace_start is None:
            return text
        typed = request.text[request.replace_start : request.offset]
        wanted = (
            request.selected_text[len(typed) :] if request.selected_text.startswith(typed) else ""
        )
        if text.startswith(wanted):
            return text
        return ""

    def _remember_lru(self, key: str, text: str) -> None:
        size = self.settings.completion.cache_size
        if size <= 0:
            return
        self._lru[key] = text
        self._lru.move_to_end(key)
        while len(self._lru) > size:
            self._lru.popitem(last=False)

    async def _shown_tokens(self, text: str, engine: Engine | None = None) -> int:
        """Tokens of the suggestion shown (metrics), counted by the engine that wrote it
        or, for an answer from a cache, the one loaded now."""
        return await count_tokens(engine or self.loader.engine, text)

    def _finish_result(
        self,
        text: str,
        source: str,
        started: float,
        request: CompletionRequest,
        shown_tokens: int,
        generation: Generation | None = None,
    ) -> CompletionResult:
        self._counter += 1
        result = CompletionResult(
            text=text,
            source=source,
            latency_ms=_ms(started),
            tokens_shown=shown_tokens,
            id=f"c{self._counter}",
        )
        if generation is not None:
            result.tokens_generated = generation.tokens_generated
            result.prompt_tokens = generation.prompt_tokens
            result.prompt_tokens_evaluated = generation.prompt_tokens_evaluated
            result.stop_reason = generation.stop_reason
            self.metrics.model_calls += 1
            self.metrics.tokens_generated += generation.tokens_generated
            self.metrics.prompt_tokens += generation.prompt_tokens
            self.metrics.prompt_tokens_evaluated += generation.prompt_tokens_evaluated
        if text:
            self.metrics.tokens_shown += shown_tokens
            self._shown.pop(request.uri, None)  # re-inserted last: the newest
            self._shown[request.uri] = _Shown(
                uri=request.uri,
                before=request.text[: request.offset],
                after=request.text[request.offset :],
                text=text,
            )
            while len(self._shown) > SHOWN_DOCUMENTS:  # each holds a copy of its document
                del self._shown[next(iter(self._shown))]
        else:
            self.metrics.empty += 1
        return result


def _as_background(fn: Callable[[], Any]) -> Any:
    with background_work():
        return fn()


def _model_ms(generation: Generation) -> float:
    """Time inside llama.cpp: the engine's prompt + decode time less our stop rules, which
    run between tokens; queueing behind another generation is neither model nor server."""
    stop = generation.stop_ms
    queued = generation.queued_ms
    return generation.prompt_ms + generation.generation_ms - stop + queued


def _prompt_key(prompt: Prompt) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(array("i", prompt.tokens).tobytes())  # 20x faster than per-token bytes
    # A healed prompt is the same for "re" and "ret": what is healed tells them apart.
    digest.update(prompt.heal.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000
