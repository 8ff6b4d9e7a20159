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
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import Settings
from ..templates import FAMILIES, FimFamily
from .base import FimTokens, Generation, ModelInfo, StopCheck

log = logging.getLogger(__name__)

DEFAULT_URLS = {"llama-server": "http://127.0.0.1:8080", "openai": "http://127.0.0.1:8000"}

# Connecting is fast on any network a team would use; a long connect wait means the host is
# unreachable, and the editor must not wait the whole read timeout to learn it.
CONNECT_TIMEOUT_CAP_S = 5.0
# After a request failed for want of a server, later calls fail at once for this long, so a
# burst of keystrokes does not each wait a timeout; the first call after it tries again.
FAIL_FAST_S = 2.0
# Exponential backoff between retries (before the first byte only): 0.2 s, 0.4 s, ...
BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 2.0
# How often the cancel watcher looks at the cancel flag while a stream is open.
CANCEL_POLL_S = 0.05
# Texts (lines, mostly) whose tokens are remembered: the prefix window is re-counted line by
# line on every keystroke, and each count would otherwise be a round trip.
TOKEN_MEMORY_SIZE = 16_384
RETRY_STATUSES = frozenset({502, 503, 504})


class RemoteEngineError(RuntimeError):
    """The model server could not answer; the message says what to check."""


class _HttpStatusError(RemoteEngineError):
    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


# -- HTTP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    base_path: str  # "" or "/prefix", without a trailing "/v1"

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteEngineError(f"engine.url {url!r} is not an http:// or https:// URL")
        base = parts.path.rstrip("/")
        # OpenAI clients are usually given ".../v1"; the endpoints below add it themselves.
        if base.endswith("/v1"):
            base = base[: -len("/v1")]
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, base)

    @property
    def display(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.base_path}"


def _describe_oserror(exc: BaseException, where: str, timeout: float, connecting: bool) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = getattr(exc, "verify_message", "") or exc.reason or "certificate not trusted"
        return (
            f"TLS: the certificate of {where} is not trusted ({reason}); install its CA "
            "certificate or point SSL_CERT_FILE at it"
        )
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        return (
            f"TLS handshake with {where} failed ({reason}); check that the server really "
            "speaks https (or use an http:// URL)"
        )
    if isinstance(exc, ConnectionRefusedError):
        return f"model server {where} refused the connection: is it running? (engine.url)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host of {where} ({exc.strerror}): check engine.url"
    if isinstance(exc, TimeoutError):
        if connecting:
            return f"model server {where} could not be reached within {timeout:g}s: is the host up?"
        return (
            f"model server {where} did not answer within {timeout:g}s: it may be overloaded or "
            "stuck; raise engine.timeoutS if it is only slow"
        )
    if isinstance(
        exc,
        (
            http.client.RemoteDisconnected,
            http.client.IncompleteRead,
            ConnectionResetError,
            BrokenPipeError,
        ),
    ):
        return f"model server {where} closed the connection: it may have crashed or restarted"
    if isinstance(exc, http.client.HTTPException):
        return f"model server {where} sent a broken HTTP answer ({type(exc).__name__})"
    return f"cannot reach model server {where}: {exc}"


def _retryable(exc: BaseException) -> bool:
    """Failures a second try can fix: nothing listening yet, a dropped connection."""
    if isinstance(exc, ssl.SSLError):
        return False
    return isinstance(
        exc,
        (
            ConnectionRefusedError,
            ConnectionResetError,
            ConnectionAbortedError,
            BrokenPipeError,
            http.client.RemoteDisconnected,
        ),
    )


