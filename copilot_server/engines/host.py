"""The engine host: one process per user and model holding the one loaded model, serving
every LSP server of that user over a Unix socket (`copilot-server engine-host`, or
`python -m copilot_server.engines.host`; the shared engine starts it, see shared.py).

Each LSP server keeps its documents, context and caches; the host keeps the model, its
KV cache and the one decode loop:

- Scheduling: completions go before explain/fix, and among completions the newest
  request first. The decode loop checks between tokens (and between prompt chunks)
  whether more urgent work waits and then yields: the job's KV state is kept and it
  resumes later by re-reading one token. A completion waiting longer than STARVE_S
  takes a turn in arrival order, so two windows typing at once share the model in
  slices and neither waits long behind the other.
- The KV cache follows the active document: before a job, the states of recently used
  prompts are compared with it; the cache it would overwrite is saved (llama.cpp's
  per-sequence state: ~12 KB per token for the 0.5B model) and a saved one that the
  job continues is restored, so switching windows costs a copy, not a prefill.
- Lockstep streaming: every token goes to the client, whose stop rules answer "stop" or
  "go on" before the next one is decoded, exactly as in process (and a cancel lands
  within one token).

Start-up race: the host holds an exclusive `flock` on its lock file for its lifetime; a
second host started for the same model finds it taken and exits at once. The socket is
created with mode 0600 in a 0700 folder and every peer's uid is checked (SO_PEERCRED).
There is no TCP listener. With no clients for `idle` seconds the host exits.
"""

from __future__ import annotations

import argparse
import base64
import codecs
import ctypes
import dataclasses
import fcntl
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..priority import lower_thread_priority
from ..stats import percentile
from .kv_reuse import plan_reuse
from .wire import (
    PROTOCOL_VERSION,
    Channel,
    WireError,
    host_key,
    lock_path,
    peer_uid,
    runtime_dir,
    socket_path,
)

log = logging.getLogger("copilot_server.engine_host")

# A completion that has waited this long goes ahead of newer ones (arrival order), and a
# job that has run this long in its turn yields to it: two windows typing at once then
# alternate in slices of this length instead of one waiting for the other's whole block.
STARVE_S = 0.5
# Prompt tokens read per step on a CPU, so a long prompt (an explain, a cold document) can
# yield to a keystroke between chunks: ~0.2-0.3 s on a 2-core CPU, which reads 64-token
# batches about as fast as bigger ones. With GPU layers a whole batch (n_batch) is read
# at once: it takes milliseconds there and smaller batches waste the GPU.
PREFILL_CHUNK = 64
# A client that does not answer a token within this long is treated as gone: one frozen
# editor must not stop the model for every other window.
VERDICT_TIMEOUT_S = 10.0
# Restoring a saved state is worth it when it keeps this many more prompt tokens than the
# cache as it is (shorter gains are re-read as fast as a restore).
MIN_RESTORE_GAIN = 32
# A cache shorter than this is not worth saving.
MIN_SAVED_TOKENS = 64


@dataclass
class HostConfig:
    model_path: str
    n_gpu_layers: int | str = "auto"
    n_ctx: int = 4096
    n_batch: int = 512
    threads: int | None = None
    idle_s: float = 600.0
    saved_states: int = 4


# -- jobs and their order ----------------------------------------------------------------


@dataclass(eq=False)
class Job:
    client: Client
    id: str
    prompt: list[int]
    max_tokens: int
    temperature: float
    stop_tokens: frozenset[int]
    background: bool
    seq: int
    arrived: float = field(default_factory=time.monotonic)
    waiting_since: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    verdicts: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    generated: list[int] = field(default_factory=list)
    text: str = ""
    decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))
    evaluated: int = 0
    started: float | None = None
    first_token_at: float | None = None
    promoted: bool = False  # picked because it had waited STARVE_S
    slice_started: float = 0.0
    preemptions: int = 0
    finished: bool = False
    kind: str = "generate"  # or "candidates": the k likeliest first tokens
    heal: str = ""  # token healing: the text the first tokens must write
    waited: float = 0.0  # seconds in the queue, over all its turns
    longest_wait: float = 0.0  # the longest of those waits: behind another job, at a stretch
    k: int = 0

    def rank(self, now: float, running: bool = False) -> tuple:
        """Lower goes first: completions before background work; a completion that has
        waited STARVE_S (or runs after such a wait) in arrival order; else newest first."""
        if self.background:
            return (1, 0, self.seq)
        starving = self.promoted if running else now - self.waiting_since >= STARVE_S
        return (0, 0, self.seq) if starving else (0, 1, -self.seq)


