"""Hostile and random input for the server, shared by tests/fuzz and benchmarks/soak.py.

- A reference implementation of LSP incremental document sync, written from the
  specification and on purpose independent of `copilot_server.documents`/`positions`:
  UTF-8/UTF-16/UTF-32 columns, lines ended by LF, CRLF or CR only (not FF, VT, U+2028,
  NEL ...), a column past a line's end meaning the line's end and a line past the last
  meaning the document's end. A lone surrogate counts 1 UTF-16 unit and 3 UTF-8 bytes.
- Random documents and edit sequences that stress exactly those rules.
- Malformed and random JSON-RPC frames, each with what the server owes in return.
- `RawClient`: a JSON-RPC client over a real server's stdio that does its own framing,
  so it can send anything, and records every reply, notification and stderr byte.
"""

from __future__ import annotations

import json
import os
import queue
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# -- the reference ----------------------------------------------------------------------------


def unit_width(ch: str, encoding: str) -> int:
    """How many code units `ch` is in `encoding` (utf-8, utf-16 or utf-32)."""
    code = ord(ch)
    if encoding == "utf-32":
        return 1
    if encoding == "utf-16":
        return 2 if code >= 0x10000 else 1
    if code < 0x80:
        return 1
    if code < 0x800:
        return 2
    if code < 0x10000:
        return 3  # lone surrogates included (WTF-8)
    return 4


def line_spans(text: str) -> list[tuple[int, int]]:
    """(start, end of content) of every line; only LF, CRLF and CR end a line in LSP."""
    spans = []
    start = i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\n" or ch == "\r":
            spans.append((start, i))
            i += 2 if ch == "\r" and text[i + 1 : i + 2] == "\n" else 1
            start = i
        else:
            i += 1
    spans.append((start, len(text)))
    return spans


def reference_offset(text: str, line: int, character: int, encoding: str) -> int:
    spans = line_spans(text)
    if line >= len(spans):
        return len(text)  # past the last line: the document's end
    start, end = spans[line]
    units = 0
    for index in range(start, end):
        width = unit_width(text[index], encoding)
        if units + width > character:
            return index  # inside a character: its start
        units += width
    return end  # past the line's end: the line's end


def reference_apply(text: str, change: dict[str, Any], encoding: str) -> str:
    """Apply one TextDocumentContentChangeEvent (as JSON) to `text`."""
    rng = change.get("range")
    if rng is None:
        return change["text"]
    a = reference_offset(text, rng["start"]["line"], rng["start"]["character"], encoding)
    b = reference_offset(text, rng["end"]["line"], rng["end"]["character"], encoding)
    a, b = min(a, b), max(a, b)
    return text[:a] + change["text"] + text[b:]


def units_of(text: str, encoding: str) -> int:
    return sum(unit_width(ch, encoding) for ch in text)


# -- random documents and edits ---------------------------------------------------------------

# Characters that broke document sync before: line ends LSP has and those it has not
# (FF, VT, NEL, U+2028/9, FS/GS/RS split lines for str.splitlines only), multi-unit text.
PIECES_PLAIN = ["a", "b", "x = 1", " ", "    ", "\t", "(", ")", ":", "def f():", "é", "ß"]
PIECES_LINES = ["\n", "\n", "\r\n", "\r"]
PIECES_TRICKY = ["\x0c", "\x0b", "\x85", "\u2028", "\u2029", "\x1c", "\x1d", "\x1e"]
PIECES_WIDE = ["👍", "😀", "世界", "漢", "🇫🇷", "\u0301"]
PIECES_SURROGATES = ["\ud800", "\udfff", "\udc00", "\ud83d"]


def random_text(rng: random.Random, pieces: int, surrogates: bool) -> str:
    choices = PIECES_PLAIN * 3 + PIECES_LINES * 2 + PIECES_TRICKY + PIECES_WIDE
    if surrogates:
        choices = choices + PIECES_SURROGATES
    text = "".join(rng.choice(choices) for _ in range(pieces))
    # What the server receives: JSON makes one character of a high and a low surrogate.
    return json.loads(json.dumps(text))


def same_text(a: str, b: str) -> bool:
    """Equal as UTF-16 (an editor's text): two lone surrogates side by side, joined by an
    edit, are the pair JSON turns them into on the way back."""
    return a == b or a.encode("utf-16-le", "surrogatepass") == b.encode(
        "utf-16-le", "surrogatepass"
    )


