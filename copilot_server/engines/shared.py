"""The shared engine: the Engine protocol served by the user's engine host (host.py).

The first LSP server of a user starts the host (or finds it running) and every later one
connects to it, so three editor windows load the model once. Tokenizing stays in this
process with the model file's vocabulary only (llama.cpp `vocab_only`, ~45 MB, exact):
the context engine counts tokens dozens of times per keystroke and a round trip each
would add up. Generation streams token by token from the host; this side runs the stop
rules and answers each token, so early stop and cancel work as in process.

If the host dies, every request in flight is answered at once (empty, an error that
names what happened, which the status reports) and a new host is started in the
background; the next request waits for it, bounded by `completion.model_wait_s` and its
own cancel flag, so no editor request hangs.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import itertools
import logging
import queue
import subprocess
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings
from .base import FimTokens, GenerateOptions, Generation, ModelInfo, in_background_work
from .host import HostConfig, command_line, key_for
from .models import ModelNotFoundError
from .remote import RemoteEngineError
from .wire import PROTOCOL_VERSION, Channel, WireError, connect, log_path, socket_path

log = logging.getLogger(__name__)

# How long a new host may take to load its model before we give up (a 7B file read from
# a cold disk takes tens of seconds).
START_TIMEOUT_S = 300.0
# How often a request waiting on the host looks at its cancel flag: a superseded request
# that is still queued or in prefill leaves within this long.
CANCEL_POLL_S = 0.02
# Tokenized texts remembered per server (lines and prompt pieces; longer texts are not).
TOKEN_CACHE_SIZE = 20_000
TOKEN_CACHE_TEXT = 4_000
# Start another host at most this often while waiting for one to appear.
RESPAWN_EVERY_S = 2.0
# A request with no word from the host for this long gives up (a host that is stopped or
# wedged must not hang an editor request); a 4k-token prompt on a slow CPU takes ~80 s.
STALL_S = 180.0

Listener = Callable[[str], None]


class EngineHostError(RemoteEngineError):
    """The engine host is gone or could not start; the message says what happened."""


class LeanVocabulary:
    """The part of prompts.healing.Vocabulary that plans a heal (`piece`, `extends`,
    `count_starting_with`, and `allowed`), on one sorted list of the token bytes."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.size = len(pieces)
        self.pieces = pieces
        order = sorted((i for i, p in enumerate(pieces) if p), key=pieces.__getitem__)
        self._keys = [pieces[i] for i in order]
        self._ids = array("l", order)

    def piece(self, token: int) -> bytes:
        return self.pieces[token] if 0 <= token < self.size else b""

    def _range(self, prefix: bytes) -> tuple[int, int]:
        lo = bisect.bisect_left(self._keys, prefix)
        return lo, bisect.bisect_left(self._keys, _after_extensions(prefix), lo)

    def count_starting_with(self, prefix: bytes) -> int:
        lo, hi = self._range(prefix)
        return hi - lo

    def extends(self, prefix: bytes) -> bool:
        lo, hi = self._range(prefix)
        exact = bisect.bisect_right(self._keys, prefix, lo, hi) - lo
        return hi - lo > exact

    def allowed(self, rest: bytes) -> Any:
        import numpy as np

        lo, hi = self._range(rest)
        ids = list(self._ids[lo:hi])
        for end in range(1, len(rest)):
            a = bisect.bisect_left(self._keys, rest[:end])
            b = bisect.bisect_right(self._keys, rest[:end], a)
            ids.extend(self._ids[a:b])
        return np.asarray(ids, dtype=np.int64)