class Scheduler:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: list[Job] = []
        self._seq = 0
        self.stopping = False

    def next_seq(self) -> int:
        with self._cond:
            self._seq += 1
            return self._seq

    def submit(self, job: Job) -> None:
        with self._cond:
            job.waiting_since = time.monotonic()
            self._waiting.append(job)
            self._cond.notify_all()

    def withdraw(self, job: Job) -> bool:
        """Take a job that has not started (or is suspended) out of the queue."""
        with self._cond:
            if job in self._waiting:
                self._waiting.remove(job)
                return True
            return False

    def take(self, timeout: float) -> Job | None:
        with self._cond:
            if not self._waiting and not self.stopping:
                self._cond.wait(timeout)
            if not self._waiting or self.stopping:
                return None
            now = time.monotonic()
            job = min(self._waiting, key=lambda j: j.rank(now))
            self._waiting.remove(job)
            job.waited += now - job.waiting_since
            job.longest_wait = max(job.longest_wait, now - job.waiting_since)
            job.promoted = not job.background and now - job.waiting_since >= STARVE_S
            job.slice_started = now
            return job

    def more_urgent_than(self, running: Job) -> bool:
        """Is there a job that should have the model before `running`'s next token?"""
        with self._cond:
            if not self._waiting:
                return False
            now = time.monotonic()
            mine = running.rank(now, running=True)
            for job in self._waiting:
                other = job.rank(now)
                if job.background:
                    continue
                if running.background:
                    return True  # a completion never waits behind explain/fix
                if other[1] == 0 and now - running.slice_started >= STARVE_S:
                    return True  # a starving completion gets its turn
                if other < mine and not running.promoted:
                    return True  # a newer keystroke goes first
            return False

    def pending(self) -> int:
        with self._cond:
            return len(self._waiting)

    def stop(self) -> None:
        with self._cond:
            self.stopping = True
            self._cond.notify_all()


# -- KV states of recent prompts ---------------------------------------------------------


@dataclass
class SavedState:
    tokens: list[int]
    data: bytes
    used: float = field(default_factory=time.monotonic)