def _random_position(rng: random.Random, text: str, encoding: str) -> tuple[int, int]:
    spans = line_spans(text)
    line = rng.randrange(len(spans) + 2)  # sometimes past the last line
    if line < len(spans):
        start, end = spans[line]
        width = units_of(text[start:end], encoding)
    else:
        width = 0
    roll = rng.random()
    if roll < 0.1:
        return line, width + rng.randrange(1, 5)  # past the line's end
    if roll < 0.2:
        return line, width
    return line, rng.randrange(width + 1)


def random_change(rng: random.Random, text: str, encoding: str, surrogates: bool) -> dict:
    if rng.random() < 0.03:
        return {"text": random_text(rng, rng.randrange(0, 30), surrogates)}
    a = _random_position(rng, text, encoding)
    b = a if rng.random() < 0.5 else _random_position(rng, text, encoding)
    if reference_offset(text, *b, encoding) < reference_offset(text, *a, encoding):
        a, b = b, a
    new = random_text(rng, rng.choice([0, 1, 1, 1, 2, 3, 8]), surrogates)
    return {
        "range": {
            "start": {"line": a[0], "character": a[1]},
            "end": {"line": b[0], "character": b[1]},
        },
        "text": new,
    }


@dataclass
class EditSequence:
    """A document's text at open and its didChange notifications (each a list of changes),
    with the text the editor has after each notification."""

    uri: str
    text: str
    notifications: list[list[dict]]
    expected: list[str]


def random_sequence(
    rng: random.Random, uri: str, encoding: str, steps: int, surrogates: bool
) -> EditSequence:
    text = random_text(rng, rng.randrange(0, 60), surrogates)
    current = text
    notifications, expected = [], []
    for _ in range(steps):
        changes = []
        for _ in range(rng.choice([1, 1, 1, 2, 3, 4])):  # several changes per notification
            change = random_change(rng, current, encoding, surrogates)
            current = reference_apply(current, change, encoding)
            changes.append(change)
        notifications.append(changes)
        expected.append(current)
    return EditSequence(uri, text, notifications, expected)


# -- malformed frames -----------------------------------------------------------------------


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def encode(message: Any) -> bytes:
    # allow_nan: NaN and Infinity are not JSON, which is the point of some frames.
    return json.dumps(message, allow_nan=True).encode("utf-8")


@dataclass
class FuzzFrame:
    data: bytes
    # Ids that must each get exactly one answer; `null_answers`: answers with id null owed.
    answer_ids: list[Any] = field(default_factory=list)
    null_answers: int = 0
    kind: str = ""


_ODD_VALUES: list[Any] = [
    None,
    -1,
    2**31,
    2**63,
    -(2**70),
    1.5,
    float("nan"),
    float("inf"),
    "",
    "0",
    "x" * 300,
    [],
    [1, 2],
    {},
    {"a": {"b": []}},
    True,
    False,
    "\ud800",
]


def _request_templates(uri: str) -> list[tuple[str, dict]]:
    pos = {"line": 0, "character": 1}
    rng = {"start": pos, "end": {"line": 1, "character": 0}}
    doc = {"uri": uri}
    return [
        (
            "textDocument/inlineCompletion",
            {"textDocument": doc, "position": pos, "context": {"triggerKind": 2}},
        ),
        ("textDocument/completion", {"textDocument": doc, "position": pos}),
        (
            "textDocument/codeAction",
            {
                "textDocument": doc,
                "range": rng,
                "context": {"diagnostics": [], "only": ["quickfix"]},
            },
        ),
        (
            "workspace/executeCommand",
            {"command": "copilot.explain", "arguments": [{"uri": uri, "range": rng}]},
        ),
        ("workspace/executeCommand", {"command": "copilot.status", "arguments": []}),
        (
            "workspace/executeCommand",
            {"command": "copilot.acceptedSuggestion", "arguments": [{"length": 3}]},
        ),
        (
            "codeAction/resolve",
            {
                "title": "fix",
                "data": {"kind": "copilot.fix", "uri": uri, "version": 1, "startLine": 0},
            },
        ),
        ("textDocument/hover", {"textDocument": doc, "position": pos}),
        ("copilot/unknown", {"x": 1}),
    ]


