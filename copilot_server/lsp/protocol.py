"""JSON-RPC on pygls, hardened: every request gets exactly one answer, at once; bad input is
answered with an error, never with a popup; no frame can exhaust memory.

What pygls 2.1 does and what replaces it here:

- It structures messages inside `json.loads`' object hook and its read loop only logs what
  fails (`io_.run_async`), so a request with bad params, an odd id or a batch got no
  answer at all. `CopilotProtocol.handle_frame` parses, checks the envelope and structures
  each message itself and answers -32700/-32600/-32601/-32602/-32002 as JSON-RPC and LSP
  say (-32002 before `initialize`, -32600 after `shutdown`).
- Its reader allocates whatever `Content-Length` announces (1 TB: MemoryError, exit).
  `FrameParser` drops frames over `MAX_FRAME_BYTES` with one logged error and reads on at
  the next header.
- A client reply that arrives after we stopped waiting (`asyncio.wait_for`) raised
  InvalidStateError, logged a traceback and showed "Error in server: CANCELLED ...".
- Handler errors became "Error in server: ..." popups and tracebacks for plain input
  errors; popups now go through one rate limiter (one per problem per minute).
- `get_message_type` sat behind an unbounded-key `lru_cache` that kept 128 method names
  (10 MB each from a hostile client); method names are length-checked and looked up
  uncached.
- Its document copy (`workspace.update_text_document`) clamped positions in place with
  `str.splitlines` before our handler saw them; the server keeps only its own
  `DocumentStore`, so pygls's copy is not kept at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Generator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, BinaryIO

import cattrs
from lsprotocol import types
from pygls.exceptions import (
    FeatureNotificationError,
    FeatureRequestError,
    JsonRpcException,
    JsonRpcInvalidParams,
)
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    LanguageServerProtocol,
    default_converter,
    lsp_method,
)

log = logging.getLogger(__name__)

# A frame bigger than this is dropped: LSP messages are a document at most, and a 64 MB
# document is far past what we read anyway (documents.MAX_DOCUMENT_CHARS is 2 M chars).
MAX_FRAME_BYTES = 64 * 1024 * 1024
# A header block is one or two short lines; more than this is garbage to skip.
MAX_HEADER_BYTES = 8 * 1024
# The longest LSP method name is under 60 characters; a longer one is not a method we
# have, and must not be kept anywhere (a 10 MB name used to sit in a cache).
MAX_METHOD_CHARS = 256
# One popup per distinct message per this many seconds (the "no flood" bound).
POPUP_INTERVAL_S = 60.0
# Messages and error details sent to the client are cut to this many characters.
MAX_MESSAGE_CHARS = 1000
READ_CHUNK = 64 * 1024

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_NOT_INITIALIZED = -32002

_CONTENT_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*(\d{1,20})", re.IGNORECASE)
_HEADER_START = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)


def _cut(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else f"{text[: limit - 30]}... ({len(text)} chars)"


# -- framing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameError:
    """Bytes that were not a frame, dropped; the message says what and why."""

    message: str


class FrameParser:
    """`Content-Length` framing without I/O: feed bytes, get message bodies in order.

    Garbage between frames, a header without a length and an oversized frame are each
    reported once as a `FrameError` and skipped; reading goes on at the next
    `Content-Length:` header, so one bad frame costs only itself."""

    def __init__(
        self, max_frame: int = MAX_FRAME_BYTES, max_header: int = MAX_HEADER_BYTES
    ) -> None:
        self.max_frame = max_frame
        self.max_header = max_header
        self._buffer = bytearray()
        self._need: int | None = None  # body bytes expected after a complete header
        self._resync = False  # skipping to the next "Content-Length:"

    def feed(self, data: bytes) -> list[bytes | FrameError]:
        self._buffer += data
        out: list[bytes | FrameError] = []
        buffer = self._buffer
        while True:
            if self._need is not None:
                if len(buffer) < self._need:
                    break
                out.append(bytes(buffer[: self._need]))
                del buffer[: self._need]
                self._need = None
                continue
            if self._resync:
                match = _HEADER_START.search(buffer)
                if match is None:
                    del buffer[: max(0, len(buffer) - 32)]  # keep a header cut in two
                    break
                del buffer[: match.start()]
                self._resync = False
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > self.max_header:
                    out.append(FrameError(f"{len(buffer)} bytes without a frame header"))
                    self._resync = True
                    continue
                break
            header = bytes(buffer[:end])
            del buffer[: end + 4]
            lengths = _CONTENT_LENGTH.findall(header)
            if not lengths:
                out.append(FrameError(f"a header without Content-Length: {header[:80]!r}"))
                continue
            length = int(lengths[-1])
            if length > self.max_frame:
                out.append(
                    FrameError(
                        f"a frame of {length} bytes (over the {self.max_frame} byte limit); "
                        "reading on at the next header"
                    )
                )
                self._resync = True
                continue
            self._need = length
        return out


# -- structuring ----------------------------------------------------------------------------


def _strict_int(value: Any, cls: type) -> Any:
    # cattrs' default int() takes True, 1.5 and "7"; a position must be a real integer.
    # Registered for int, this also serves bool (a subclass): a bool must be a bool.
    if cls is bool:
        if type(value) is bool:
            return value
        raise ValueError(f"expected a boolean, got {_cut(repr(value), 40)}")
    if type(value) is int:
        return value if cls is int else cls(value)  # IntEnums
    if type(value) is float and value.is_integer():
        return int(value) if cls is int else cls(int(value))
    raise ValueError(f"expected an integer, got {_cut(repr(value), 40)}")


def _strict_str(value: Any, cls: type) -> Any:
    if isinstance(value, str):
        return value if cls is str else cls(value)  # str enums
    raise ValueError(f"expected a string, got {type(value).__name__}")


def strict_converter() -> cattrs.Converter:
    """pygls's converter, with integers and strings that must be integers and strings."""
    converter = default_converter()
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(str, _strict_str)
    return converter