class StateCache:
    """States of the KV cache for recent prompts (one per document, in effect), so that
    switching between windows restores instead of re-reading a prompt."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.states: list[SavedState] = []
        self.saves = 0
        self.restores = 0
        self.save_ms = 0.0
        self.restore_ms = 0.0

    @property
    def bytes(self) -> int:
        return sum(len(s.data) for s in self.states)

    def prepare(self, llm: Any, tokens: list[int]) -> None:
        """Before `tokens` are read: keep the cache if it serves them best; else save it
        (when it is about to be overwritten) and restore the saved state that does."""
        if self.capacity <= 0:
            return
        current = llm.input_ids[: llm.n_tokens].tolist()
        keep_now = plan_reuse(current, tokens).kept
        best, keep_best = None, 0
        for state in self.states:
            kept = plan_reuse(state.tokens, tokens).kept
            if kept > keep_best:
                best, keep_best = state, kept
        overwritten = len(current) >= MIN_SAVED_TOKENS and keep_now < len(current) // 2
        if best is not None and keep_best >= keep_now + MIN_RESTORE_GAIN:
            if overwritten:
                self._save(llm, current)
            self._restore(llm, best)
        elif overwritten:
            self._save(llm, current)

    def _save(self, llm: Any, tokens: list[int]) -> None:
        import llama_cpp

        started = time.perf_counter()
        ctx = llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        if not written:
            return
        # A saved state the new one extends (the same document, earlier) is dropped.
        self.states = [
            s
            for s in self.states
            if not (tokens[: len(s.tokens)] == s.tokens or s.tokens == tokens)
        ]
        self.states.append(SavedState(tokens, bytes(buffer)[:written]))
        while len(self.states) > self.capacity:
            self.states.remove(min(self.states, key=lambda s: s.used))
        self.saves += 1
        self.save_ms += (time.perf_counter() - started) * 1000

    def _restore(self, llm: Any, state: SavedState) -> None:
        import llama_cpp

        started = time.perf_counter()
        ctx = llm._ctx
        llama_cpp.llama_memory_clear(ctx.memory, True)
        data = (ctypes.c_uint8 * len(state.data)).from_buffer_copy(state.data)
        if not llama_cpp.llama_state_seq_set_data(ctx.ctx, data, len(state.data), 0):
            llm.reset()  # nothing half-restored: read the prompt again
            llama_cpp.llama_memory_clear(ctx.memory, True)
            return
        n = len(state.tokens)
        llm.input_ids[:n] = state.tokens
        llm.n_tokens = n
        llm._requires_eval = True
        state.used = time.monotonic()
        self.restores += 1
        self.restore_ms += (time.perf_counter() - started) * 1000


# -- clients -----------------------------------------------------------------------------


class Client:
    """One connected LSP server: reads its messages on its own thread."""

    def __init__(self, host: EngineHost, channel: Channel, number: int, pid: int | None) -> None:
        self.host = host
        self.channel = channel
        self.number = number
        self.pid = pid
        self.name = ""
        self.jobs: dict[str, Job] = {}
        self.connected = time.time()

    def send(self, message: dict[str, Any]) -> bool:
        try:
            self.channel.send(message)
            return True
        except WireError:
            return False

    def serve(self) -> None:
        try:
            while True:
                try:
                    message = self.channel.receive()
                except WireError as exc:
                    log.warning("client %d: %s; dropping it", self.number, exc)
                    break
                if message is None:
                    break
                self._handle(message)
        finally:
            for job in list(self.jobs.values()):
                self._cancel(job)
                job.verdicts.put(None)
            self.channel.close()
            self.host.client_left(self)

    def _handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        ident = str(message.get("id", ""))
        if op == "verdict":
            job = self.jobs.get(ident)
            if job is not None:
                job.verdicts.put(bool(message.get("stop")))
            return
        if op == "cancel":
            job = self.jobs.get(ident)
            if job is not None:
                self._cancel(job)
            return
        if op == "hello":
            self.name = str(message.get("name", "")) or "client"
            self.host.wait_loaded()
            if self.host.engine is None:
                self.send({"op": "error", "message": self.host.load_error})
            else:
                self.send(self.host.ready_message())
            return
        if op == "status":
            self.send({"op": "result", "id": ident, "status": self.host.status()})
            return
        engine = self.host.engine
        if engine is None:
            self.send({"op": "error", "id": ident, "message": self.host.load_error})
            return
        try:
            if op == "tokenize":
                tokens = engine.tokenize(str(message["text"]), special=bool(message.get("special")))
                self.send({"op": "result", "id": ident, "tokens": tokens})
            elif op == "detokenize":
                text = engine.detokenize([int(t) for t in message["tokens"]])
                self.send({"op": "result", "id": ident, "text": text})
            elif op == "pieces":  # every token's bytes, for the client's token healing
                self.send({"op": "result", "id": ident, **self.host.pieces()})
            elif op in ("generate", "candidates"):
                self._generate(ident, message, op)
            else:
                self.send({"op": "error", "id": ident, "message": f"unknown op {op!r}"})
        except (KeyError, TypeError, ValueError) as exc:
            self.send({"op": "error", "id": ident, "message": f"bad {op} request: {exc}"})

    def _generate(self, ident: str, message: dict[str, Any], kind: str) -> None:
        prompt = [int(t) for t in message["prompt"]]
        if not prompt:
            raise ValueError("empty prompt")
        job = Job(
            client=self,
            id=ident,
            prompt=prompt,
            max_tokens=max(1, int(message.get("max_tokens", 64))),
            temperature=float(message.get("temperature", 0.0)),
            stop_tokens=frozenset(int(t) for t in message.get("stop_tokens", [])),
            background=bool(message.get("background")),
            seq=self.host.scheduler.next_seq(),
            kind=kind,
            k=int(message.get("k", 0)),
            heal=str(message.get("heal", "")),
        )
        self.jobs[ident] = job
        self.host.scheduler.submit(job)

    def _cancel(self, job: Job) -> None:
        job.cancel.set()
        job.verdicts.put(True)
        if self.host.scheduler.withdraw(job):
            self.host.finish(job, "cancelled")


# -- the host ----------------------------------------------------------------------------


class EngineHost:
    def __init__(self, config: HostConfig, sock_path: Path) -> None:
        self.config = config
        self.sock_path = sock_path
        self.engine: Any = None
        self.end_tokens: list[int] = []
        self._pieces: dict[str, Any] | None = None
        self._pieces_lock = threading.Lock()
        self.load_error = ""
        self.loaded = threading.Event()
        self.scheduler = Scheduler()
        self.states = StateCache(config.saved_states)
        self.clients: list[Client] = []
        self._clients_lock = threading.Lock()
        self._numbers = 0
        self.started = time.time()
        self.idle_since: float | None = time.monotonic()
        self.listener: socket.socket | None = None
        self.stopped = threading.Event()
        self._finish_lock = threading.Lock()
        self.running: Job | None = None
        self.chunk = PREFILL_CHUNK
        # Answered completions' waits behind other jobs, for the status: the longest single
        # wait of each (at a stretch) and its whole time in the queue (all its turns).
        self.waits: deque[float] = deque(maxlen=1000)
        self.queue_times: deque[float] = deque(maxlen=1000)
        self.counters = {
            "requests": 0,
            "tokens_generated": 0,
            "prompt_tokens": 0,
            "prompt_tokens_evaluated": 0,
            "preemptions": 0,
            "cancelled": 0,
        }

    # -- set-up ------------------------------------------------------------------------

    def listen(self) -> None:
        """Bind the socket (mode 0600 from the start: the umask covers the bind)."""
        try:
            self.sock_path.unlink()  # a socket left by a host that died; the lock is ours
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.sock_path))
        finally:
            os.umask(old)
        os.chmod(self.sock_path, 0o600)
        sock.listen(64)
        self.listener = sock
        self._inode = self.sock_path.stat().st_ino

    def load(self) -> None:
        from ..config import ModelSettings
        from .llama import LlamaEngine

        settings = ModelSettings(
            path=self.config.model_path,
            n_gpu_layers=self.config.n_gpu_layers,
            n_ctx=self.config.n_ctx,
            n_batch=self.config.n_batch,
            threads=self.config.threads,
        )
        started = time.perf_counter()
        try:
            self.engine = LlamaEngine(Path(self.config.model_path), settings)
        except Exception as exc:  # any failure is told to every client, then we exit
            self.load_error = str(exc) or type(exc).__name__
            log.error("model load failed: %s", self.load_error)
        else:
            log.info("loaded %s in %.1fs", self.engine.info.name, time.perf_counter() - started)
            # Every end-of-generation token, for the clients' own checks (they hold no
            # vocabulary): ~30 ms for a 150k vocabulary, once.
            n_vocab = self.engine._llm.n_vocab()
            self.end_tokens = [t for t in range(n_vocab) if self.engine.is_end_of_generation(t)]
            if self.engine.info.n_gpu_layers > 0:
                self.chunk = self.engine._llm.n_batch
        self.loaded.set()

    def pieces(self) -> dict[str, Any]:
        """Every token's bytes as one base64 blob and their lengths (~2 MB for 150k tokens;
        a list of 150k strings would leave ~10 MB of small objects in each process)."""
        with self._pieces_lock:
            if self._pieces is None:
                pieces = self.engine.token_pieces()
                self._pieces = {
                    "blob": base64.b64encode(b"".join(pieces)).decode("ascii"),
                    "lengths": [len(piece) for piece in pieces],
                }
            return self._pieces

    def wait_loaded(self) -> None:
        self.loaded.wait()

    def ready_message(self) -> dict[str, Any]:
        info = dataclasses.asdict(self.engine.info)
        return {
            "op": "ready",
            "version": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "info": info,
            "end_tokens": self.end_tokens,
            "started": self.started,
        }

    # -- connections -------------------------------------------------------------------

    def accept_forever(self) -> None:
        assert self.listener is not None
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed: shutting down
            uid = peer_uid(conn)
            if uid is not None and uid != os.getuid():
                log.warning("refused a connection from uid %d", uid)
                conn.close()
                continue
            pid = _peer_pid(conn)
            with self._clients_lock:
                self._numbers += 1
                client = Client(self, Channel(conn), self._numbers, pid)
                self.clients.append(client)
                self.idle_since = None
            threading.Thread(
                target=client.serve, name=f"client-{client.number}", daemon=True
            ).start()

    def client_left(self, client: Client) -> None:
        with self._clients_lock:
            if client in self.clients:
                self.clients.remove(client)
            if not self.clients:
                self.idle_since = time.monotonic()

    def watch_idle(self) -> None:
        while not self.stopped.wait(min(1.0, max(0.05, self.config.idle_s / 4))):
            with self._clients_lock:
                since = self.idle_since
            if since is not None and time.monotonic() - since >= self.config.idle_s:
                log.info("no clients for %.0fs: exiting", self.config.idle_s)
                self.shutdown()
                return

    def shutdown(self) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        self.scheduler.stop()
        try:
            # Only our own socket: a newer host may have replaced it.
            if self.sock_path.stat().st_ino == getattr(self, "_inode", None):
                self.sock_path.unlink()
        except OSError:
            pass
        if self.listener is not None:
            self.listener.close()

    # -- the decode loop ---------------------------------------------------------------

    def decode_forever(self) -> None:
        # The model runs below the editors' servers, as their model thread did in process
        # (priority.py; llama.cpp's threads inherit it); the threads answering tokenize and
        # verdicts keep their priority, as the servers' event loops do.
        lower_thread_priority()
        while not self.stopped.is_set():
            job = self.scheduler.take(timeout=0.5)
            if job is None:
                continue
            if job.cancel.is_set():
                self.finish(job, "cancelled")
                continue
            self.running = job
            try:
                outcome = self.run(job)
            except Exception as exc:  # one bad request must not stop the host
                if not isinstance(exc, ValueError):  # a prompt too long is the client's
                    log.exception("generation failed")
                job.client.send({"op": "error", "id": job.id, "message": str(exc)})
                job.client.jobs.pop(job.id, None)
                continue
            finally:
                self.running = None
            if outcome == "suspended":
                job.preemptions += 1
                self.counters["preemptions"] += 1
                self.scheduler.submit(job)
            else:
                self.finish(job, outcome)

    def run(self, job: Job) -> str:
        """Run `job` until it ends (its stop reason) or yields ("suspended")."""
        engine = self.engine
        llm = engine._llm
        tokens = job.prompt + job.generated
        room = llm.n_ctx() - len(job.prompt) - 1
        if room <= 0:
            raise ValueError(f"prompt of {len(job.prompt)} tokens does not fit n_ctx={llm.n_ctx()}")
        max_tokens = min(job.max_tokens, room)
        if job.started is None:
            job.started = time.perf_counter()
        self.states.prepare(llm, tokens)
        _truncate(llm, engine._keep_moved_tokens(tokens))
        # Read the prompt in chunks so a keystroke can take the model between them.
        while len(tokens) - llm.n_tokens > self.chunk + 1:
            if job.cancel.is_set() or self.stopped.is_set():
                return "cancelled"
            if self.scheduler.more_urgent_than(job):
                return "suspended"
            chunk = tokens[llm.n_tokens : llm.n_tokens + self.chunk]
            llm.eval(chunk)
            job.evaluated += len(chunk)
        if job.cancel.is_set():
            return "cancelled"
        job.evaluated += len(tokens) - llm.n_tokens  # the rest is read by generate()
        if job.kind == "candidates":
            ranked = engine.first_token_candidates(tokens, job.k)
            job.client.send({"op": "result", "id": job.id, "tokens": ranked})
            return "answered"
        stream = llm.generate(
            tokens,
            temp=job.temperature,
            top_k=1 if job.temperature == 0 else 40,
            top_p=1.0 if job.temperature == 0 else 0.95,
            min_p=0.0,
            repeat_penalty=1.0,
            reset=True,
            # Counted from the original prompt: a resumed job's constraint goes on.
            logits_processor=engine._healing(job.heal, len(job.prompt)),
        )
        try:
            for token in stream:
                if job.first_token_at is None:
                    job.first_token_at = time.perf_counter()
                if job.cancel.is_set() or self.stopped.is_set():
                    return "cancelled"
                if token in job.stop_tokens or engine.is_end_of_generation(token):
                    return "eos"
                job.generated.append(token)
                piece = job.decoder.decode(llm.detokenize([token]))
                job.text += piece
                if not job.client.send({"op": "token", "id": job.id, "text": piece}):
                    return "cancelled"
                stop = self._verdict(job)
                if stop is None or job.cancel.is_set():
                    return "cancelled"
                if stop:
                    return "stopped"
                if len(job.generated) >= max_tokens:
                    return "max_tokens"
                if self.scheduler.more_urgent_than(job):
                    return "suspended"
        finally:
            stream.close()
        return "max_tokens"

    def _verdict(self, job: Job) -> bool | None:
        try:
            return job.verdicts.get(timeout=VERDICT_TIMEOUT_S)
        except queue.Empty:
            log.warning("client %d did not answer a token: cancelling", job.client.number)
            return None

    def finish(self, job: Job, stop_reason: str) -> None:
        with self._finish_lock:  # the decode thread and a cancel on a client's thread
            if job.finished:
                return
            job.finished = True
        job.client.jobs.pop(job.id, None)
        ended = time.perf_counter()
        started = job.started or ended
        first = job.first_token_at or ended
        self.counters["requests"] += 1
        self.counters["tokens_generated"] += len(job.generated)
        self.counters["prompt_tokens"] += len(job.prompt)
        self.counters["prompt_tokens_evaluated"] += job.evaluated
        if stop_reason == "cancelled":
            self.counters["cancelled"] += 1
        elif not job.background:
            self.waits.append(job.longest_wait * 1000)
            self.queue_times.append(job.waited * 1000)
        if job.kind == "candidates":
            if stop_reason != "answered":
                job.client.send({"op": "error", "id": job.id, "message": stop_reason})
            return
        job.client.send(
            {
                "op": "done",
                "id": job.id,
                "text": job.text,
                "tokens_generated": len(job.generated),
                "prompt_tokens": len(job.prompt),
                "prompt_tokens_evaluated": job.evaluated,
                "stop_reason": stop_reason,
                "prompt_ms": (first - started) * 1000,
                "generation_ms": (ended - first) * 1000,
                "preemptions": job.preemptions,
                "waited_ms": (started - job.arrived) * 1000 if job.started else 0.0,
            }
        )

    # -- status ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        info = self.engine.info if self.engine is not None else None
        with self._clients_lock:
            # Servers that said hello; a status query (doctor) is not a client.
            clients = [{"pid": c.pid, "name": c.name} for c in self.clients if c.name]
        return {
            "pid": os.getpid(),
            "model": info.path if info else self.config.model_path,
            "modelName": info.name if info else None,
            "gpuLayers": info.n_gpu_layers if info else 0,
            "nCtx": info.n_ctx if info else self.config.n_ctx,
            "state": "ready" if info else ("error" if self.load_error else "loading"),
            "clients": len(clients),
            "clientPids": [c["pid"] for c in clients],
            "uptimeS": round(time.time() - self.started, 1),
            "rssBytes": _rss_bytes(),
            "idleExitS": self.config.idle_s,
            "busy": self.running is not None,
            "waitMs": _spread(list(self.waits)),
            "queueMs": _spread(list(self.queue_times)),
            "queued": self.scheduler.pending(),
            "prefillChunk": self.chunk,
            "savedStates": len(self.states.states),
            "savedStateBytes": self.states.bytes,
            "stateSaves": self.states.saves,
            "stateRestores": self.states.restores,
            "stateSaveMs": round(self.states.save_ms, 1),
            "stateRestoreMs": round(self.states.restore_ms, 1),
            **self.counters,
            "socket": str(self.sock_path),
        }


def _spread(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "max": round(max(values), 1),
    }


def _truncate(llm: Any, kept: int) -> None:
    """Drop cached tokens past the `kept` prompt tokens (the engine's KV reuse keeps a
    plain common prefix without touching the cache), so chunked reading starts there."""
    if llm.n_tokens <= kept:
        return
    if not llm._ctx.kv_cache_seq_rm(0, kept, -1):
        import llama_cpp

        llm.reset()  # a cache that cannot drop a range: start over, never mix
        llama_cpp.llama_memory_clear(llm._ctx.memory, True)
        return
    llm.n_tokens = kept
    llm._requires_eval = True


def _peer_pid(sock: socket.socket) -> int | None:
    import struct

    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    return struct.unpack("3i", raw)[0]


def _rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# -- process entry -----------------------------------------------------------------------


@dataclass
class _Lock:
    fd: int


def take_lock(path: Path) -> _Lock | None:
    """The host's lock for its lifetime (released by the kernel when it dies, even by
    SIGKILL); None when another live host holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return _Lock(fd)


