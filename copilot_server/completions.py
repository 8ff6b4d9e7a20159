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
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from .config import Settings
from .context import Context, plain_context
from .engines.base import Engine, Generation
from .engines.loader import EngineLoader
from .engines.remote import RemoteEngine, RemoteEngineError
from .prompts import Prompt, build_fim_prompt
from .trimming import TrimRequest, Trimmer

log = logging.getLogger(__name__)


class Superseded(Exception):
    """A newer request for the same document took over; this one has no answer."""


@dataclass(frozen=True)
class CompletionRequest:
    uri: str
    path: str
    language: str
    text: str
    offset: int  # Python str offset of the cursor in `text`
    invoked: bool = False  # the user asked explicitly (vs automatic while typing)
    # LSP selectedCompletionInfo: the suggestion must start with this text (which the
    # editor's completion widget would insert over [replace_start, offset)).
    selected_text: str | None = None
    replace_start: int | None = None


@dataclass
class CompletionResult:
    text: str
    source: str  # "model" | "typed-through" | "lru" | "none"
    latency_ms: float
    tokens_generated: int = 0
    tokens_shown: int = 0
    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0
    stop_reason: str = ""
    server_ms: float = 0.0  # time spent outside the model (context, prompt, trimming)
    id: str = ""
    message: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Metrics:
    """Local counters only; nothing is sent anywhere."""

    requests: int = 0
    model_calls: int = 0
    typed_through_hits: int = 0
    lru_hits: int = 0
    superseded: int = 0
    cancelled: int = 0
    empty: int = 0
    tokens_generated: int = 0
    tokens_shown: int = 0
    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0
    accepted: int = 0
    accepted_chars: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Shown:
    """The last suggestion shown in a document, for answering typed-through requests."""

    uri: str
    before: str
    after: str
    text: str


ContextBuilder = Callable[[CompletionRequest, Engine, Settings], Context]


def default_context_builder(request: CompletionRequest, engine: Engine, settings: Settings) -> Context:
    def count(text: str) -> int:
        return len(engine.tokenize(text))

    return plain_context(request.path, request.language, request.text, request.offset, settings.context, count)


