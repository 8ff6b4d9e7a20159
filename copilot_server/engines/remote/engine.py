"""Engines whose model runs on a server: llama-server, or any OpenAI-compatible endpoint.

One GPU server can serve a whole team while each developer keeps the local copilot-server
(context, prompts, trimming, cache, editors). These engines offer the same token-level
interface as the in-process one, so nothing upstream changes:

- `llama-server`: FIM prompts go to the native `/infill` (snippets as `input_extra`,
  `cache_prompt`), other prompts to `/completion` as token ids, both streamed.
- `openai`: `/v1/completions` with the prompt the project builds as text (special tokens
  written out), streamed; vLLM, llama-cpp-python's server and Ollama all accept it.

Tokens must be the served model's own, so tokenizing is asked of the server (`/tokenize`,
or llama-cpp-python's `/extras/tokenize`) and remembered; a local GGUF's vocabulary
(`model.path`) is used instead when it tokenizes the same, or when the server cannot.
Prompts are concatenations of tokenize() results, so their text is known without asking.

Failures (server down, slow, 4xx/5xx, wrong model, TLS) raise `RemoteEngineError` with a
message saying what to check; `error` holds it for the status until a call succeeds again.
Every request tries the server afresh, so service resumes by itself when it comes back.
The API key is read from the environment variable named in the settings, sent as a Bearer
token, and never logged or put in a message.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from ...config import Settings
from ..base import FimTokens, GenerateOptions, Generation, ModelInfo
from ..families import FAMILIES, family_for_name
from . import llama_server, openai
from .http import Chunk, Endpoint, Http, HttpStatusError, RemoteEngineError, _int, describe_oserror
from .served import Request, Served
from .tokenizers import (
    PROBE_TEXT,
    TOKEN_MEMORY_SIZE,
    ServerTokenizer,
    TextTokenizer,
    Tokenizer,
    TokenMemory,
    VocabTokenizer,
    split_special_text,
)

log = logging.getLogger(__name__)


DEFAULT_URLS = {"llama-server": "http://127.0.0.1:8080", "openai": "http://127.0.0.1:8000"}
# engine.kind -> the module that builds its request bodies and reads its stream.
BACKENDS = {"llama-server": llama_server, "openai": openai}


class RemoteEngine:
    # Its tokenizer may be the server's: see Capabilities.tokenizes_remotely.
    tokenizes_remotely = True
    """The Engine protocol over HTTP to llama-server or an OpenAI-compatible server."""

    # No token-by-token control of sampling: prompts keep a word cut by the cursor in the
    # prefix section instead of healing it (prompts/healing.py).
    heals_tokens = False

    def __init__(self, settings: Settings) -> None:
        engine = settings.engine
        if engine.kind not in DEFAULT_URLS:
            raise RemoteEngineError(f"engine.kind {engine.kind!r} is not a remote engine")
        self.kind = engine.kind
        self._settings = settings
        self._endpoint = Endpoint.parse(engine.url or DEFAULT_URLS[engine.kind])
        self._http = Http(self._endpoint, engine.api_key_env, engine.timeout_s, engine.retries)
        self._served: Served | None = None
        self._info: ModelInfo | None = None  # a new one for each model served: see template_for
        self._unprobed_info = self._placeholder_info()
        self._recheck = False
        self._probe_lock = threading.Lock()
        self._memory = TokenMemory(TOKEN_MEMORY_SIZE)
        # Paths this server answered 404/501 to while another body could follow (/infill).
        self._unsupported: set[str] = set()
        # The last failure, for the status; None while the server answers.
        self.error: str | None = None
        log.info("remote engine: %s at %s", self.kind, self._endpoint.display)
        try:
            self._served_now()
        except RemoteEngineError as exc:
            # Not fatal: the loader reports ready and every request tries again.
            log.warning("copilot-server: %s (will retry on the next request)", exc)

    # -- model facts ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._endpoint.display

    @property
    def info(self) -> ModelInfo:
        return self._info or self._unprobed_info

    def _placeholder_info(self) -> ModelInfo:
        """Before the server answers: no FIM tokens, the configured context. One object,
        so what is cached against it (the prompt template) stays until the probe."""
        name = self._settings.engine.model_name or f"model server {self.url}"
        return ModelInfo(
            path=self.url,
            name=name,
            architecture="remote",
            size_bytes=0,
            n_ctx=self._settings.model.n_ctx,
            n_ctx_train=0,
            n_gpu_layers=0,
            n_layers=0,
            gpu_offload_supported=False,
            fim=FimTokens(None, None, None),
            chat_template=None,
            eos_token=None,
            metadata={"engine": self.kind, "url": self.url, "probed": "false"},
        )

    def _make_info(self, served: Served) -> ModelInfo:
        name = _display_name(served.model_id) or self._settings.engine.model_name or self.url
        metadata = dict(served.metadata)
        metadata.setdefault("general.name", name)
        metadata.update(
            {
                "engine": self.kind,
                "url": self.url,
                "model": served.model_id or "",
                "tokenizer": served.tokenizer.name,
            }
        )
        bos = served.tokenizer.bos
        if bos is not None:
            metadata["tokenizer.ggml.add_bos_token"] = "true"
            metadata["tokenizer.ggml.bos_token_id"] = str(bos)
        return ModelInfo(
            path=self.url,
            name=name,
            architecture=metadata.get("general.architecture", "remote"),
            size_bytes=0,
            n_ctx=served.n_ctx,
            n_ctx_train=served.n_ctx_train,
            n_gpu_layers=0,
            n_layers=0,
            gpu_offload_supported=False,
            fim=served.fim,
            chat_template=served.chat_template,
            eos_token=served.tokenizer.eos,
            metadata=metadata,
        )

    def _served_now(self) -> Served:
        served = self._served
        if served is not None and not self._recheck:
            return served
        with self._probe_lock:
            served = self._served
            if served is not None and self._recheck:
                # After a failure: the same model still served keeps everything learned.
                with self._health():
                    model_id, _models, _meta = self._list_models()
                if model_id != served.model_id:
                    log.info("model server now serves %s (was %s)", model_id, served.model_id)
                    served = None
                self._recheck = False
            if served is None:
                self._memory.clear()
                with self._health():
                    served = self._probe()
                self._unsupported.clear()
                old, self._served = self._served, served
                self._info = self._make_info(served)
                if old is not None:
                    if old.tokenizer is not served.tokenizer:
                        old.tokenizer.close()
                log.info(
                    "model server %s: model %s, tokenizer %s, FIM tokens %s",
                    self.url,
                    served.model_id,
                    served.tokenizer.name,
                    "found" if served.fim.available else "none",
                )
            return served

    def _list_models(self) -> tuple[str | None, list[str], dict[str, Any]]:
        """(the model to use, all served, its /v1/models entry); checks engine.modelName."""
        wanted = self._settings.engine.model_name
        try:
            data = self._http.call("GET", "/v1/models")
        except HttpStatusError as exc:
            redirect = 300 <= exc.status < 400  # say so: engine.url is not the server
            if redirect or exc.status in (401, 403) or (exc.status >= 500 and exc.status != 501):
                raise
            data = None
        entries = data.get("data") if isinstance(data, dict) else None
        entries = [e for e in entries or [] if isinstance(e, dict) and e.get("id")]
        models = [str(e["id"]) for e in entries]
        chosen: str | None = None
        if wanted:
            if models and not any(_same_model(wanted, m) for m in models):
                raise RemoteEngineError(
                    f"model server {self.url} does not serve '{wanted}' (engine.modelName); it "
                    f"serves: {', '.join(models)}"
                )
            chosen = next((m for m in models if _same_model(wanted, m)), wanted)
        elif models:
            chosen = models[0]
        elif self.kind == "openai":
            raise RemoteEngineError(
                f"model server {self.url} does not list its models (/v1/models); "
                "set engine.modelName"
            )
        meta: dict[str, Any] = {}
        for entry in entries:
            if entry["id"] == chosen:
                meta = dict(entry)
                if isinstance(entry.get("meta"), dict):
                    meta.update(entry["meta"])  # llama-server: n_ctx_train, n_params, ...
        return chosen, models, meta

    def _probe(self) -> Served:
        model_id, models, meta = self._list_models()
        props: dict[str, Any] = {}
        if self.kind == "llama-server":
            try:
                answer = self._http.call("GET", "/props")
                props = answer if isinstance(answer, dict) else {}
            except HttpStatusError as exc:
                if exc.status in (401, 403):
                    raise
            if model_id is None and isinstance(props.get("model_path"), str):
                model_id = props["model_path"]
        tokenizer, server_api = self._pick_tokenizer(model_id)
        generation = props.get("default_generation_settings")
        server_ctx = (
            _int(generation.get("n_ctx")) if isinstance(generation, dict) else None
        ) or _int(props.get("n_ctx"))
        server_ctx = server_ctx or _int(meta.get("max_model_len"))  # vLLM
        chat_template = props.get("chat_template")
        if not isinstance(chat_template, str) or not chat_template:
            chat_template = tokenizer.metadata.get("tokenizer.chat_template")
        return Served(
            model_id=model_id,
            models=models,
            tokenizer=tokenizer,
            fim=self._fim_tokens(tokenizer),
            n_ctx=server_ctx or self._settings.model.n_ctx,
            n_ctx_from_server=bool(server_ctx),
            n_ctx_train=_int(meta.get("n_ctx_train")) or 0,
            chat_template=chat_template,
            metadata=dict(tokenizer.metadata),
            server_api="llama-server" if self.kind == "llama-server" else server_api,
        )

    def _pick_tokenizer(self, model_id: str | None) -> tuple[Tokenizer, str]:
        """The tokenizer to use, and which server API answered the probe ("" for none)."""
        kinds = (
            ("llama-server",)
            if self.kind == "llama-server"
            else ("llama-server", "vLLM", "llama-cpp-python")
        )
        server = ServerTokenizer.probe(self._http, model_id, kinds)
        api = server.api_name if server is not None else ""
        local_path = self._settings.model.path
        if local_path:
            try:
                vocab: VocabTokenizer | None = VocabTokenizer(Path(local_path).expanduser())
            except Exception as exc:  # a bad path must not hide a working server tokenizer
                log.warning("cannot read the vocabulary of %s: %s", local_path, exc)
                vocab = None
            if vocab is not None:
                if server is None:
                    return vocab, api
                if vocab.tokenize(PROBE_TEXT, False) == server.tokenize(PROBE_TEXT, False):
                    return vocab, api  # same tokens, no round trips
                log.warning(
                    "model.path %s does not tokenize like the server's model; "
                    "using the server's tokenizer",
                    local_path,
                )
                vocab.close()
        if server is not None:
            return server, api
        family = family_for_name(self._settings.model.template) or family_for_name(model_id or "")
        if family is None:
            raise RemoteEngineError(
                f"model server {self.url} cannot tokenize (no /tokenize endpoint): set model.path "
                "to a GGUF of the same model (only its vocabulary is read) or model.template to "
                f"its FIM family ({', '.join(f.name for f in FAMILIES)})"
            )
        return TextTokenizer(family), api

    def _fim_tokens(self, tokenizer: Tokenizer) -> FimTokens:
        """The FIM ids, as llama.cpp would report them (templates.py cross-checks them)."""

        def single(texts: tuple[str, ...]) -> int | None:
            for text in texts:
                tokens = self._tokenize_with(tokenizer, text, True)
                if len(tokens) == 1:
                    return tokens[0]
            return None

        for family in FAMILIES:
            if any(single((text,)) is None for text in family.requires):
                continue
            ids = [single(family.prefix), single(family.suffix), single(family.middle)]
            if None in ids:
                continue
            return FimTokens(
                ids[0],
                ids[1],
                ids[2],
                repo_name=single(family.repo_name),
                file_sep=single(family.file_sep),
            )
        return FimTokens(None, None, None)

    def ensure_ready(self) -> None:
        """Reach the server (probing it once); raises RemoteEngineError when it cannot."""
        self._served_now()

    # -- health --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _health(self) -> Iterator[None]:
        """Record the outcome of a server call in `error` (what the status shows)."""
        try:
            yield
        except RemoteEngineError as exc:
            message = self._http.redact(str(exc))
            if self.error != message:
                log.warning("copilot-server: %s", message)
            self.error = message
            # Next time, check that the same model is still served before trusting memory.
            self._recheck = self._served is not None
            raise
        if self.error is not None:
            log.info("model server %s answers again", self.url)
        self.error = None

    # -- text <-> tokens -----------------------------------------------------------------

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        if not text:
            return []
        known = self._memory.tokens(text, special)
        if known is not None:
            return list(known)
        served = self._served_now()
        with self._health():
            return self._tokenize_with(served.tokenizer, text, special)

    def _tokenize_with(self, tokenizer: Tokenizer, text: str, special: bool) -> list[int]:
        known = self._memory.tokens(text, special)
        if known is not None:
            return list(known)
        if special or tokenizer.native_special:
            tokens = tokenizer.tokenize(text, special)
        else:
            tokens = []
            for part in split_special_text(text):
                if part:
                    tokens += tokenizer.tokenize(part, False)
        self._memory.remember(text, special, tuple(tokens))
        return tokens

    def detokenize(self, tokens: list[int]) -> str:
        """Text of `tokens`, special tokens written as their text."""
        if not tokens:
            return ""
        served = self._served_now()
        parts: list[str] = []
        for piece in self._memory.spell(tokens):
            if isinstance(piece, str):
                parts.append(piece)
                continue
            with self._health():
                parts.append(served.tokenizer.detokenize(piece))
        return "".join(parts)

    # -- generation ----------------------------------------------------------------------

    def generate(self, prompt: list[int], **options: Any) -> Generation:
        """Stream a completion (options: GenerateOptions' fields; no token healing here);
        the HTTP stream is closed on `should_stop` and on `cancel`."""
        opts = GenerateOptions(**options)
        if opts.cancel.is_set():
            return Generation("", 0, len(prompt), 0, "cancelled", 0.0, 0.0)
        served = self._served_now()
        if served.n_ctx_from_server:
            room = served.n_ctx - len(prompt) - 1
            if room <= 0:
                raise RemoteEngineError(
                    f"prompt of {len(prompt)} tokens does not fit the server's context "
                    f"of {served.n_ctx}"
                )
            opts = replace(opts, max_tokens=min(opts.max_tokens, room))
        stop_texts = [text for text in map(self._memory.text_of, sorted(opts.stop_tokens)) if text]
        backend = BACKENDS[self.kind]
        with self._health():
            request = Request(served, prompt, opts, stop_texts, self.detokenize)
            bodies = [(p, b) for p, b in backend.bodies(request) if p not in self._unsupported]
            *preferred, (last_path, last_body) = bodies
            for path, body in preferred:
                try:
                    return self._run_stream(path, body, prompt, opts, backend.chunk)
                except HttpStatusError as exc:
                    if exc.status not in (404, 501):
                        raise
                    log.info(
                        "model server %s: no %s for this model; using %s", self.url, path, last_path
                    )
                    self._unsupported.add(path)
            return self._run_stream(last_path, last_body, prompt, opts, backend.chunk)

    def _run_stream(
        self,
        path: str,
        body: dict[str, Any],
        prompt: list[int],
        opts: GenerateOptions,
        parse: Callable[[dict[str, Any]], Chunk],
    ) -> Generation:
        cancel, should_stop = opts.cancel, opts.should_stop
        started = time.perf_counter()
        stream = self._http.stream(path, body, cancel)
        if stream is None:
            return Generation("", 0, len(prompt), 0, "cancelled", _ms(started), 0.0)
        text = ""
        pieces = 0
        counted: int | None = None
        prompt_tokens = len(prompt)
        evaluated: int | None = None
        first_at: float | None = None
        stop_reason = "eos"
        ended_by_server = False
        try:
            for event in stream.events():
                chunk = parse(event)
                if chunk.error:
                    raise RemoteEngineError(
                        f"model server {self.url} failed while generating: "
                        f"{self._http.redact(chunk.error)}"
                    )
                # The server's own counts (usage / timings) beat counting streamed pieces.
                if chunk.generated is not None:
                    counted = chunk.generated
                if chunk.prompt_tokens is not None:
                    prompt_tokens = chunk.prompt_tokens
                if chunk.evaluated is not None:
                    evaluated = chunk.evaluated
                if chunk.text:
                    if first_at is None:
                        first_at = time.perf_counter()
                    pieces += 1
                    text += chunk.text
                if cancel.is_set():
                    stop_reason = "cancelled"
                    break
                if chunk.text and should_stop(text):
                    stop_reason = "stopped"
                    break
                if chunk.finish:
                    stop_reason = chunk.finish
                    ended_by_server = True
                if chunk.final:
                    break
            else:
                # The end of the answer without a finish reason or [DONE]: cut off.
                if not (ended_by_server or stream.complete or cancel.is_set()):
                    raise http.client.IncompleteRead(b"")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if not cancel.is_set():
                message = describe_oserror(exc, self.url, self._http.timeout_s, connecting=False)
                raise RemoteEngineError(f"{message} (while streaming)") from None
            stop_reason = "cancelled"
        finally:
            # Closing the connection is what stops the server generating.
            stream.close()
        if cancel.is_set() and stop_reason != "stopped":
            stop_reason = "cancelled"
        ended = time.perf_counter()
        first = first_at or ended
        return Generation(
            text=text,
            tokens_generated=counted if counted is not None else pieces,
            prompt_tokens=prompt_tokens,
            prompt_tokens_evaluated=evaluated if evaluated is not None else prompt_tokens,
            stop_reason=stop_reason,
            prompt_ms=(first - started) * 1000,
            generation_ms=(ended - first) * 1000,
        )

    # -- doctor --------------------------------------------------------------------------

    def doctor(self, measure_speed: bool = True) -> dict[str, Any]:
        """The endpoint, its model, a measured round trip and one short generation."""
        key_env = self._settings.engine.api_key_env
        report: dict[str, Any] = {
            "ok": False,
            "kind": self.kind,
            "url": self.url,
            "api_key": f"set (${key_env})" if os.environ.get(key_env) else f"not set (${key_env})",
            "timeout_s": self._http.timeout_s,
            "retries": self._http.retries,
        }
        try:
            self._recheck = self._served is not None
            served = self._served_now()
            report.update(
                model=served.model_id,
                served_models=", ".join(served.models),
                tokenizer=served.tokenizer.name,
                fim=served.fim.available,
                n_ctx=served.n_ctx,
            )
            trips = []
            for _ in range(3):
                started = time.perf_counter()
                with self._health():
                    self._http.call("GET", "/v1/models" if served.models else "/health")
                trips.append(_ms(started))
            report["round_trip_ms"] = round(min(trips), 1)
            if not measure_speed:
                report["ok"] = True
                return report
            tokens = self.tokenize("def add(a, b):\n    return")
            never = threading.Event()
            gen = self.generate(tokens, max_tokens=8, should_stop=lambda _t: False, cancel=never)
            report["first_token_ms"] = round(gen.prompt_ms, 1)
            report["generated_tokens"] = gen.tokens_generated
            if gen.tokens_generated > 1 and gen.generation_ms > 0:
                per_s = (gen.tokens_generated - 1) / (gen.generation_ms / 1000)
                report["generation_tokens_per_s"] = round(per_s, 1)
            report["ok"] = True
        except RemoteEngineError as exc:
            report["error"] = self._http.redact(str(exc))
        return report

    def close(self) -> None:
        self._http.close()
        served, self._served = self._served, None
        if served is not None:
            served.tokenizer.close()


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def _display_name(model_id: str | None) -> str | None:
    if not model_id:
        return None
    name = model_id.rstrip("/").rsplit("/", 1)[-1]
    return name[: -len(".gguf")] if name.lower().endswith(".gguf") else name


def _same_model(wanted: str, served: str) -> bool:
    if wanted == served:
        return True
    return (_display_name(wanted) or "").lower() == (_display_name(served) or "").lower()


def create_remote_engine(settings: Settings) -> RemoteEngine:
    """The engine for `engine.kind` llama-server or openai (never blocks on a down server)."""
    return RemoteEngine(settings)