class _Http:
    """JSON calls on a kept-alive connection per thread, and streamed calls on their own."""

    def __init__(
        self, endpoint: Endpoint, api_key_env: str, timeout_s: float, retries: int
    ) -> None:
        self.endpoint = endpoint
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.connect_timeout_s = min(timeout_s, CONNECT_TIMEOUT_CAP_S)
        self.retries = retries
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()
        self._down_until = 0.0
        self._down_message = ""
        self._ssl = ssl.create_default_context() if endpoint.scheme == "https" else None

    # -- plumbing ------------------------------------------------------------------------

    def _api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def redact(self, text: str) -> str:
        key = self._api_key()
        return text.replace(key, "***") if key else text

    def _headers(self, body: bytes | None, stream: bool = False) -> dict[str, str]:
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _connect(self) -> http.client.HTTPConnection:
        ep = self.endpoint
        conn: http.client.HTTPConnection
        if self._ssl is not None:
            conn = http.client.HTTPSConnection(
                ep.host, ep.port, timeout=self.connect_timeout_s, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(ep.host, ep.port, timeout=self.connect_timeout_s)
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        assert conn.sock is not None
        conn.sock.settimeout(self.timeout_s)
        with contextlib.suppress(OSError):  # small requests: no Nagle delay
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._open.add(conn)
        return conn

    def _drop(self, conn: http.client.HTTPConnection | None) -> None:
        if conn is None:
            return
        with self._lock:
            self._open.discard(conn)
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # the server sees the client go at once
            except OSError:
                pass
        conn.close()

    def close(self) -> None:
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            self._drop(conn)

    def _check_down(self) -> None:
        if time.monotonic() < self._down_until:
            raise RemoteEngineError(self._down_message)

    def _mark_down(self, message: str) -> None:
        self._down_message = message
        self._down_until = time.monotonic() + FAIL_FAST_S

    def _status_error(
        self, status: int, path: str, raw: bytes, location: str | None = None
    ) -> _HttpStatusError:
        detail = self.redact(_error_detail(raw))
        where = self.endpoint.display + path
        if 300 <= status < 400:
            # http.client never follows redirects, and neither do we: a redirect could carry
            # the Authorization header and the user's code to a host the user never named.
            to = f" to {self.redact(location)[:200]}" if location else ""
            message = (
                f"model server {where} answered with a redirect (HTTP {status}{to}), which is "
                "not followed: the API key and code go only to engine.url. Set engine.url to "
                "the address that answers."
            )
        elif status in (401, 403):
            message = (
                f"model server {where} rejected the request (HTTP {status}): set the API key in "
                f"${self.api_key_env}"
                + ("" if self._api_key() else f" (${self.api_key_env} is not set)")
            )
        elif status == 404:
            message = (
                f"model server {where} has no such endpoint or model (HTTP 404): check "
                f"engine.kind, engine.url and engine.modelName{_detail_suffix(detail)}"
            )
        elif status in (502, 503, 504):
            message = (
                f"model server {where} is unavailable (HTTP {status}), e.g. still loading"
                f"{_detail_suffix(detail)}"
            )
        elif status >= 500:
            message = f"model server {where} failed (HTTP {status}){_detail_suffix(detail)}"
        else:
            message = (
                f"model server {where} refused the request (HTTP {status}){_detail_suffix(detail)}"
            )
        return _HttpStatusError(message, status, detail)

    def _backoff(self, attempt: int, cancel: threading.Event | None) -> bool:
        """Sleep before retry `attempt` (1-based); False when cancelled meanwhile."""
        delay = min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S)
        if cancel is not None:
            return not cancel.wait(delay)
        time.sleep(delay)
        return True

    # -- calls ---------------------------------------------------------------------------

    def call(self, method: str, path: str, payload: Any = None) -> Any:
        """One JSON request with retries; returns the decoded answer of a 2xx."""
        self._check_down()
        body = None if payload is None else json.dumps(payload).encode()
        full = self.endpoint.base_path + path
        attempt = 0
        while True:
            conn = getattr(self._local, "conn", None)
            if conn is not None and conn.sock is None:
                conn = None  # closed meanwhile (close(), or the server said so)
            reused = conn is not None
            connecting = False
            try:
                if conn is None:
                    connecting = True
                    conn = self._connect()
                    self._local.conn = conn
                    connecting = False
                conn.request(method, full, body=body, headers=self._headers(body))
                response = conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop(conn)
                self._local.conn = None
                if reused and not isinstance(exc, TimeoutError):
                    continue  # a kept-alive connection the server had closed: try a fresh one
                attempt += 1
                if _retryable(exc) and attempt <= self.retries:
                    log.debug(
                        "%s %s failed (%s); retry %d", method, path, type(exc).__name__, attempt
                    )
                    self._backoff(attempt, None)
                    continue
                message = _describe_oserror(
                    exc, self.endpoint.display, self._timeout_for(connecting), connecting
                )
                self._mark_down(message)
                raise RemoteEngineError(message) from None
            if response.will_close:
                self._drop(conn)
                self._local.conn = None
            if 200 <= response.status < 300:
                try:
                    return json.loads(raw or b"null")
                except ValueError:
                    raise RemoteEngineError(
                        f"model server {self.endpoint.display}{path} answered with something that "
                        "is not JSON: is engine.url the model server?"
                    ) from None
            if response.status in RETRY_STATUSES and attempt < self.retries:
                attempt += 1
                self._backoff(attempt, None)
                continue
            raise self._status_error(response.status, path, raw, response.getheader("Location"))

    def _timeout_for(self, connecting: bool) -> float:
        return self.connect_timeout_s if connecting else self.timeout_s

    def stream(self, path: str, payload: Any, cancel: threading.Event) -> _Stream | None:
        """Open a streamed POST; retries only until the answer starts. None when cancelled."""
        self._check_down()
        body = json.dumps(payload).encode()
        full = self.endpoint.base_path + path
        attempt = 0
        while True:
            if cancel.is_set():
                return None
            stream = _Stream(self, cancel)
            connecting = True
            try:
                conn = self._connect()
                connecting = False
                stream.attach(conn)
                conn.request("POST", full, body=body, headers=self._headers(body, stream=True))
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                stream.close()
                if cancel.is_set():
                    return None
                attempt += 1
                if _retryable(exc) and attempt <= self.retries:
                    log.debug("POST %s failed (%s); retry %d", path, type(exc).__name__, attempt)
                    if not self._backoff(attempt, cancel):
                        return None
                    continue
                message = _describe_oserror(
                    exc, self.endpoint.display, self._timeout_for(connecting), connecting
                )
                self._mark_down(message)
                raise RemoteEngineError(message) from None
            if 200 <= response.status < 300:
                stream.response = response
                return stream
            try:
                raw = response.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            stream.close()
            if response.status in RETRY_STATUSES and attempt < self.retries:
                attempt += 1
                if not self._backoff(attempt, cancel):
                    return None
                continue
            raise self._status_error(response.status, path, raw, response.getheader("Location"))