def _notification_templates(uri: str) -> list[tuple[str, dict]]:
    return [
        (
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": 2},
                "contentChanges": [
                    {
                        "range": {
                            "start": {"line": 0, "character": 0},
                            "end": {"line": 0, "character": 0},
                        },
                        "text": "x",
                    }
                ],
            },
        ),
        ("$/cancelRequest", {"id": 1}),
        ("$/setTrace", {"value": "off"}),
        ("workspace/didChangeConfiguration", {"settings": {"copilotServer": {"logLevel": "info"}}}),
        ("textDocument/didClose", {"textDocument": {"uri": uri + ".closed"}}),
    ]


def _mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """Replace, drop or add one field somewhere in `value`."""
    if isinstance(value, dict) and value and depth < 6:
        key = rng.choice(list(value))
        out = dict(value)
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.25:
            out[rng.choice(["extra", "__proto__", "id", "jsonrpc"])] = rng.choice(_ODD_VALUES)
        elif roll < 0.65 and isinstance(value[key], dict | list):
            out[key] = _mutate(rng, value[key], depth + 1)
        else:
            out[key] = rng.choice(_ODD_VALUES)
        return out
    if isinstance(value, list) and value and depth < 6:
        out_list = list(value)
        index = rng.randrange(len(out_list))
        out_list[index] = _mutate(rng, out_list[index], depth + 1)
        return out_list
    return rng.choice(_ODD_VALUES)


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (type(value) is int)


def random_frames(rng: random.Random, count: int, uri: str, first_id: int) -> Iterator[FuzzFrame]:
    """`count` frames, mostly well-framed messages with malformed content, some broken
    framing; each says which answers it is owed. Ids start at `first_id`, all distinct."""
    next_id = first_id
    requests = _request_templates(uri)
    notifications = _notification_templates(uri)
    for _ in range(count):
        next_id += 1
        roll = rng.random()
        method, params = rng.choice(requests)
        if roll < 0.45:  # a request with one field malformed
            message: dict[str, Any] = {
                "jsonrpc": "2.0",
                "id": next_id,
                "method": method,
                "params": params,
            }
            message = {**message, "params": _mutate(rng, params)}
            yield FuzzFrame(frame(encode(message)), [next_id], kind="bad-params")
        elif roll < 0.55:  # the envelope malformed: id, method, jsonrpc
            message = {"jsonrpc": "2.0", "id": next_id, "method": method, "params": params}
            key = rng.choice(["id", "id", "method", "jsonrpc", "params"])
            message[key] = rng.choice(_ODD_VALUES + ["x" * 100_000])
            if key == "id" and _valid_id(message["id"]):
                message["id"] = _unique(message["id"], next_id)  # odd, but still one per frame
            if rng.random() < 0.2:
                del message[key]
            yield FuzzFrame(frame(encode(message)), *_owed(message), kind=f"bad-{key}")
        elif roll < 0.62:  # a notification with malformed params: no answer owed
            method, params = rng.choice(notifications)
            message = {"jsonrpc": "2.0", "method": method, "params": _mutate(rng, params)}
            yield FuzzFrame(frame(encode(message)), kind="bad-notification")
        elif roll < 0.67:  # a batch
            batch = [
                {"jsonrpc": "2.0", "id": next_id, "method": method, "params": params},
                {"jsonrpc": "2.0", "method": "$/setTrace", "params": {"value": "off"}},
            ]
            if rng.random() < 0.3:
                batch = []
            yield FuzzFrame(
                frame(encode(batch)),
                [next_id] if batch else [],
                0 if batch else 1,
                kind="batch",
            )
        elif roll < 0.75:  # not JSON, or not an object
            body = rng.choice(
                [
                    b"{",
                    b"null",
                    b"42",
                    b'"text"',
                    b"[1, 2",
                    b"\xff\xfe\x00garbage",
                    bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))),
                    b"[" * 100_000,
                    b'{"jsonrpc": "2.0", "id": 1e400, "method": "shutdown"}',
                ]
            )
            yield FuzzFrame(frame(body), null_answers=1, kind="not-json")
        elif roll < 0.8:  # JSON's non-numbers where numbers go
            body = (
                b'{"jsonrpc": "2.0", "id": %d, "method": "textDocument/inlineCompletion", '
                b'"params": {"textDocument": {"uri": "%s"}, "position": {"line": NaN, '
                b'"character": Infinity}, "context": {"triggerKind": 1}}}' % (next_id, uri.encode())
            )
            yield FuzzFrame(frame(body), [next_id], kind="nan")
        elif roll < 0.85:  # a Content-Length shorter than the body: the rest is garbage
            body = encode({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params})
            cut = rng.randrange(1, len(body))
            data = b"Content-Length: %d\r\n\r\n" % cut + body
            yield FuzzFrame(data, null_answers=1, kind="short-length")
        elif roll < 0.88:  # a Content-Length over the server's limit, or garbage headers
            data = rng.choice(
                [
                    b"Content-Length: 1000000000000\r\n\r\n",
                    b"Content-Length: 99999999999999999999999\r\n\r\n",
                    b"Content-Type: text/plain\r\n\r\n",
                    b"Content-Length: -5\r\n\r\n",
                    b"garbage without a header at all ",
                ]
            )
            yield FuzzFrame(data, kind="bad-header")
        elif roll < 0.9:  # a long method name (used to be kept in a cache)
            message = {"jsonrpc": "2.0", "id": next_id, "method": "m" * rng.choice([300, 100_000])}
            yield FuzzFrame(frame(encode(message)), [next_id], kind="long-method")
        else:  # a well-formed request, answered normally
            message = {"jsonrpc": "2.0", "id": next_id, "method": method, "params": params}
            yield FuzzFrame(frame(encode(message)), [next_id], kind="valid")