def key_for(config: HostConfig) -> str:
    # The setting as written ("auto" too): resolving it would load llama.cpp into every
    # LSP server just to name the socket.
    return host_key(config.model_path, config.n_gpu_layers, config.n_ctx)


def serve(config: HostConfig, key: str | None = None) -> int:
    """Run a host until idle or signalled. Returns 0 also when another host already
    serves this model (the start-up race ends with one host)."""
    key = key or key_for(config)
    folder = runtime_dir()
    lock = take_lock(lock_path(key, folder))
    if lock is None:
        log.info("another engine host serves this model; exiting")
        return 0
    host = EngineHost(config, socket_path(key, folder))
    host.listen()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: host.shutdown())
    threading.Thread(target=host.accept_forever, name="accept", daemon=True).start()
    log.info("engine host %d listening on %s", os.getpid(), host.sock_path)
    host.load()
    if host.engine is None:
        time.sleep(2.0)  # let the clients waiting on hello read the error
        host.shutdown()
        return 1
    threading.Thread(target=host.watch_idle, name="idle", daemon=True).start()
    decoder = threading.Thread(target=host.decode_forever, name="decode", daemon=True)
    decoder.start()
    while not host.stopped.wait(0.5):
        pass
    decoder.join(timeout=5)
    host.engine.close()
    os.close(lock.fd)
    return 0


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="copilot-server engine-host",
        description="Serve one model to every copilot-server of this user (started on demand).",
    )
    parser.add_argument("--model-path", required=True, help="the GGUF file")
    parser.add_argument("--host-gpu-layers", default="auto", help="auto, all or a number")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--n-batch", type=int, default=512)
    parser.add_argument("--host-threads", type=int, default=None)
    parser.add_argument("--idle", type=float, default=600.0, help="exit after this idle time")
    parser.add_argument("--saved-states", type=int, default=4)
    return parser