def _error_detail(raw: bytes) -> str:
    """The server's own words about an error, short."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or err
        if isinstance(err, list):
            err = "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in err)
        if err is not None:
            return str(err)[:200]
    return text[:200]


def _detail_suffix(detail: str) -> str:
    return f": {detail}" if detail else ""


class _Stream:
    """One streamed answer: server-sent events, closed on stop or cancel."""

    def __init__(self, http_: _Http, cancel: threading.Event) -> None:
        self._http = http_
        self._cancel = cancel
        self._conn: http.client.HTTPConnection | None = None
        self.response: http.client.HTTPResponse | None = None
        self._done = threading.Event()
        self._closed = False
        self._watcher: threading.Thread | None = None
        self.complete = False  # the server ended the answer itself ([DONE])

    def attach(self, conn: http.client.HTTPConnection) -> None:
        self._conn = conn
        # A request blocked on the socket cannot look at the cancel flag; the watcher closes
        # the socket under it, which also tells the server to stop generating.
        self._watcher = threading.Thread(target=self._watch, name="remote-cancel", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            if self._cancel.wait(CANCEL_POLL_S):
                self._interrupt()
                return

    def _interrupt(self) -> None:
        """Wake the reader (it then sees EOF and closes); closing is left to its thread."""
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # the server also sees the client go
            except OSError:
                pass

    def close(self) -> None:
        self._done.set()
        if not self._closed:
            self._closed = True
            self._http._drop(self._conn)

    def events(self) -> Iterator[dict[str, Any]]:
        """Decoded `data:` payloads until `[DONE]` or the end of the answer."""
        response = self.response
        assert response is not None
        if (response.getheader("Content-Type") or "").startswith("application/json"):
            # A server that ignored stream=true: the whole answer at once.
            data = json.loads(response.read() or b"null")
            self.complete = True
            if isinstance(data, dict):
                yield data
            return
        data_lines: list[str] = []
        while True:
            raw = response.readline()
            if not raw:
                break
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith("data:"):
                data_lines.append(line[5:].lstrip(" "))
                continue
            if line or not data_lines:
                continue  # comments (": ping"), "event:" lines, blank keep-alives
            payload, data_lines = "\n".join(data_lines), []
            if payload.strip() == "[DONE]":
                self.complete = True
                return
            event = _decode_event(payload)
            if event is not None:
                yield event
        if data_lines:
            payload = "\n".join(data_lines)
            self.complete = payload.strip() == "[DONE]"
            if not self.complete:
                event = _decode_event(payload)
                if event is not None:
                    yield event


def _decode_event(payload: str) -> dict[str, Any] | None:
    try:
        data = json.loads(payload)
    except ValueError:
        log.debug("ignoring a stream event that is not JSON: %.80s", payload)
        return None
    return data if isinstance(data, dict) else None


# -- special tokens as text --------------------------------------------------------------


def _family_texts(family: FimFamily) -> tuple[str, ...]:
    return (
        *family.prefix,
        *family.suffix,
        *family.middle,
        *family.repo_name,
        *family.file_sep,
        *family.stops,
    )


# Every marker a template may ask about, and anything shaped like a special token: a server
# that always parses special tokens must not turn code that merely contains one into the
# real token (tokenize(special=False)).
_MARKERS = tuple(sorted({t for f in FAMILIES for t in _family_texts(f)} | {"<s>", "</s>"}))
_SPECIAL_SHAPE = re.compile(
    r"<\|[^\s|<>]{1,48}\|>|<｜[^\s｜]{1,48}｜>|<[a-z_]{1,24}>|\[[A-Z_]{3,16}\]"
)


def _looks_special(text: str) -> bool:
    return text in _MARKERS or _SPECIAL_SHAPE.fullmatch(text) is not None


def _split_special_text(text: str) -> list[str]:
    """Cut `text` inside every special-token-looking marker so no part parses as one."""
    cuts: set[int] = set()
    for marker in _MARKERS:
        start = text.find(marker)
        while start >= 0:
            cuts.add(start + 1)
            start = text.find(marker, start + 1)
    for match in _SPECIAL_SHAPE.finditer(text):
        cuts.add(match.start() + 1)
    if not cuts:
        return [text]
    parts, previous = [], 0
    for cut in sorted(cuts):
        parts.append(text[previous:cut])
        previous = cut
    parts.append(text[previous:])
    return parts


def family_for_name(name: str) -> FimFamily | None:
    """The FIM family a template setting or a served model's name points to."""
    lowered = name.strip().lower()
    if not lowered:
        return None
    for family in FAMILIES:
        if lowered == family.name or lowered in family.aliases:
            return family
    for family in FAMILIES:
        if any(word in lowered for word in (*family.names, family.name)):
            return family
    return None