def describe_structure_error(exc: BaseException) -> str:
    """'expected int @ $.params.position.line'-style summary, short enough for a reply."""
    if isinstance(exc, cattrs.BaseValidationError):
        try:
            return _cut("; ".join(cattrs.transform_error(exc)[:4]), 300)
        except Exception:  # transform_error cannot describe every nesting
            pass
    return _cut(f"{type(exc).__name__}: {exc}", 300)


def _valid_id(value: Any) -> bool:
    # LSP ids are integers or strings; bool is an int subclass in Python but not in JSON.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _non_finite(name: str) -> float:
    # JSON has no NaN or Infinity; Python's parser accepts them. Read them as nan so any
    # typed field holding one fails validation (-32602) instead of overflowing later.
    return math.nan


# -- the protocol ---------------------------------------------------------------------------


class CopilotProtocol(LanguageServerProtocol):
    def __init__(self, server: Any, converter: cattrs.Converter) -> None:
        super().__init__(server, converter)
        self._initialize_seen = False
        self._outgoing: set[Any] = set()  # ids of our requests still awaiting a reply

    # pygls caches these per method name (lru_cache, 128 names of any length); the table
    # lookup is a dict access, no cache needed.
    def get_message_type(self, method: str) -> type[Any] | None:
        return types.METHOD_TO_TYPES.get(method, (None,))[0]

    def get_result_type(self, method: str) -> type[Any] | None:
        return types.METHOD_TO_TYPES.get(method, (None, None))[1]

    # -- reading ---------------------------------------------------------------------------

    def handle_frame(self, body: bytes) -> None:
        """One frame's body: parse, check, structure, dispatch; answer what is wrong."""
        try:
            data = json.loads(body, parse_constant=_non_finite)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, nesting
            self.reply_error(None, PARSE_ERROR, f"Parse error: {_cut(str(exc), 200)}")
            return
        if isinstance(data, list):
            self._reject_batch(data)
            return
        self.handle_object(data)

    def _reject_batch(self, batch: list[Any]) -> None:
        # LSP has no batches (no LSP client sends one, none could read an array reply):
        # each request in it is answered, individually, that it was not run.
        # Notifications in it are dropped; anything that is not a message gets its
        # Invalid Request with id null, as JSON-RPC answers a batch's invalid members.
        if not batch:
            self.reply_error(None, INVALID_REQUEST, "Invalid request: empty batch")
        for item in batch:
            if isinstance(item, dict) and "method" in item and "id" not in item:
                continue
            if isinstance(item, dict) and "method" in item:
                msg_id = item["id"] if _valid_id(item["id"]) else None
                message = "Invalid request: batches are not supported"
            else:
                msg_id, message = None, "Invalid request: not a request"
            self.reply_error(msg_id, INVALID_REQUEST, message)

    def handle_object(self, data: Any) -> None:
        if not isinstance(data, dict):
            self.reply_error(None, INVALID_REQUEST, "Invalid request: not a JSON object")
            return
        has_id = "id" in data
        msg_id = data.get("id")
        reply_id = msg_id if has_id and _valid_id(msg_id) else None
        method = data.get("method")
        if "method" not in data:
            if has_id and ("result" in data or "error" in data):
                self._handle_client_reply(data)
            else:
                log.debug("ignored a message that is neither request, notification nor reply")
            return
        if data.get("jsonrpc") != self.VERSION:
            if has_id:
                self.reply_error(
                    reply_id, INVALID_REQUEST, 'Invalid request: jsonrpc must be "2.0"'
                )
            return
        if has_id and reply_id is None:
            self.reply_error(
                None, INVALID_REQUEST, "Invalid request: id must be an integer or a string"
            )
            return
        if not isinstance(method, str):
            if has_id:
                self.reply_error(
                    msg_id, INVALID_REQUEST, "Invalid request: method must be a string"
                )
            return
        if len(method) > MAX_METHOD_CHARS:
            if has_id:
                self.reply_error(
                    msg_id,
                    METHOD_NOT_FOUND,
                    f"Method not found: {method[:60]}... ({len(method)} chars)",
                )
            return
        if not self._admit(method, msg_id if has_id else None, has_id):
            return
        message_type = self.get_message_type(method) or (
            JsonRPCRequestMessage if has_id else JsonRPCNotification
        )
        try:
            message = self._converter.structure(data, message_type)
        except Exception as exc:
            detail = describe_structure_error(exc)
            if has_id:
                self.reply_error(msg_id, INVALID_PARAMS, f"Invalid params for {method}: {detail}")
            else:
                log.warning("ignored %s with invalid params: %s", method, detail)
            return
        if has_id and method == types.INITIALIZE:
            self._initialize_seen = True
        self.handle_message(message)

    def _admit(self, method: str, msg_id: Any, is_request: bool) -> bool:
        """The LSP lifecycle: before `initialize` only it (and `exit`) may come; after
        `shutdown` only `exit`. Other requests get their error, notifications are dropped."""
        if method == types.EXIT:
            return True
        if not self._initialize_seen and method != types.INITIALIZE:
            if is_request:
                self.reply_error(
                    msg_id, SERVER_NOT_INITIALIZED, "Server not initialized: send initialize first"
                )
            else:
                log.debug("dropped %s before initialize", method)
            return False
        if self._shutdown:
            if is_request:
                self.reply_error(
                    msg_id, INVALID_REQUEST, "Invalid request: the server is shutting down"
                )
            return False
        if is_request:
            if self._has_handler(method):
                return True
            self.reply_error(msg_id, METHOD_NOT_FOUND, f"Method not found: {method}")
            return False
        if method == types.CANCEL_REQUEST or self._has_handler(method):
            return True
        # `$/` notifications may be ignored (spec); so is any other we do not handle.
        log.debug("ignored notification %s", method)
        return False

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Callable[[Future[Any]], None],
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        # pygls files the future of every async or generator handler under its id and
        # removes it only for a request's answer: each didOpen/didChange/didClose (a
        # generator) and each async command's inner handler stayed, ~1 KB per keystroke.
        def done(future: Future[Any]) -> None:
            self._forget(msg_id, future)
            callback(future)

        super()._execute_handler(msg_id, handler, done, args, kwargs)

    def _forget(self, msg_id: Any, future: Any) -> None:
        if self._request_futures.get(msg_id) is future:
            del self._request_futures[msg_id]

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """pygls's shutdown, iterating over a copy: cancelling a future runs the callback
        that removes its entry (`_forget`)."""
        if (handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield handler, args, None
        current = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current and not future.done():
                future.cancel()
        self._shutdown = True
        return None

    def _has_handler(self, method: str) -> bool:
        return method in self.fm.builtin_features or method in self.fm.features

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        # Cancelling a request that already finished is normal (the answer crossed). The
        # id's type is not checked when structuring (lsprotocol passes `int | str` through).
        if not _valid_id(msg_id):
            log.debug("ignored $/cancelRequest with id %s", _cut(repr(msg_id), 60))
            return
        future = self._request_futures.pop(msg_id, None)
        if future is not None and not future.done():
            future.cancel()

    # -- replies from the client ----------------------------------------------------------

    def send_request(
        self,
        method: str,
        params: Any | None = None,
        callback: Callable[[Any], None] | None = None,
        msg_id: Any | None = None,
    ) -> Future[Any]:
        msg_id = msg_id if msg_id is not None else str(uuid.uuid4())
        self._outgoing.add(msg_id)
        future = super().send_request(method, params, callback, msg_id)

        def finished(done: Future[Any]) -> None:
            # A request we stopped waiting for (wait_for timed out) would otherwise keep its
            # entry until a reply that may never come.
            self._outgoing.discard(msg_id)
            self._forget(msg_id, done)
            self._result_types.pop(msg_id, None)

        future.add_done_callback(finished)
        return future

    def _handle_client_reply(self, data: dict[str, Any]) -> None:
        msg_id = data.get("id")
        future = self._request_futures.get(msg_id) if _valid_id(msg_id) else None
        if future is None or msg_id not in self._outgoing or future.done():
            # Late (we stopped waiting), unknown, or an id of the client's own requests.
            log.debug("ignored a reply to request %s, which is not awaited", _cut(repr(msg_id), 60))
            return
        error = data.get("error")
        if error is not None:
            try:
                response_error = self._converter.structure(error, types.ResponseError)
            except Exception as exc:
                response_error = types.ResponseError(
                    code=INTERNAL_ERROR,
                    message=f"malformed error reply: {describe_structure_error(exc)}",
                )
            future.set_exception(JsonRpcException.from_error(response_error))
            return
        result_type = self._result_types.get(msg_id) or JsonRPCResponseMessage
        try:
            result = self._converter.structure(data, result_type).result
        except Exception as exc:
            detail = describe_structure_error(exc)
            log.warning("malformed reply to request %s: %s", _cut(repr(msg_id), 60), detail)
            future.set_exception(JsonRpcInvalidParams(f"malformed reply: {detail}"))
            return
        future.set_result(result)

    # -- answers ----------------------------------------------------------------------------

    def reply_error(self, msg_id: Any, code: int, message: str) -> None:
        log.debug("answering %s with %d: %s", _cut(repr(msg_id), 60), code, message)
        if msg_id is None:
            # JSON-RPC: "id": null when the request's id could not be read (pygls's
            # message class would leave the member out).
            error = {"code": code, "message": _cut(message)}
            self._send_data({"jsonrpc": self.VERSION, "id": None, "error": error})
            return
        self._send_response(msg_id, error=types.ResponseError(code=code, message=_cut(message)))

    def _send_handler_result(self, future: Future[Any], *, msg_id: Any) -> None:
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            self.reply_error(msg_id, -32800, f"Request {_cut(repr(msg_id), 60)} was cancelled")
            return
        exc = future.exception()
        if exc is None:
            self._send_response(msg_id, result=future.result())
            return
        if isinstance(exc, JsonRpcException):
            # Bad params, a position past the end while typing, a cancelled request:
            # answered as such; no traceback, no popup.
            log.debug("request %s: %s", _cut(repr(msg_id), 60), exc.message)
            error = exc.to_response_error()
            error.message = _cut(error.message)
            self._send_response(msg_id, error=error)
            return
        log.error("request %s failed", _cut(repr(msg_id), 60), exc_info=exc)
        self._send_response(
            msg_id,
            error=types.ResponseError(
                code=INTERNAL_ERROR, message=_cut(f"Internal error: {type(exc).__name__}: {exc}")
            ),
        )

    def _send_data(self, data: Any) -> None:
        if not data:
            return
        if self.writer is None:
            log.error("cannot send: no transport")
            return
        try:
            # ensure_ascii (the default) escapes a lone surrogate instead of failing on it.
            body = json.dumps(data, default=self._serialize_message)
        except Exception as exc:
            log.error("cannot serialize %s: %s", type(data).__name__, _cut(str(exc), 200))
            msg_id = getattr(data, "id", None)
            if msg_id is not None and hasattr(data, "result"):
                self.reply_error(msg_id, INTERNAL_ERROR, "Internal error: unserializable result")
            return
        log.debug("sending %s", _cut(body, 2000))
        payload = body.encode("utf-8")
        if self._include_headers:
            header = (
                f"Content-Length: {len(payload)}\r\n"
                f"Content-Type: {self.CONTENT_TYPE}; charset={self.CHARSET}\r\n\r\n"
            )
            payload = header.encode("ascii") + payload
        result = self.writer.write(payload)
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            asyncio.ensure_future(result)

    # -- documents: ours only -------------------------------------------------------------
    # pygls's workspace keeps a second copy of every document and, updating it, clamps
    # the change's positions in place (`position.character = len - 1`, lines split with
    # str.splitlines) before our handler reads them. The server keeps its own store.

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(
        self, params: types.DidOpenTextDocumentParams
    ) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(
        self, params: types.DidCloseTextDocumentParams
    ) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None


# -- the server ------------------------------------------------------------------------------


class RateLimiter:
    """Says yes to a key at most once per `interval` seconds (popups, repeated errors)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self.suppressed = 0

    def allow(self, key: str) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self.suppressed += 1
            return False
        if len(self._last) >= 512:  # keys are problems, not a growing history
            recent = [(k, t) for k, t in self._last.items() if now - t < self.interval]
            self._last = dict(recent[-256:])  # insertion order is time order
        self._last[key] = now
        return True


class HardenedLanguageServer(LanguageServer):
    """pygls's LanguageServer on `CopilotProtocol`, with our own read loop and popups that
    go through one rate limiter."""

    def __init__(self, name: str, version: str, **kwargs: Any) -> None:
        kwargs.setdefault("protocol_cls", CopilotProtocol)
        kwargs.setdefault("converter_factory", strict_converter)
        super().__init__(name, version, **kwargs)
        self.popups = RateLimiter(POPUP_INTERVAL_S)
        self._reported = RateLimiter(POPUP_INTERVAL_S)

    def window_show_message(self, params: types.ShowMessageParams) -> None:
        # Keyed by the text alone: the same problem may come as an error and as info.
        if not self.popups.allow(params.message):
            log.debug("popup not repeated within a minute: %s", _cut(params.message, 200))
            return
        params.message = _cut(params.message)
        super().window_show_message(params)

    def window_log_message(self, params: types.LogMessageParams) -> None:
        params.message = _cut(params.message, 2000)
        super().window_log_message(params)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls calls this for failed handlers: a request's error is already its answer;
        a failed notification handler is logged and shown, once a minute per problem."""
        input_error = isinstance(error, JsonRpcException) and error.code != INTERNAL_ERROR
        if source is FeatureRequestError or input_error:
            return
        message = getattr(error, "message", None) or str(error)
        if not self._reported.allow(message):
            return
        trace = getattr(error, "data", None)
        if isinstance(trace, dict) and trace.get("traceback"):
            log.error("%s\n%s", message, "".join(trace["traceback"]))
        else:
            log.error("%s", message)
        if source is FeatureNotificationError:
            self.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Error, message=f"copilot-server: {_cut(message, 300)}"
                )
            )

    # -- transports ---------------------------------------------------------------------------

    async def serve(self, read: Callable[[], Awaitable[bytes]]) -> None:
        """Read frames until EOF or shutdown; a message that fails is logged, never fatal."""
        parser = FrameParser()
        protocol: CopilotProtocol = self.protocol  # type: ignore[assignment]
        while self._stop_event is None or not self._stop_event.is_set():
            data = await read()
            if not data:
                break
            for frame in parser.feed(data):
                if isinstance(frame, FrameError):
                    log.error("dropped input: %s", frame.message)
                    continue
                try:
                    protocol.handle_frame(frame)
                except BrokenPipeError:
                    raise
                except Exception:
                    log.exception("cannot handle a message")
                # Let handlers scheduled by this frame run before the next in the chunk.
                await asyncio.sleep(0)

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        self._stop_event = threading.Event()
        source = stdin or sys.stdin.buffer
        read_some = getattr(source, "read1", source.read)
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))

        async def read() -> bytes:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.thread_pool, read_some, READ_CHUNK)

        try:
            asyncio.run(self.serve(read))
        except BrokenPipeError:
            log.error("the connection to the client is lost; shutting down")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def start_tcp(self, host: str, port: int) -> None:
        self._stop_event = threading.Event()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.protocol.set_writer(writer)  # type: ignore[arg-type]
            await self.serve(lambda: reader.read(READ_CHUNK))
            self.shutdown()

        async def main() -> None:
            self._server = await asyncio.start_server(connection, host, port)
            log.info("serving on %s:%s", host, port)
            async with self._server:
                await self._server.serve_forever()

        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            log.debug("server cancelled")