class CompletionService:
    def __init__(
        self,
        settings: Settings,
        loader: EngineLoader,
        context_builder: ContextBuilder = default_context_builder,
    ) -> None:
        self.settings = settings
        self.loader = loader
        self.context_builder = context_builder
        self.metrics = Metrics()
        # One model, one worker thread: llama.cpp contexts are not thread-safe.
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._inflight: dict[str, threading.Event] = {}
        self._shown: dict[str, _Shown] = {}
        self._lru: OrderedDict[str, str] = OrderedDict()
        self._counter = 0

    # -- public ------------------------------------------------------------------------

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        started = time.perf_counter()
        self.metrics.requests += 1
        cached = self._typed_through(request)
        if cached is not None:
            self.metrics.typed_through_hits += 1
            log.debug("typed-through cache hit for %s", request.uri)
            return self._finish_result(cached, "typed-through", started, request)

        # A newer request for the same document supersedes the older one.
        cancel = threading.Event()
        previous = self._inflight.get(request.uri)
        if previous is not None:
            previous.set()
            self.metrics.superseded += 1
        self._inflight[request.uri] = cancel
        try:
            engine = await self.loader.wait(self.settings.completion.model_wait_s)
            if engine is None:
                state = self.loader.state
                return CompletionResult("", "none", _ms(started), message=state.message)
            if cancel.is_set():
                raise Superseded
            prep_started = time.perf_counter()
            if isinstance(engine, RemoteEngine):
                engine.ensure_ready()  # a model server that is away fails here, with a reason
            context = self.context_builder(request, engine, self.settings)
            heal = trailing_whitespace(context.line_prefix)
            prompt = build_fim_prompt(engine, without_trailing_whitespace(context), self.settings.model.template)
            prep_ms = _ms(prep_started)
            key = _prompt_key(prompt)
            if key in self._lru:
                self._lru.move_to_end(key)
                self.metrics.lru_hits += 1
                log.debug("LRU cache hit for %s", request.uri)
                return self._finish_result(self._lru[key], "lru", started, request)
            trimmer = Trimmer(self._trim_request(request, context, prompt))
            future = self._worker.submit(self._generate, engine, prompt, trimmer, cancel, heal)
            try:
                generation, text = await asyncio.wrap_future(future)
            except asyncio.CancelledError:
                cancel.set()
                self.metrics.cancelled += 1
                raise
            if generation.stop_reason == "cancelled":
                raise Superseded
            text = self._honour_selected(request, text)
            self._remember_lru(key, text)
            result = self._finish_result(text, "model", started, request, generation, engine)
            result.server_ms = prep_ms + generation_overhead(result, generation)
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
        except RemoteEngineError as exc:
            # A model server that is down, slow or failing: no suggestion; the status says why.
            self.metrics.empty += 1
            return CompletionResult("", "none", _ms(started), message=str(exc))
        finally:
            if self._inflight.get(request.uri) is cancel:
                del self._inflight[request.uri]

    async def run_on_model(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the one model thread: explain and fix share the engine with completions."""
        return await asyncio.wrap_future(self._worker.submit(fn))

    def cancel_document(self, uri: str) -> None:
        event = self._inflight.get(uri)
        if event is not None:
            event.set()

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

    def _generate(
        self, engine: Engine, prompt: Prompt, trimmer: Trimmer, cancel: threading.Event, heal: str
    ) -> tuple[Generation, str]:
        generation = engine.generate(
            prompt.tokens,
            max_tokens=self.settings.completion.max_tokens,
            should_stop=lambda raw: trimmer.should_stop(healed(raw, heal)),
            cancel=cancel,
            temperature=self.settings.completion.temperature,
            stop_tokens=prompt.stop_tokens,
        )
        started = time.perf_counter()
        text = trimmer.finish(healed(generation.text, heal))
        generation.__dict__["trim_ms"] = _ms(started)
        return generation, text

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
        wanted = request.selected_text[len(typed) :] if request.selected_text.startswith(typed) else ""
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

    def _finish_result(
        self,
        text: str,
        source: str,
        started: float,
        request: CompletionRequest,
        generation: Generation | None = None,
        engine: Engine | None = None,
    ) -> CompletionResult:
        self._counter += 1
        engine = engine or self.loader.engine
        shown_tokens = len(engine.tokenize(text)) if (engine is not None and text) else 0
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
            self._shown[request.uri] = _Shown(
                uri=request.uri,
                before=request.text[: request.offset],
                after=request.text[request.offset :],
                text=text,
            )
        else:
            self.metrics.empty += 1
        return result


def trailing_whitespace(line_prefix: str) -> str:
    return line_prefix[len(line_prefix.rstrip(" \t")) :]


def without_trailing_whitespace(context: Context) -> Context:
    """Token healing for indentation: BPE vocabularies merge spaces into the next word
    (" return"), so a prompt ending in spaces is one the model never saw in training and
    it answers with an extra space or an odd word. The model writes the whitespace itself
    and `healed` removes the part the user already typed."""
    stripped = context.line_prefix.rstrip(" \t")
    if stripped == context.line_prefix:
        return context
    return replace(context, line_prefix=stripped)


def healed(raw: str, heal: str) -> str:
    """The model's text as a continuation after the whitespace the user already typed."""
    if not heal:
        return raw
    if raw.startswith(heal):
        return raw[len(heal) :]
    if heal.startswith(raw):
        return ""  # still writing the typed whitespace
    # The model chose other whitespace (e.g. less indentation): drop what overlaps.
    common = 0
    while common < min(len(raw), len(heal)) and raw[common] == heal[common]:
        common += 1
    rest = raw[common:]
    return rest.lstrip(" \t") if not raw[:common].strip() else rest


def generation_overhead(result: CompletionResult, generation: Generation) -> float:
    """Time of the request not spent in llama.cpp (queueing excluded by design)."""
    trim = float(generation.__dict__.get("trim_ms", 0.0))
    return trim


def _prompt_key(prompt: Prompt) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(b"".join(t.to_bytes(4, "little", signed=True) for t in prompt.tokens))
    return digest.hexdigest()


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000