# -- tokenizers --------------------------------------------------------------------------


class _Tokenizer:
    name = "tokenizer"
    # True when tokenize(special=False) is honoured; else special text is split apart first.
    native_special = False
    bos: int | None = None  # the BOS the server puts before a text prompt, if any
    eos: int | None = None
    metadata: dict[str, str] = {}

    def tokenize(self, text: str, special: bool) -> list[int]:
        raise NotImplementedError

    def detokenize(self, tokens: list[int]) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class _TokenizeApi:
    name: str
    tokenize_path: str
    # (text, model, add_special) -> request body
    tokenize_body: Callable[[str, str | None, bool], dict[str, Any]]
    detokenize_path: str
    detokenize_body: Callable[[list[int], str | None], dict[str, Any]]
    text_key: str


_TOKENIZE_APIS = (
    _TokenizeApi(
        "llama-server /tokenize",
        "/tokenize",
        lambda text, model, add: {"content": text, "add_special": add},
        "/detokenize",
        lambda tokens, model: {"tokens": tokens},
        "content",
    ),
    _TokenizeApi(
        "vLLM /tokenize",
        "/tokenize",
        lambda text, model, add: {"model": model, "prompt": text, "add_special_tokens": add},
        "/detokenize",
        lambda tokens, model: {"model": model, "tokens": tokens},
        "prompt",
    ),
    _TokenizeApi(
        # Always adds BOS (when the model has one) and always parses special tokens.
        "llama-cpp-python /extras/tokenize",
        "/extras/tokenize",
        lambda text, model, add: {"input": text},
        "/extras/detokenize",
        lambda tokens, model: {"tokens": tokens},
        "text",
    ),
)
_PROBE_TEXT = "def tokenize_probe(x):\n    return x  # é"


class _ServerTokenizer(_Tokenizer):
    """The server's own tokenizer (it always parses special tokens)."""

    def __init__(
        self, http_: _Http, api: _TokenizeApi, model: str | None, lead: list[int], bos: int | None
    ) -> None:
        self._http = http_
        self._api = api
        self._model = model
        self._lead = lead  # what the server puts before every text even when asked not to
        self.api_name = api.name
        self.bos = bos
        self.name = f"server ({api.name})"

    @classmethod
    def probe(
        cls, http_: _Http, model: str | None, kinds: tuple[str, ...]
    ) -> _ServerTokenizer | None:
        for api in _TOKENIZE_APIS:
            if not api.name.startswith(kinds):
                continue

            def ask(text: str, add: bool, api: _TokenizeApi = api) -> list[int] | None:
                body = api.tokenize_body(text, model, add)
                return _tokens_of(http_.call("POST", api.tokenize_path, body))

            try:
                tokens = ask(_PROBE_TEXT, False)
                lead = ask("", False) or []
                with_special = ask("", True) or []
            except _HttpStatusError as exc:
                # 404/405: no such endpoint; 400/422: another server's request shape.
                if exc.status in (401, 403) or (exc.status >= 500 and exc.status != 501):
                    raise
                continue
            if tokens is None or len(tokens) <= len(lead):
                continue
            bos = with_special[0] if len(with_special) == 1 else None
            return cls(http_, api, model, lead, bos)
        return None

    def tokenize(self, text: str, special: bool) -> list[int]:
        body = self._api.tokenize_body(text, self._model, False)
        tokens = _tokens_of(self._http.call("POST", self._api.tokenize_path, body))
        if tokens is None:
            raise RemoteEngineError(
                f"model server {self._http.endpoint.display} gave no tokens for a text"
            )
        if self._lead and tokens[: len(self._lead)] == self._lead:
            tokens = tokens[len(self._lead) :]
        return tokens

    def detokenize(self, tokens: list[int]) -> str:
        body = self._api.detokenize_body(tokens, self._model)
        data = self._http.call("POST", self._api.detokenize_path, body)
        text = data.get(self._api.text_key) if isinstance(data, dict) else None
        if not isinstance(text, str):
            raise RemoteEngineError(
                f"model server {self._http.endpoint.display} gave no text for tokens"
            )
        return text