def _after_extensions(prefix: bytes) -> bytes:
    """The smallest bytes greater than every bytes that starts with `prefix`."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return b"\xff" * (len(prefix) + 256)
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


class _Connection:
    """One connection to a host: a reader thread routes replies to the waiting request."""

    def __init__(self, channel: Channel, ready: dict[str, Any], on_lost: Callable) -> None:
        self.channel = channel
        self.host_pid = int(ready.get("pid", 0))
        self.info = _model_info(ready["info"])
        self.end_tokens = frozenset(int(t) for t in ready.get("end_tokens", []))
        self._pending: dict[str, queue.SimpleQueue] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._on_lost = on_lost
        self.lost = False
        self.closing = False
        self._reader = threading.Thread(target=self._read, name="engine-host-reader", daemon=True)
        self._reader.start()

    def open_request(self) -> tuple[str, queue.SimpleQueue]:
        ident = str(next(self._ids))
        replies: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            if self.lost:
                raise EngineHostError("the engine host connection is closed")
            self._pending[ident] = replies
        return ident, replies

    def close_request(self, ident: str) -> None:
        with self._lock:
            self._pending.pop(ident, None)

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.channel.send(message)
        except WireError as exc:
            raise EngineHostError(f"the engine host is gone ({exc})") from None

    def call(self, op: str, timeout: float, **fields: Any) -> dict[str, Any]:
        """One request with one reply (tokenize, detokenize, status)."""
        ident, replies = self.open_request()
        try:
            self.send({"op": op, "id": ident, **fields})
            try:
                reply = replies.get(timeout=timeout)
            except queue.Empty:
                raise EngineHostError(f"the engine host did not answer {op} in time") from None
        finally:
            self.close_request(ident)
        if reply["op"] == "lost":
            raise EngineHostError("the engine host stopped")
        if reply["op"] == "error":
            raise EngineHostError(str(reply.get("message")))
        return reply

    def _read(self) -> None:
        while True:
            try:
                message = self.channel.receive()
            except WireError as exc:
                log.warning("engine host: %s", exc)
                message = None
            if message is None:
                break
            replies = self._pending.get(str(message.get("id", "")))
            if replies is not None:
                replies.put(message)
        with self._lock:
            self.lost = True
            pending = list(self._pending.values())
        for replies in pending:
            replies.put({"op": "lost"})
        if not self.closing:
            self._on_lost(self)

    def close(self) -> None:
        self.closing = True
        self.channel.close()


def _model_info(data: dict[str, Any]) -> ModelInfo:
    fields = dict(data)
    fields["fim"] = FimTokens(**fields["fim"])
    return ModelInfo(**fields)


def host_config(model_path: Path, settings: Settings) -> HostConfig:
    return HostConfig(
        model_path=str(model_path),
        n_gpu_layers=settings.model.n_gpu_layers,
        n_ctx=settings.model.n_ctx,
        n_batch=settings.model.n_batch,
        threads=settings.model.threads,
        idle_s=settings.engine.host_idle_s,
        saved_states=settings.engine.host_saved_states,
    )


class SharedEngine:
    """A client of the engine host, interchangeable with LlamaEngine."""

    # The host orders requests itself (completions before explain/fix, newest first), so
    # callers may run explain and fix beside completions (CompletionService.run_on_model).
    schedules_priorities = True
    # Token healing as in process: the host constrains the first tokens (HealingEngine).
    heals_tokens = True

    def __init__(
        self,
        model_path: Path,
        settings: Settings,
        *,
        spawn: bool = True,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.config = host_config(model_path, settings)
        self.key = key_for(self.config)
        self.socket = socket_path(self.key)
        self.spawn = spawn
        self.start_timeout_s = start_timeout_s
        self.wait_s = settings.completion.model_wait_s
        self.error: str | None = None  # set while the host is away (shown by the status)
        self.restarts = 0
        self._listeners: list[Listener] = []
        self._closed = False
        self._connected = threading.Event()
        self._reconnecting = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._conn = self._open(spawn)
        self._connected.set()
        self.info = self._conn.info
        self._tokens: OrderedDict[tuple[str, bool], list[int]] = OrderedDict()
        self._tokens_lock = threading.Lock()
        self._pieces: list[bytes] | None = None
        self._pieces_lock = threading.Lock()
        self._prepare_healing()

    # -- connecting --------------------------------------------------------------------

    def _open(self, spawn: bool) -> _Connection:
        """Connect to the host, starting one when none answers. Two servers starting at
        once may both start a host: the host's lock lets one of them serve."""
        deadline = time.monotonic() + self.start_timeout_s
        last_spawn = 0.0
        while True:
            conn = self._try_connect(deadline)
            if conn is not None:
                return conn
            if not spawn:
                raise EngineHostError(f"no engine host is running for {self.config.model_path}")
            now = time.monotonic()
            if now > deadline:
                raise EngineHostError(
                    f"the engine host did not start within {self.start_timeout_s:.0f}s; "
                    f"see {log_path(self.key)}"
                )
            process = self._process
            if process is not None and process.poll() not in (None, 0):
                raise EngineHostError(_failure(self.key, process.returncode))
            if now - last_spawn >= RESPAWN_EVERY_S and (process is None or process.poll() == 0):
                self._start_host()
                last_spawn = now
            time.sleep(0.05)

    def _try_connect(self, deadline: float) -> _Connection | None:
        try:
            channel = connect(self.socket)
        except OSError:
            return None
        try:
            channel.sock.settimeout(max(1.0, deadline - time.monotonic()))
            channel.send({"op": "hello", "version": PROTOCOL_VERSION, "name": "copilot-server"})
            reply = channel.receive()  # the host answers once its model is loaded
            channel.sock.settimeout(None)
        except (OSError, WireError):
            reply = None
        if reply is None:
            channel.close()  # a host shutting down as we came, or one that lost the race
            return None
        if reply.get("op") == "error":
            channel.close()
            raise ModelNotFoundError(str(reply.get("message")))
        if reply.get("op") != "ready" or reply.get("version") != PROTOCOL_VERSION:
            channel.close()
            raise EngineHostError(
                f"the engine host at {self.socket} speaks another protocol version; stop it "
                "(copilot-server doctor shows its pid) and try again"
            )
        return _Connection(channel, reply, self._lost)

    def _start_host(self) -> None:
        path = log_path(self.key)
        with contextlib.suppress(OSError):
            if path.stat().st_size > 1_000_000:
                path.unlink()
        with open(path, "ab") as out:
            # Its own session: the host outlives this server and no editor signal reaches it.
            process = subprocess.Popen(
                command_line(self.config),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                close_fds=True,
                cwd=str(Path(__file__).resolve().parents[2]),
            )
        self._process = process
        # Reap it when it exits, so no zombie stays while this server runs.
        threading.Thread(target=process.wait, name="engine-host-reaper", daemon=True).start()
        log.info("started engine host pid %d for %s", process.pid, self.config.model_path)

    def _lost(self, conn: _Connection) -> None:
        """On the reader thread: the host went away."""
        if self._closed or conn is not self._conn:
            return
        self._connected.clear()
        self.error = f"the engine host (pid {conn.host_pid}) stopped; starting a new one"
        log.warning("%s", self.error)
        self._tell(self.error)
        threading.Thread(target=self._reconnect, name="engine-host-restart", daemon=True).start()

    def _reconnect(self) -> None:
        if not self._reconnecting.acquire(blocking=False):
            return
        try:
            if self._connected.is_set() or self._closed:
                return
            self._process = None
            try:
                conn = self._open(self.spawn)
            except (EngineHostError, ModelNotFoundError) as exc:
                self.error = f"the engine host could not be restarted: {exc}"
                log.error("%s", self.error)
                self._tell(self.error)
                return
            if self._closed:
                conn.close()
                return
            self._conn = conn
            self.restarts += 1
            self.error = None
            self._connected.set()
            message = f"engine host restarted (pid {conn.host_pid})"
            log.info("%s", message)
            self._tell(message)
        finally:
            self._reconnecting.release()

    def watch(self, listener: Listener) -> None:
        """`listener(message)` is called (on a background thread) when the host goes away
        and when a new one serves."""
        self._listeners.append(listener)

    def _tell(self, message: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(message)
            except Exception:
                log.exception("engine listener failed")

    def _connection(self, cancel: threading.Event | None = None, wait: bool = True) -> _Connection:
        """The live connection; while a new host starts, wait for it (bounded), leaving
        early when `cancel` is set; without `wait`, fail at once (a request being built
        while the host restarts is answered empty rather than held)."""
        if self._connected.is_set():
            return self._conn
        if self._closed:
            raise EngineHostError("the shared engine is closed")
        threading.Thread(target=self._reconnect, name="engine-host-restart", daemon=True).start()
        if not wait:
            raise EngineHostError(self.error or "the engine host is restarting")
        deadline = time.monotonic() + self.wait_s
        while not self._connected.wait(CANCEL_POLL_S * 5):
            if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                raise EngineHostError(self.error or "the engine host is not available")
        return self._conn

    # -- the Engine protocol -----------------------------------------------------------

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        """The host's tokenizer (~0.1 ms a round trip), remembered per text: the context
        engine asks for the same lines on every keystroke."""
        if not text:
            return []
        key = (text, special)
        with self._tokens_lock:
            known = self._tokens.get(key)
            if known is not None:
                self._tokens.move_to_end(key)
                return list(known)
        reply = self._connection(wait=False).call("tokenize", 30.0, text=text, special=special)
        tokens = [int(t) for t in reply["tokens"]]
        if len(text) <= TOKEN_CACHE_TEXT:
            with self._tokens_lock:
                self._tokens[key] = tokens
                while len(self._tokens) > TOKEN_CACHE_SIZE:
                    self._tokens.popitem(last=False)
        return list(tokens)

    def detokenize(self, tokens: list[int]) -> str:
        reply = self._connection(wait=False).call("detokenize", 30.0, tokens=list(tokens))
        return str(reply["text"])

    def is_end_of_generation(self, token: int) -> bool:
        return token in self._conn.end_tokens

    def token_pieces(self) -> list[bytes]:
        """Every token's bytes by id (b"" for control tokens), from the host once: token
        healing plans here which typed tokens to take back (~2 MB on the wire)."""
        with self._pieces_lock:
            if self._pieces is None:
                reply = self._connection().call("pieces", 60.0)
                blob = memoryview(base64.b64decode(reply["blob"]))
                pieces, at = [], 0
                for length in reply["lengths"]:
                    pieces.append(bytes(blob[at : at + length]))
                    at += length
                self._pieces = pieces
            return self._pieces

    def _prepare_healing(self) -> None:
        """Planning a heal (prompts/healing.py) asks a vocabulary for a token's bytes and
        for tokens starting with some bytes; the full table also serves the constraint,
        which runs in the host. A lean one for that planning is put in healing's per-engine
        cache: ~9 MB in each server instead of ~33 MB."""
        try:
            from ..prompts import healing

            cache = getattr(healing, "_vocabularies", None)
            if cache is not None and cache.get(self) is None:
                cache[self] = LeanVocabulary(self.token_pieces())
        except (ImportError, TypeError, EngineHostError) as exc:
            log.debug("token healing planned with the full vocabulary: %s", exc)

    def generate(self, prompt: list[int], **options: Any) -> Generation:
        """Stream from the host; `should_stop` answers each token before the next one is
        decoded. Completions go first in the host; work started inside
        `base.background_work()` (explain, fix) yields to them between tokens. With
        `heal`, the first tokens are constrained to write that text (as LlamaEngine)."""
        opts = GenerateOptions(**options)
        cancel, should_stop = opts.cancel, opts.should_stop
        if cancel.is_set():
            return Generation("", 0, len(prompt), 0, "cancelled", 0.0, 0.0)
        if len(prompt) >= self.info.n_ctx:
            raise ValueError(f"prompt of {len(prompt)} tokens does not fit n_ctx={self.info.n_ctx}")
        conn = self._connection(cancel)
        started = time.perf_counter()
        ident, replies = conn.open_request()
        first_at: float | None = None
        text = ""
        cancel_sent = False
        try:
            conn.send(
                {
                    "op": "generate",
                    "id": ident,
                    "prompt": list(prompt),
                    "max_tokens": opts.max_tokens,
                    "temperature": opts.temperature,
                    "stop_tokens": sorted(opts.stop_tokens),
                    "background": in_background_work(),
                    "heal": opts.heal,
                }
            )
            heard = time.monotonic()
            while True:
                try:
                    reply = replies.get(timeout=CANCEL_POLL_S)
                except queue.Empty:
                    if cancel.is_set() and not cancel_sent:
                        conn.send({"op": "cancel", "id": ident})
                        cancel_sent = True
                    if time.monotonic() - heard > STALL_S:
                        conn.send({"op": "cancel", "id": ident})
                        raise EngineHostError(
                            f"the engine host (pid {conn.host_pid}) did not answer for "
                            f"{STALL_S:.0f}s"
                        ) from None
                    continue
                heard = time.monotonic()
                op = reply["op"]
                if op == "token":
                    if first_at is None:
                        first_at = time.perf_counter()
                    text += reply["text"]
                    try:
                        stop = should_stop(text)
                    except BaseException:
                        conn.send({"op": "cancel", "id": ident})
                        raise
                    if cancel.is_set() and not cancel_sent:
                        conn.send({"op": "cancel", "id": ident})
                        cancel_sent = True
                    else:
                        conn.send({"op": "verdict", "id": ident, "stop": bool(stop)})
                elif op == "done":
                    ended = time.perf_counter()
                    first = first_at or ended
                    return Generation(
                        text=str(reply.get("text", text)),
                        tokens_generated=int(reply["tokens_generated"]),
                        prompt_tokens=len(prompt),
                        prompt_tokens_evaluated=int(reply["prompt_tokens_evaluated"]),
                        stop_reason=str(reply["stop_reason"]),
                        prompt_ms=(first - started) * 1000,
                        generation_ms=(ended - first) * 1000,
                    )
                elif op == "error":
                    message = str(reply.get("message"))
                    if "does not fit" in message:
                        raise ValueError(message)
                    raise EngineHostError(f"the engine host failed a request: {message}")
                elif op == "lost":
                    raise EngineHostError(
                        f"the engine host (pid {conn.host_pid}) stopped during a request; "
                        "a new one is starting"
                    )
        finally:
            conn.close_request(ident)

    def first_token_candidates(self, prompt: list[int], k: int) -> list[int]:
        """The `k` likeliest first tokens after `prompt` (see LlamaEngine), from the host."""
        conn = self._connection()
        ident, replies = conn.open_request()
        try:
            conn.send(
                {
                    "op": "candidates",
                    "id": ident,
                    "prompt": list(prompt),
                    "k": int(k),
                    "background": in_background_work(),
                }
            )
            reply = replies.get(timeout=max(60.0, self.wait_s))
        except queue.Empty:
            raise EngineHostError("the engine host did not answer in time") from None
        finally:
            conn.close_request(ident)
        if reply["op"] == "lost":
            raise EngineHostError("the engine host stopped during a request")
        if reply["op"] == "error":
            message = str(reply.get("message"))
            if "does not fit" in message:
                raise ValueError(message)
            raise EngineHostError(f"the engine host failed a request: {message}")
        return [int(t) for t in reply["tokens"]]

    # -- status ------------------------------------------------------------------------

    def host_status(self, timeout: float = 1.0) -> dict[str, Any]:
        """The host's pid, model, clients, uptime and memory (never raises)."""
        if not self._connected.is_set():
            return {"state": "restarting", "message": self.error, "socket": str(self.socket)}
        try:
            status = self._conn.call("status", timeout)["status"]
        except EngineHostError as exc:
            return {"state": "unreachable", "message": str(exc), "socket": str(self.socket)}
        status["restarts"] = self.restarts
        return status

    def close(self) -> None:
        self._closed = True
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()


def _failure(key: str, code: int | None) -> str:
    """Why a host we started exited: the last lines of its log."""
    try:
        lines = log_path(key).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    tail = " | ".join(line.strip() for line in lines[-3:] if line.strip())
    return f"the engine host exited with status {code}" + (f": {tail}" if tail else "")


def connect_running(model_path: Path, settings: Settings) -> SharedEngine | None:
    """A shared engine on a host that is already running for this model; None when there
    is none (headless commands then load the model in process, see loader.create_engine)."""
    if not socket_path(key_for(host_config(model_path, settings))).exists():
        return None
    try:
        return SharedEngine(model_path, settings, spawn=False, start_timeout_s=5.0)
    except (EngineHostError, ModelNotFoundError, OSError) as exc:
        log.info("no running engine host to share (%s); loading the model here", exc)
        return None


def query_host(path: Path, timeout: float = 1.0) -> dict[str, Any] | None:
    """A running host's status (pid, model, clients, uptime, RSS); None when no host
    answers at `path` (a socket left by one that died)."""
    try:
        channel = connect(path, timeout)
    except OSError:
        return None
    try:
        channel.sock.settimeout(timeout)
        channel.send({"op": "status", "id": "status"})
        reply = channel.receive()
    except (OSError, WireError):
        reply = None
    finally:
        channel.close()
    if not reply or reply.get("op") != "result":
        return None
    return reply.get("status")


def host_report(model_path: Path, settings: Settings) -> dict[str, Any]:
    """For `copilot-server doctor`: the host serving these settings' model, if running,
    and every other host of this user."""
    from .host import running_hosts

    mine = socket_path(key_for(host_config(model_path, settings)))
    others = []
    for path in running_hosts():
        if path != mine:
            status = query_host(path)
            if status is not None:
                others.append({k: status.get(k) for k in ("pid", "model", "clients", "rssBytes")})
    status = query_host(mine)
    report: dict[str, Any] = {"socket": str(mine), "running": status is not None}
    if status is not None:
        keys = ("pid", "modelName", "clients", "clientPids", "uptimeS", "rssBytes", "idleExitS")
        report.update({k: status.get(k) for k in keys})
    report["other_hosts"] = others
    return report
