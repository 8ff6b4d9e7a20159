"""HTTP+SSE to a model server: kept-alive JSON calls, streams closed on cancel, errors that say
what to check.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..base import EngineUnavailable

log = logging.getLogger(__name__)


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
RETRY_STATUSES = frozenset({502, 503, 504})


class RemoteEngineError(EngineUnavailable):
    """The model server could not answer; the message says what to check."""


class HttpStatusError(RemoteEngineError):
    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


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


def describe_oserror(exc: BaseException, where: str, timeout: float, connecting: bool) -> str:
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


class Http:
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
    ) -> HttpStatusError:
        detail = self.redact(error_detail(raw))
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
        return HttpStatusError(message, status, detail)

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
                message = describe_oserror(
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
                message = describe_oserror(
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


def error_detail(raw: bytes) -> str:
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

    def __init__(self, http_: Http, cancel: threading.Event) -> None:
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


@dataclass
class Chunk:
    text: str = ""
    finish: str | None = None
    final: bool = False
    generated: int | None = None
    prompt_tokens: int | None = None
    evaluated: int | None = None
    error: str | None = None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