def _tokens_of(data: Any) -> list[int] | None:
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
        return None
    out = []
    for item in data["tokens"]:
        if isinstance(item, dict):  # llama-server with_pieces
            item = item.get("id")
        if not isinstance(item, int):
            return None
        out.append(item)
    return out


class _VocabTokenizer(_Tokenizer):
    """A local GGUF's vocabulary only (llama.cpp `vocab_only`): exact, no round trips."""

    native_special = True

    def __init__(self, path: Path) -> None:
        import llama_cpp

        self.name = f"local vocabulary ({path.name})"
        self._llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        self.metadata = {str(k): str(v) for k, v in (self._llm.metadata or {}).items()}
        bos, eos = self._llm.token_bos(), self._llm.token_eos()
        adds_bos = self.metadata.get("tokenizer.ggml.add_bos_token", "false").lower() == "true"
        self.bos = bos if adds_bos and bos >= 0 else None
        self.eos = eos if eos >= 0 else None

    def tokenize(self, text: str, special: bool) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def detokenize(self, tokens: list[int]) -> str:
        return self._llm.detokenize(tokens, special=True).decode("utf-8", errors="replace")

    def close(self) -> None:
        self._llm.close()


class _TextTokenizer(_Tokenizer):
    """Approximate tokens for a server that cannot tokenize (Ollama): word-sized pieces.

    Budgets then count pieces instead of the model's tokens (close for code: BPE splits
    about as often), and the prompt goes out as text, which is all the server needs. Only
    the chosen family's markers are special, so template detection finds that family.
    """

    native_special = True
    _PIECE = re.compile(r" ?[A-Za-z_]+| ?\d{1,3}| ?[^\sA-Za-z_\d]+|\s*\n|\s+")

    def __init__(self, family: FimFamily) -> None:
        self.name = f"approximate, {family.name} markers (the server has no tokenizer endpoint)"
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self._pieces: list[str] = []
        self._specials = tuple(dict.fromkeys(_family_texts(family)))
        for text in self._specials:
            self._id(text)
        alternatives = "|".join(re.escape(s) for s in sorted(self._specials, key=len, reverse=True))
        self._special_re = re.compile(f"({alternatives})")

    def _id(self, piece: str) -> int:
        with self._lock:
            found = self._ids.get(piece)
            if found is None:
                found = self._ids[piece] = len(self._pieces)
                self._pieces.append(piece)
            return found

    def tokenize(self, text: str, special: bool) -> list[int]:
        chunks = self._special_re.split(text) if special else [text]
        tokens: list[int] = []
        for chunk in chunks:
            if not chunk:
                continue
            if special and chunk in self._specials:
                tokens.append(self._ids[chunk])
                continue
            tokens += [self._id(piece) for piece in self._PIECE.findall(chunk)]
        return tokens

    def detokenize(self, tokens: list[int]) -> str:
        return "".join(self._pieces[t] for t in tokens if 0 <= t < len(self._pieces))