def _unique(odd_id: Any, serial: int) -> Any:
    if isinstance(odd_id, str):
        return f"{odd_id}{serial}"
    return odd_id + serial if odd_id >= 0 else odd_id - serial


def _owed(message: dict) -> tuple[list[Any], int]:
    """What a request with a malformed envelope is owed: an answer to its id when the id
    is usable, else one answer with id null; nothing for a notification."""
    if "id" not in message:
        return [], 0
    if "method" not in message:
        return [], 0  # looks like a reply: nothing owed
    if _valid_id(message["id"]):
        return [message["id"]], 0
    return [], 1


# -- a raw client ---------------------------------------------------------------------------


def server_env(tmp: Path, **extra: str) -> dict[str, str]:
    """An environment for a test server: no user config, the debug command on."""
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = str(tmp / "config")
    env["COPILOT_SERVER_DEBUG"] = "1"
    env.pop("COPILOT_SERVER_MODEL", None)
    env.update(extra)
    return env


class RawClient:
    """A JSON-RPC client over a real server's stdio, with its own framing."""

    def __init__(
        self, args: list[str], env: dict[str, str], stderr_path: Path, cwd: str | None = None
    ) -> None:
        self._stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed in close()
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "copilot_server", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd=cwd,
        )
        self._lock = threading.Condition()
        self.answers: dict[Any, list[dict]] = defaultdict(list)
        self.answer_times: dict[Any, float] = {}
        self.sent_times: dict[Any, float] = {}
        self.null_answers: list[dict] = []
        self.notifications: list[tuple[float, str, Any]] = []
        self.server_requests: list[dict] = []
        self.auto_reply = True  # answer the server's requests (configuration, progress)
        # Writes go through one thread: a writer blocked on a full pipe must never stop
        # the reader (the server would block on its own full stdout: a deadlock).
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._writer.start()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next_id = 0

    # reading ------------------------------------------------------------------------------

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length is None:
                continue
            body = stream.read(length)
            message = json.loads(body)
            self._received(message)

    def _received(self, message: dict) -> None:
        now = time.monotonic()
        if "method" in message and "id" in message:
            self.server_requests.append(message)
            if self.auto_reply:
                items = (message.get("params") or {}).get("items")
                result = (
                    [None] * len(items) if message["method"] == "workspace/configuration" else None
                )
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": result})
            return
        with self._lock:
            if "method" in message:
                self.notifications.append((now, message["method"], message.get("params")))
            elif message.get("id") is None:
                self.null_answers.append(message)
            else:
                self.answers[message["id"]].append(message)
                self.answer_times.setdefault(message["id"], now)
            self._lock.notify_all()

    # writing ------------------------------------------------------------------------------

    def _write(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        while (data := self._outbox.get()) is not None:
            try:
                stdin.write(data)
                stdin.flush()
            except (OSError, ValueError):  # the server is gone; the caller sees it exit
                return

    def send_bytes(self, data: bytes) -> None:
        self._outbox.put(data)

    def drain(self, timeout: float = 60.0) -> None:
        """Waits until everything queued has been written to the server."""
        deadline = time.monotonic() + timeout
        while not self._outbox.empty() and time.monotonic() < deadline:
            time.sleep(0.01)

    def send(self, message: Any) -> None:
        self.send_bytes(frame(encode(message)))

    def new_id(self) -> str:
        self._next_id += 1
        return f"c{self._next_id}"

    def request_async(self, method: str, params: Any = None) -> str:
        msg_id = self.new_id()
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.sent_times[msg_id] = time.monotonic()
        self.send(message)
        return msg_id

    def wait(self, msg_id: Any, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self.answers.get(msg_id):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"no answer to {msg_id!r} within {timeout} s")
                self._lock.wait(min(left, 0.5))
            return self.answers[msg_id][0]

    def wait_all(self, ids: list[Any], timeout: float) -> list[Any]:
        """Waits until every id is answered or the time is up; returns the unanswered."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                missing = [i for i in ids if not self.answers.get(i)]
                left = deadline - time.monotonic()
                if not missing or left <= 0 or self.proc.poll() is not None:
                    return missing
                self._lock.wait(min(left, 0.5))

    def request(self, method: str, params: Any = None, timeout: float = 30.0) -> dict:
        return self.wait(self.request_async(method, params), timeout)

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    # LSP --------------------------------------------------------------------------------

    def initialize(self, encodings: list[str] | None = None, options: Any = None) -> dict:
        caps: dict[str, Any] = {
            "textDocument": {"inlineCompletion": {}, "synchronization": {}},
            "window": {"workDoneProgress": True},
            "workspace": {"configuration": True},
        }
        if encodings is not None:
            caps["general"] = {"positionEncodings": encodings}
        params = {"processId": None, "rootUri": None, "capabilities": caps}
        if options is not None:
            params["initializationOptions"] = options
        answer = self.request("initialize", params, timeout=60)
        self.notify("initialized", {})
        return answer

    def open(self, uri: str, text: str, language: str = "python", version: int = 1) -> None:
        self.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": uri,
                    "languageId": language,
                    "version": version,
                    "text": text,
                }
            },
        )

    def change(self, uri: str, version: int, changes: list[dict]) -> None:
        self.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": changes},
        )

    def server_text_async(self, uri: str) -> str:
        return self.request_async(
            "workspace/executeCommand",
            {"command": "copilot.debugDocument", "arguments": [{"uri": uri}]},
        )

    # the end ------------------------------------------------------------------------------

    def popups(self) -> list[tuple[float, str]]:
        with self._lock:
            return [
                (t, (p or {}).get("message", ""))
                for t, m, p in self.notifications
                if m == "window/showMessage"
            ]

    def close(self, timeout: float = 10.0) -> int | None:
        try:
            if self.proc.poll() is None:
                self.request_async("shutdown")
                self.notify("exit")
                self.proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.proc.wait()
        finally:
            self._outbox.put(None)
            self._stderr.close()
        return self.proc.returncode


def max_popups_per_minute(popups: list[tuple[float, str]]) -> int:
    """The most times one message was shown within any 60 s window."""
    worst = 0
    by_message: dict[str, list[float]] = defaultdict(list)
    for when, message in popups:
        by_message[message].append(when)
    for times in by_message.values():
        times.sort()
        start = 0
        for end, t in enumerate(times):
            while t - times[start] >= 60:
                start += 1
            worst = max(worst, end - start + 1)
    return worst


def error_codes(client: RawClient, ids: list[Any]) -> Counter:
    """How the given requests were answered: 'result' or the error code."""
    out: Counter = Counter()
    for msg_id in ids:
        for answer in client.answers.get(msg_id, []):
            out["result" if "result" in answer else answer["error"]["code"]] += 1
    return out


def proc_status(pid: int) -> dict[str, int]:
    """RSS (kB) and thread count of a process, from /proc (Linux)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out