def config_from_args(args: argparse.Namespace) -> HostConfig:
    layers: int | str = args.host_gpu_layers
    if isinstance(layers, str) and layers.lstrip("-").isdigit():
        layers = int(layers)
    return HostConfig(
        model_path=args.model_path,
        n_gpu_layers=layers,
        n_ctx=args.n_ctx,
        n_batch=args.n_batch,
        threads=args.host_threads,
        idle_s=args.idle,
        saved_states=args.saved_states,
    )


def command_line(config: HostConfig) -> list[str]:
    """How the shared engine starts a host for `config`."""
    line = [
        sys.executable,
        "-m",
        "copilot_server.engines.host",
        "--model-path",
        config.model_path,
        "--host-gpu-layers",
        str(config.n_gpu_layers),
        "--n-ctx",
        str(config.n_ctx),
        "--n-batch",
        str(config.n_batch),
        "--idle",
        str(config.idle_s),
        "--saved-states",
        str(config.saved_states),
    ]
    if config.threads:
        line += ["--host-threads", str(config.threads)]
    return line


def running_hosts() -> Iterator[Path]:
    """Sockets of hosts that may be running for this user."""
    try:
        yield from sorted(runtime_dir().glob("engine-*.sock"))
    except OSError:
        return


def register_cli(sub: argparse._SubParsersAction, common: Any) -> None:
    parser = sub.add_parser(
        "engine-host",
        help="serve the model to every copilot-server of this user (started on demand)",
    )
    parser.add_argument("--idle", type=float, default=None, help="exit after this idle time (s)")
    common(parser)
    parser.set_defaults(handler=_cli_engine_host)


def _cli_engine_host(args: argparse.Namespace, settings: Any) -> int:
    """`copilot-server engine-host`: the host for the settings' model, in the foreground."""
    from .models import ModelNotFoundError, resolve_model

    try:
        path = resolve_model(settings.model).path
    except ModelNotFoundError as exc:
        print(f"copilot-server: {exc}", file=sys.stderr)
        return 1
    config = HostConfig(
        model_path=str(path),
        n_gpu_layers=settings.model.n_gpu_layers,
        n_ctx=settings.model.n_ctx,
        n_batch=settings.model.n_batch,
        threads=settings.model.threads,
        idle_s=args.idle if args.idle is not None else settings.engine.host_idle_s,
        saved_states=settings.engine.host_saved_states,
    )
    return serve(config)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s engine-host %(levelname)s %(message)s"
    )
    return serve(config_from_args(args))


if __name__ == "__main__":
    sys.exit(main())