class _TokenMemory:
    """Tokenize results both ways: a text's tokens, and a token run's text.

    Prompts are built from tokenize() results and special tokens, so spelling a prompt
    back out needs no round trip (and keeps special tokens, which llama-cpp-python's
    /extras/detokenize would drop).
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._by_text: OrderedDict[tuple[str, bool], tuple[int, ...]] = OrderedDict()
        self._by_first: dict[int, dict[tuple[int, ...], str]] = {}
        # Single special tokens seen (template probes); never forgotten, there are few.
        self.specials: dict[int, str] = {}
        self._lock = threading.Lock()

    def tokens(self, text: str, special: bool) -> tuple[int, ...] | None:
        with self._lock:
            found = self._by_text.get((text, special))
            if found is not None:
                self._by_text.move_to_end((text, special))
            return found

    def remember(self, text: str, special: bool, tokens: tuple[int, ...]) -> None:
        with self._lock:
            key = (text, special)
            self._by_text[key] = tokens
            self._by_text.move_to_end(key)
            if tokens:
                self._by_first.setdefault(tokens[0], {})[tokens] = text
            if special and len(tokens) == 1 and _looks_special(text):
                self.specials[tokens[0]] = text
            while len(self._by_text) > self._size:
                (old_text, _), old = self._by_text.popitem(last=False)
                bucket = self._by_first.get(old[0]) if old else None
                if bucket is not None and bucket.get(old) == old_text:
                    del bucket[old]
                    if not bucket:
                        del self._by_first[old[0]]

    def clear(self) -> None:
        with self._lock:
            self._by_text.clear()
            self._by_first.clear()
            self.specials.clear()

    def text_of(self, token: int) -> str | None:
        with self._lock:
            found = self.specials.get(token)
            if found is None:
                found = self._by_first.get(token, {}).get((token,))
            return found

    def spell(self, tokens: list[int]) -> list[str | list[int]]:
        """`tokens` as remembered texts; stretches never seen are left as token lists."""
        run = tuple(tokens)
        out: list[str | list[int]] = []
        unknown: list[int] = []
        i = 0
        with self._lock:
            while i < len(run):
                token = run[i]
                best: tuple[int, ...] | None = None
                text = ""
                bucket = self._by_first.get(token)
                if bucket:
                    rest = run[i:]
                    if rest in bucket:
                        best = rest  # the common case: one whole tokenize() result
                    else:  # else the longest remembered run starting here
                        for seq in bucket:
                            longer = best is None or len(seq) > len(best)
                            if longer and run[i : i + len(seq)] == seq:
                                best = seq
                    if best is not None:
                        text = bucket[best]
                if best is None and token in self.specials:
                    best, text = (token,), self.specials[token]
                if best is None:
                    unknown.append(token)
                    i += 1
                    continue
                if unknown:
                    out.append(unknown)
                    unknown = []
                out.append(text)
                i += len(best)
        if unknown:
            out.append(unknown)
        return out


# -- the engine --------------------------------------------------------------------------


@dataclass
class _Served:
    """What the probe learned about the server and its model."""

    model_id: str | None
    models: list[str]
    tokenizer: _Tokenizer
    fim: FimTokens
    n_ctx: int
    n_ctx_from_server: bool
    n_ctx_train: int
    chat_template: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    server_api: str = ""  # the tokenize API that answered: tells the server's make

    @property
    def llama_cpp(self) -> bool:
        """llama-server or llama-cpp-python's server (they take llama.cpp's sampling)."""
        return self.server_api.startswith("llama")

    @property
    def vllm(self) -> bool:
        return self.server_api.startswith("vLLM")


@dataclass
class _InfillLayout:
    prefix: str
    suffix: str
    middle: str
    extra: list[dict[str, str]]


class RemoteEngine:
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
        self._http = _Http(self._endpoint, engine.api_key_env, engine.timeout_s, engine.retries)
        self._served: _Served | None = None
        self._info: ModelInfo | None = None
        self._recheck = False
        self._probe_lock = threading.Lock()
        self._memory = _TokenMemory(TOKEN_MEMORY_SIZE)
        self._infill_supported = True
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
        info = self._info
        if info is not None:
            return info
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

    def _make_info(self, served: _Served) -> ModelInfo:
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

    def _served_now(self) -> _Served:
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
                self._infill_supported = True
                old, self._served = self._served, served
                self._info = self._make_info(served)
                if old is not None:
                    if old.tokenizer is not served.tokenizer:
                        old.tokenizer.close()
                    _forget_templates(self)  # another model: its special tokens differ
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
        except _HttpStatusError as exc:
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

    def _probe(self) -> _Served:
        model_id, models, meta = self._list_models()
        props: dict[str, Any] = {}
        if self.kind == "llama-server":
            try:
                answer = self._http.call("GET", "/props")
                props = answer if isinstance(answer, dict) else {}
            except _HttpStatusError as exc:
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
        return _Served(
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

    def _pick_tokenizer(self, model_id: str | None) -> tuple[_Tokenizer, str]:
        """The tokenizer to use, and which server API answered the probe ("" for none)."""
        kinds = (
            ("llama-server",)
            if self.kind == "llama-server"
            else ("llama-server", "vLLM", "llama-cpp-python")
        )
        server = _ServerTokenizer.probe(self._http, model_id, kinds)
        api = server.api_name if server is not None else ""
        local_path = self._settings.model.path
        if local_path:
            try:
                vocab: _VocabTokenizer | None = _VocabTokenizer(Path(local_path).expanduser())
            except Exception as exc:  # a bad path must not hide a working server tokenizer
                log.warning("cannot read the vocabulary of %s: %s", local_path, exc)
                vocab = None
            if vocab is not None:
                if server is None:
                    return vocab, api
                if vocab.tokenize(_PROBE_TEXT, False) == server.tokenize(_PROBE_TEXT, False):
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
        return _TextTokenizer(family), api

    def _fim_tokens(self, tokenizer: _Tokenizer) -> FimTokens:
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

    def _tokenize_with(self, tokenizer: _Tokenizer, text: str, special: bool) -> list[int]:
        known = self._memory.tokens(text, special)
        if known is not None:
            return list(known)
        if special or tokenizer.native_special:
            tokens = tokenizer.tokenize(text, special)
        else:
            tokens = []
            for part in _split_special_text(text):
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

    def generate(
        self,
        prompt: list[int],
        *,
        max_tokens: int,
        should_stop: StopCheck,
        cancel: threading.Event,
        temperature: float = 0.0,
        stop_tokens: frozenset[int] = frozenset(),
    ) -> Generation:
        """Stream a completion; the HTTP stream is closed on `should_stop` and on `cancel`."""
        if cancel.is_set():
            return Generation("", 0, len(prompt), 0, "cancelled", 0.0, 0.0)
        served = self._served_now()
        if served.n_ctx_from_server:
            room = served.n_ctx - len(prompt) - 1
            if room <= 0:
                raise RemoteEngineError(
                    f"prompt of {len(prompt)} tokens does not fit the server's context "
                    f"of {served.n_ctx}"
                )
            max_tokens = min(max_tokens, room)
        stops = sorted(stop_tokens)
        stop_texts = [text for text in map(self._memory.text_of, stops) if text]
        with self._health():
            if self.kind == "llama-server":
                return self._generate_llama_server(
                    served, prompt, max_tokens, should_stop, cancel, temperature, stop_texts
                )
            return self._generate_openai(
                served, prompt, max_tokens, should_stop, cancel, temperature, stop_texts, stops
            )

    def _sampling(self, served: _Served, temperature: float) -> dict[str, Any]:
        greedy = temperature == 0
        sampling: dict[str, Any] = {"temperature": temperature, "top_p": 1.0 if greedy else 0.95}
        if served.llama_cpp:
            # The in-process engine's sampling: llama.cpp servers would otherwise add their
            # default repeat penalty (1.1) and min-p. Others get only standard fields.
            sampling.update(top_k=1 if greedy else 40, min_p=0.0, repeat_penalty=1.0)
        return sampling

    def _generate_openai(
        self,
        served: _Served,
        prompt: list[int],
        max_tokens: int,
        should_stop: StopCheck,
        cancel: threading.Event,
        temperature: float,
        stop_texts: list[str],
        stop_ids: list[int],
    ) -> Generation:
        bos = served.tokenizer.bos
        text_tokens = prompt[1:] if (bos is not None and prompt[:1] == [bos]) else prompt
        body: dict[str, Any] = {
            # The server adds its own BOS to a text prompt.
            "prompt": self.detokenize(text_tokens),
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            **self._sampling(served, temperature),
        }
        if served.model_id:
            body["model"] = served.model_id
        if stop_texts:
            body["stop"] = stop_texts
        if stop_ids and served.vllm:
            # vLLM drops special tokens from the text it matches "stop" against.
            body["stop_token_ids"] = stop_ids
        return self._run_stream("/v1/completions", body, prompt, should_stop, cancel, _openai_event)

    def _generate_llama_server(
        self,
        served: _Served,
        prompt: list[int],
        max_tokens: int,
        should_stop: StopCheck,
        cancel: threading.Event,
        temperature: float,
        stop_texts: list[str],
    ) -> Generation:
        common: dict[str, Any] = {
            "n_predict": max_tokens,
            "stream": True,
            "cache_prompt": True,
            "timings_per_token": True,
            **self._sampling(served, temperature),
        }
        if stop_texts:
            common["stop"] = stop_texts
        layout = self._infill_layout(served, prompt) if self._infill_supported else None
        if layout is not None:
            body = {
                "input_prefix": layout.prefix,
                "input_suffix": layout.suffix,
                "input_extra": layout.extra,
                "prompt": layout.middle,
                **common,
            }
            try:
                return self._run_stream("/infill", body, prompt, should_stop, cancel, _llama_event)
            except _HttpStatusError as exc:
                if exc.status not in (404, 501):
                    raise
                log.info("model server %s: no /infill for this model; using /completion", self.url)
                self._infill_supported = False
        # Token ids: exactly the prompt the project built, special tokens included.
        body = {"prompt": list(prompt), **common}
        return self._run_stream("/completion", body, prompt, should_stop, cancel, _llama_event)

    def _infill_layout(self, served: _Served, prompt: list[int]) -> _InfillLayout | None:
        """A Qwen-style PSM prompt split back into /infill's fields; None for any other."""
        fim = served.fim
        if not fim.available:
            return None
        bos = served.tokenizer.bos
        if bos is not None and prompt[:1] == [bos]:
            prompt = prompt[1:]  # llama-server adds its own
        ids = (fim.prefix, fim.suffix, fim.middle, fim.repo_name, fim.file_sep)
        markers = {t for t in ids if t is not None}
        segments: list[tuple[int | None, list[int]]] = [(None, [])]
        for token in prompt:
            if token in markers:
                segments.append((token, []))
            else:
                segments[-1][1].append(token)
        if segments.pop(0)[1]:
            return None
        if [marker for marker, _ in segments[-3:]] != [fim.prefix, fim.suffix, fim.middle]:
            return None
        head = segments[:-3]
        if head and fim.repo_name is not None and head[0][0] == fim.repo_name:
            head = head[1:]
        if any(marker != fim.file_sep for marker, _ in head):
            return None
        if head and not head[-1][1]:
            return None  # StarCoder2's layout names the file inside the prefix
        texts = [self.detokenize(run) for _, run in segments[-3:]]
        extra = []
        # The last file separator introduces the current file; llama-server writes its own.
        for _, run in head[:-1]:
            filename, _, text = self.detokenize(run).partition("\n")
            extra.append({"filename": filename, "text": text})
        return _InfillLayout(prefix=texts[0], suffix=texts[1], middle=texts[2], extra=extra)

    def _run_stream(
        self,
        path: str,
        body: dict[str, Any],
        prompt: list[int],
        should_stop: StopCheck,
        cancel: threading.Event,
        parse: Callable[[dict[str, Any]], _Chunk],
    ) -> Generation:
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
                message = _describe_oserror(exc, self.url, self._http.timeout_s, connecting=False)
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


@dataclass
class _Chunk:
    text: str = ""
    finish: str | None = None
    final: bool = False
    generated: int | None = None
    prompt_tokens: int | None = None
    evaluated: int | None = None
    error: str | None = None


_OPENAI_FINISH = {"stop": "eos", "length": "max_tokens", "eos": "eos"}
_LLAMA_STOP = {"eos": "eos", "word": "eos", "limit": "max_tokens"}


def _openai_event(event: dict[str, Any]) -> _Chunk:
    if "error" in event:
        return _Chunk(error=_error_detail(json.dumps(event).encode()))
    chunk = _Chunk()
    choices = event.get("choices") or []
    if choices and isinstance(choices[0], dict):
        chunk.text = choices[0].get("text") or ""
        reason = choices[0].get("finish_reason")
        if reason:
            chunk.finish = _OPENAI_FINISH.get(str(reason), "eos")
    usage = event.get("usage")
    if isinstance(usage, dict):
        chunk.generated = _int(usage.get("completion_tokens"))
        chunk.prompt_tokens = _int(usage.get("prompt_tokens"))
        details = usage.get("prompt_tokens_details")
        cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else None
        if chunk.prompt_tokens is not None and cached is not None:
            chunk.evaluated = chunk.prompt_tokens - cached
        # Asked for with stream_options, usage comes last, in a chunk of its own.
        chunk.final = not choices
    return chunk


def _llama_event(event: dict[str, Any]) -> _Chunk:
    if "error" in event:
        return _Chunk(error=_error_detail(json.dumps(event).encode()))
    chunk = _Chunk(text=event.get("content") or "")
    timings = event.get("timings")  # every chunk with timings_per_token
    if isinstance(timings, dict):
        chunk.generated = _int(timings.get("predicted_n"))
        chunk.evaluated = _int(timings.get("prompt_n"))  # the rest came from the KV cache
    predicted = _int(event.get("tokens_predicted"))
    if predicted is not None:
        chunk.generated = predicted
    prompt_tokens = _int(event.get("tokens_evaluated"))
    if prompt_tokens:
        chunk.prompt_tokens = prompt_tokens
    if event.get("stop"):
        chunk.finish = _LLAMA_STOP.get(str(event.get("stop_type", "eos")), "eos")
        chunk.final = True
    return chunk


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


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


def _forget_templates(engine: RemoteEngine) -> None:
    """Drop the prompt template prompts.py resolved for the model served before."""
    from .. import prompts

    resolved = getattr(prompts, "_resolved", None)
    if resolved is not None:
        resolved.pop(engine, None)


def create_remote_engine(settings: Settings) -> RemoteEngine:
    """The engine for `engine.kind` llama-server or openai (never blocks on a down server)."""
    return RemoteEngine(settings)
