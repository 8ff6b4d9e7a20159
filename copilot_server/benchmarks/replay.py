"""Typing replay: a user types real code, an editor asks for suggestions as it goes.

The user re-types a region of a real file (a function body of the Python standard
library by default) character by character: 60-120 ms a key, Enter puts the cursor on
the next line at its indentation (as an editor's auto-indent). Two kinds of pauses:

- look: the user stops and waits for a suggestion (at the start of every non-blank line,
  at ~8% of word boundaries and at ~4% of the letters inside a word), then reads it for
  250 ms and types on;
- hesitate: a 300-900 ms pause at ~15% of word boundaries and ~4% of letters inside a
  word; the user types on whether or not a suggestion came.

The client debounces like an editor (150 ms after the last keystroke) and sends
`textDocument/inlineCompletion`; a keystroke cancels a request still in flight
(`$/cancelRequest`, as VS Code does). Keystroke-to-suggestion latency is the time from
the last keystroke to the answer, debounce included. The same script (same seed) is
replayed against our server over stdio and against the naive client, one file after
the other, so both see the same positions and the same machine load.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import contextlib
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..stats import summary
from .common import first_line, rss_bytes, utf16_len
from .naive import NaiveClient

DEBOUNCE_MS = 150
KEY_MS = (60, 120)
READ_MS = 250
HESITATE_MS = (300, 900)
P_LOOK = 0.08
P_HESITATE = 0.15
# Pauses inside a word (after at least two of its letters, with more to come): where a
# suggestion must finish the word (token healing). Drawn from their own random stream, so
# the line-start and word-boundary pauses are those of earlier runs.
P_LOOK_MID = 0.04
P_HESITATE_MID = 0.04
MID_WORD_AFTER = 2
LOOK_CAP_S = 60.0  # a look waits at most this long for an answer
WORD_END = set(" ([{,.=:")


@dataclass(frozen=True)
class Region:
    path: Path
    text: str
    start: int  # first line typed (0-based)
    end: int  # line after the last one typed

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @property
    def name(self) -> str:
        return f"{self.path.name}:{self.start + 1}-{self.end}"


@dataclass
class Step:
    kind: str  # "key" | "enter" | "look" | "hesitate"
    delay_ms: float = 0.0  # before the step (keys), or the pause length (hesitate)
    text: str = ""  # inserted at the cursor (key, enter)
    target: str = ""  # look: the rest of the line as the file has it
    line_start: bool = False  # look: nothing typed on the line yet but its indentation
    mid_word: bool = False  # look/hesitate: inside a word


@dataclass
class Ask:
    """One inlineCompletion request the client sent."""

    kind: str  # "look" | "hesitate"
    line: int
    column: int
    latency_ms: float | None = None  # keystroke to answer (debounce included); None: no answer
    superseded: bool = False
    timed_out: bool = False
    text: str = ""
    target: str = ""
    line_start: bool = False
    mid_word: bool = False
    offset: int = 0  # the cursor in the document (characters)
    source: str = ""  # ours: "model" | "typed-through" | "lru" (from the item's command)

    @property
    def exact(self) -> bool:
        return bool(self.target.strip()) and first_line(self.text) == self.target.rstrip()


@dataclass
class ReplayRun:
    client: str
    region: str
    asks: list[Ask] = field(default_factory=list)
    wall_s: float = 0.0
    keystrokes: int = 0
    counters: dict[str, Any] = field(default_factory=dict)


# -- choosing what to type ---------------------------------------------------------------


def pick_regions(
    files: list[Path], count: int, lines: int, seed: int, min_line: int = 60
) -> list[Region]:
    """`count` regions of `lines` lines: the start of a function body (after its docstring),
    at least `min_line` lines into the file (so the prompt windows are full), lines of at
    most 88 characters, from different files."""
    rnd = random.Random(seed)
    candidates = list(files)
    rnd.shuffle(candidates)
    regions: list[Region] = []
    for path in candidates:
        if len(regions) >= count:
            break
        region = _region_in(path, lines, rnd, min_line)
        if region is not None:
            regions.append(region)
    return regions


def _region_in(path: Path, n_lines: int, rnd: random.Random, min_line: int) -> Region | None:
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None
    lines = text.split("\n")
    options = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not node.body:
            continue
        body = node.body
        if isinstance(body[0], ast.Expr) and isinstance(
            getattr(body[0], "value", None), ast.Constant
        ):
            body = body[1:]  # the docstring is not typed
        if not body:
            continue
        start = body[0].lineno - 1
        end = start + n_lines
        if start < min_line or end > (node.end_lineno or 0):
            continue
        chunk = lines[start:end]
        if any(len(line) > 88 or "\t" in line or not line.isascii() for line in chunk):
            continue
        if sum(1 for line in chunk if line.strip()) < n_lines * 0.7:
            continue
        options.append(start)
    if not options:
        return None
    start = rnd.choice(sorted(options))
    return Region(path, text, start, start + n_lines)


def initial_text(region: Region) -> str:
    """The file with the region's lines gone and the cursor's line holding its indentation."""
    lines = region.lines
    first = lines[region.start]
    indent = first[: len(first) - len(first.lstrip())]
    return "\n".join([*lines[: region.start], indent, *lines[region.end :]])


def typing_script(region: Region, seed: int) -> list[Step]:
    rnd = random.Random(f"{seed}:{region.name}")
    mid = random.Random(f"{seed}:{region.name}:mid-word")
    steps: list[Step] = []
    for i in range(region.start, region.end):
        line = region.lines[i]
        content = line.lstrip()
        indent = line[: len(line) - len(content)]
        if i > region.start:
            steps.append(Step("enter", rnd.uniform(*KEY_MS), "\n" + indent))
        if not content:
            continue
        steps.append(Step("look", target=content, line_start=True))
        word = 0  # letters of the current word typed so far
        for j, ch in enumerate(content):
            steps.append(Step("key", rnd.uniform(*KEY_MS), ch))
            word = word + 1 if _word_char(ch) else 0
            if word >= MID_WORD_AFTER and j + 1 < len(content) and _word_char(content[j + 1]):
                roll = mid.random()
                if roll < P_LOOK_MID:
                    steps.append(Step("look", target=content[j + 1 :], mid_word=True))
                elif roll < P_LOOK_MID + P_HESITATE_MID:
                    steps.append(Step("hesitate", rnd.uniform(*HESITATE_MS), mid_word=True))
                continue
            if ch in WORD_END and j + 1 < len(content):
                roll = rnd.random()
                if roll < P_LOOK:
                    steps.append(Step("look", target=content[j + 1 :]))
                elif roll < P_LOOK + P_HESITATE:
                    steps.append(Step("hesitate", rnd.uniform(*HESITATE_MS)))
    return steps


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


# -- the two clients ---------------------------------------------------------------------


class Backend:
    """What the replay needs from a client: open, type, ask, cancel."""

    name = ""

    async def open(self, uri: str, text: str) -> None: ...

    def change(self, line: int, column: int, text: str) -> None: ...

    def ask(
        self, line: int, column: int, offset: int
    ) -> tuple[Any, Awaitable[tuple[str, str]]]: ...

    def cancel(self, handle: Any) -> None: ...

    async def close_document(self, uri: str) -> None: ...


class NaiveBackend(Backend):
    name = "naive"

    def __init__(self, client: NaiveClient) -> None:
        self.client = client
        self.text = ""
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="naive"
        )
        self.requests = 0
        self.prompt_tokens = 0
        self.tokens_generated = 0

    async def open(self, uri: str, text: str) -> None:
        self.text = text

    def change(self, line: int, column: int, text: str) -> None:
        offset = _offset(self.text, line, column)
        self.text = self.text[:offset] + text + self.text[offset:]

    def ask(self, line: int, column: int, offset: int) -> tuple[Any, Awaitable[tuple[str, str]]]:
        cancel = threading.Event()
        snapshot = self.text
        self.requests += 1

        def run() -> tuple[str, str]:
            result = self.client.complete(snapshot, offset, cancel)
            self.prompt_tokens += result.prompt_tokens
            self.tokens_generated += result.tokens_generated
            if result.cancelled:
                raise _Cancelled
            return result.text, "model"

        future = asyncio.get_running_loop().run_in_executor(self.executor, run)
        return cancel, future

    def cancel(self, handle: Any) -> None:
        handle.set()

    def counters(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "model_calls": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "prompt_tokens_evaluated": self.prompt_tokens,
            "tokens_generated": self.tokens_generated,
        }


class _Cancelled(Exception):
    pass


class ServerBackend(Backend):
    """Our server as an editor sees it: `copilot-server --stdio`, JSON-RPC over pipes."""

    name = "ours"

    def __init__(self, model_path: Path, threads: int, workspace: Path, log_path: Path) -> None:
        self.model_path = model_path
        self.threads = threads
        self.workspace = workspace
        self.log_path = log_path
        self.client: Any = None
        self.uri = ""
        self.version = 1
        self._ids = 0
        self._drain: asyncio.Task | None = None

    async def start(self) -> None:
        from lsprotocol import types
        from pygls.lsp.client import LanguageClient

        from ..logs import add_traffic_logger

        add_traffic_logger("pygls")  # the client's JSON-RPC traffic follows our log level
        client = LanguageClient("copilot-server-bench", "1")

        @client.feature("copilot/status")
        def _status(params: Any) -> None:
            pass

        @client.feature(types.WINDOW_LOG_MESSAGE)
        def _log(params: Any) -> None:
            pass

        @client.feature(types.WINDOW_SHOW_MESSAGE)
        def _show(params: Any) -> None:
            pass

        await client.start_io(sys.executable, "-m", "copilot_server", "--stdio")
        self.client = client
        self._drain = asyncio.create_task(_drain(client._server.stderr, self.log_path))
        caps = types.ClientCapabilities(
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities(),
                synchronization=types.TextDocumentSyncClientCapabilities(),
            ),
            general=types.GeneralClientCapabilities(
                position_encodings=[types.PositionEncodingKind.Utf16]
            ),
        )
        # In process unless a caller picks the engine (the shared-engine bench does): the
        # replay's memory figure is then this process, model included.
        options = {
            "model": {"path": str(self.model_path), "threads": self.threads, "nGpuLayers": 0},
            "engine": {"kind": os.environ.get("COPILOT_SERVER_ENGINE", "local")},
        }
        uri = self.workspace.as_uri()
        await client.initialize_async(
            types.InitializeParams(
                capabilities=caps,
                process_id=None,
                root_uri=uri,
                workspace_folders=[types.WorkspaceFolder(uri=uri, name="bench")],
                initialization_options=options,
            )
        )
        client.initialized(types.InitializedParams())
        deadline = time.monotonic() + 300
        while (await self.status())["state"] == "loading":
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not load the model within 5 minutes")
            await asyncio.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.client._server.pid

    async def status(self) -> dict[str, Any]:
        from lsprotocol import types

        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="copilot.status", arguments=[])
        )

    async def open(self, uri: str, text: str) -> None:
        from lsprotocol import types

        self.uri = uri
        self.version = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=text
                )
            )
        )

    def change(self, line: int, column: int, text: str) -> None:
        from lsprotocol import types

        self.version += 1
        pos = types.Position(line=line, character=column)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=self.uri, version=self.version
                ),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=pos, end=pos), text=text
                    )
                ],
            )
        )

    def ask(self, line: int, column: int, offset: int) -> tuple[Any, Awaitable[tuple[str, str]]]:
        from lsprotocol import types

        self._ids += 1
        msg_id = f"bench-{self._ids}"
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri),
            position=types.Position(line=line, character=column),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
        future = self.client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id
        )

        async def answer() -> tuple[str, str]:
            result = await asyncio.wrap_future(future)
            items = (
                result.items if isinstance(result, types.InlineCompletionList) else (result or [])
            )
            if not items:
                return "", ""
            item = items[0]
            text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
            args = item.command.arguments if item.command and item.command.arguments else [{}]
            source = args[0].get("source", "") if isinstance(args[0], dict) else ""
            return text, source

        return msg_id, answer()

    def cancel(self, handle: Any) -> None:
        from lsprotocol import types

        self.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=handle))

    async def close_document(self, uri: str) -> None:
        from lsprotocol import types

        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )

    def memory(self) -> dict[str, int]:
        return rss_bytes(self.pid)

    async def stop(self) -> None:
        if self.client is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.shutdown_async(None), 10)
            self.client.exit(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.stop(), 10)
        if self._drain is not None:
            self._drain.cancel()


async def _drain(stream: asyncio.StreamReader | None, path: Path) -> None:
    """Keep the server's stderr flowing (a full pipe would block its logging) into a file."""
    if stream is None:
        return
    with path.open("ab") as out:
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                return
            out.write(chunk)
            out.flush()


# -- the replay itself -------------------------------------------------------------------


async def replay(backend: Backend, region: Region, seed: int, uri: str) -> ReplayRun:
    """Type `region` into `backend` in real time; every ask is recorded."""
    text = initial_text(region)
    lines = text.split("\n")
    line = region.start
    column = utf16_len(lines[line])
    offset = sum(len(x) + 1 for x in lines[:line]) + len(lines[line])
    await backend.open(uri, text)
    run = ReplayRun(client=backend.name, region=region.name)
    last_key = time.perf_counter()
    pending: tuple[Ask, Any, asyncio.Future] | None = None
    started = time.perf_counter()

    def launch(
        kind: str, target: str = "", line_start: bool = False, mid_word: bool = False
    ) -> tuple[Ask, Any, asyncio.Future]:
        ask = Ask(
            kind,
            line,
            column,
            target=target,
            line_start=line_start,
            mid_word=mid_word,
            offset=offset,
        )
        key_time = last_key
        handle, answer = backend.ask(line, column, offset)
        task = asyncio.ensure_future(answer)

        def done(t: asyncio.Future) -> None:
            if ask.superseded:
                return  # the user typed on before it came: never shown
            if t.cancelled() or t.exception() is not None:
                ask.superseded = True
                return
            ask.latency_ms = (time.perf_counter() - key_time) * 1000
            ask.text, ask.source = t.result()

        task.add_done_callback(done)
        run.asks.append(ask)
        return ask, handle, task

    def settle(entry: tuple[Ask, Any, asyncio.Future] | None) -> None:
        """Before a keystroke: a request still in flight is cancelled (superseded); the
        user does not wait for the cancellation to land."""
        if entry is None:
            return
        ask, handle, task = entry
        if not task.done():
            ask.superseded = True
            backend.cancel(handle)
            task.add_done_callback(_consume)

    for step in typing_script(region, seed):
        if step.kind in ("key", "enter"):
            await _sleep_until(last_key + step.delay_ms / 1000)
            settle(pending)
            pending = None
            backend.change(line, column, step.text)
            last_key = time.perf_counter()
            run.keystrokes += 1
            offset += len(step.text)
            if step.kind == "enter":
                line += 1
                column = utf16_len(step.text[1:])
            else:
                column += utf16_len(step.text)
        elif step.kind == "hesitate":
            await _sleep_until(last_key + DEBOUNCE_MS / 1000)
            pending = launch("hesitate", mid_word=step.mid_word)
            await _sleep_until(last_key + step.delay_ms / 1000)
        else:  # look: wait for the answer, then read it
            await _sleep_until(last_key + DEBOUNCE_MS / 1000)
            ask, handle, task = launch("look", step.target, step.line_start, step.mid_word)
            try:
                await asyncio.wait_for(asyncio.shield(task), LOOK_CAP_S)
            except TimeoutError:
                ask.timed_out = True
                settle((ask, handle, task))
            except Exception:
                pass
            await asyncio.sleep(READ_MS / 1000)
            last_key = time.perf_counter()  # the next key's delay counts from here
    settle(pending)
    await backend.close_document(uri)
    run.wall_s = time.perf_counter() - started
    return run


def _consume(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()  # a cancelled request's error is expected; do not log it


async def _sleep_until(when: float) -> None:
    delay = when - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


def _offset(text: str, line: int, column: int) -> int:
    start = 0
    for _ in range(line):
        start = text.index("\n", start) + 1
    # Columns are UTF-16 units; the replayed regions are ASCII, so units are characters.
    return start + column


# -- running both clients ----------------------------------------------------------------


async def run_replay(
    regions: list[Region],
    model_path: Path,
    threads: int,
    seed: int,
    out_dir: Path,
    naive: NaiveClient | None,
    progress=print,  # noqa: ANN001
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="copilot-bench-") as tmp:
        workspace = Path(tmp)
        server = ServerBackend(model_path, threads, workspace, out_dir / "server.log")
        load_started = time.perf_counter()
        await server.start()
        load_s = time.perf_counter() - load_started
        naive_backend = NaiveBackend(naive) if naive is not None else None
        runs: list[ReplayRun] = []
        try:
            for region in regions:
                local = workspace / region.path.name
                local.write_text(initial_text(region), encoding="utf-8")
                uri = local.as_uri()
                before = (await server.status())["metrics"]
                run = await replay(server, region, seed, uri)
                after = (await server.status())["metrics"]
                run.counters = _diff(before, after)
                runs.append(run)
                progress(f"  typing {region.name}: ours {_brief(run)}")
                if naive_backend is not None:
                    nrun = await replay(naive_backend, region, seed, uri)
                    nrun.counters = naive_backend.counters()
                    naive_backend.requests = naive_backend.prompt_tokens = 0
                    naive_backend.tokens_generated = 0
                    runs.append(nrun)
                    progress(f"  typing {region.name}: naive {_brief(nrun)}")
            final = await server.status()
            memory = server.memory()
        finally:
            await server.stop()
            if naive_backend is not None:
                naive_backend.executor.shutdown(wait=True)
    counter = (lambda text: len(naive._tok(text))) if naive is not None else None
    metrics = final.get("metrics", {})
    return summarize(runs, metrics, memory, model_path.stat().st_size, load_s, counter)


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in after.items():
        if (
            isinstance(value, int | float)
            and isinstance(before.get(key), int | float)
            and not key.startswith("server_ms")
        ):
            out[key] = value - before[key]
        else:
            out[key] = value
    return out


def _brief(run: ReplayRun) -> str:
    looks = [a.latency_ms for a in run.asks if a.kind == "look" and a.latency_ms is not None]
    s = summary(looks)
    p50 = f"{s['p50']:.0f}" if s["p50"] is not None else "-"
    p95 = f"{s['p95']:.0f}" if s["p95"] is not None else "-"
    exact = sum(a.exact for a in run.asks if a.kind == "look")
    return f"{len(looks)} looks p50 {p50} ms p95 {p95} ms, exact {exact}, {run.wall_s:.0f} s"


def summarize(
    runs: list[ReplayRun],
    metrics: dict[str, Any],
    memory: dict[str, int],
    model_bytes: int,
    load_s: float,
    count_tokens: Callable[[str], int] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"clients": {}, "regions": sorted({r.region for r in runs})}
    for client in ("ours", "naive"):
        mine = [r for r in runs if r.client == client]
        if not mine:
            continue
        asks = [a for r in mine for a in r.asks]
        looks = [a for a in asks if a.kind == "look"]
        line_starts = [a for a in looks if a.line_start]
        mid_words = [a for a in looks if a.mid_word]
        hesitations = [a for a in asks if a.kind == "hesitate"]
        answered = [a.latency_ms for a in asks if a.latency_ms is not None]
        counters: dict[str, Any] = {}
        for r in mine:
            for key, value in r.counters.items():
                if isinstance(value, int | float) and not key.startswith("server_ms"):
                    counters[key] = counters.get(key, 0) + value
        entry = {
            "look_latency_ms": summary([a.latency_ms for a in looks if a.latency_ms is not None]),
            "answered_latency_ms": summary(answered),
            "looks": len(looks),
            "looks_timed_out": sum(a.timed_out for a in looks),
            "first_line_exact": _rate([a.exact for a in looks]),
            "first_line_exact_at_line_start": _rate([a.exact for a in line_starts]),
            "first_line_exact_mid_word": _rate([a.exact for a in mid_words]),
            "looks_mid_word": len(mid_words),
            "hesitations": len(hesitations),
            "hesitations_answered_in_time": sum(a.latency_ms is not None for a in hesitations),
            "requests": len(asks),
            "superseded": sum(a.superseded for a in asks),
            "empty_answers": sum(
                1 for a in asks if a.latency_ms is not None and not a.text.strip()
            ),
            "keystrokes": sum(r.keystrokes for r in mine),
            "wall_s": sum(r.wall_s for r in mine),
            "counters": counters,
            "latencies_look_ms": [a.latency_ms for a in looks if a.latency_ms is not None],
            "asks": [a.__dict__ | {"exact": a.exact} for a in asks],
        }
        evaluated = counters.get("prompt_tokens_evaluated")
        total = counters.get("prompt_tokens")
        entry["prompt_evaluated_share"] = (evaluated / total) if total else None
        calls = counters.get("model_calls") or 0
        entry["prompt_tokens_evaluated_per_call"] = (evaluated / calls) if calls else None
        entry["prompt_tokens_per_call"] = (total / calls) if calls else None
        gen = counters.get("tokens_generated")
        shown = shown_tokens(mine, count_tokens) if count_tokens is not None else None
        entry["tokens_generated"] = gen
        entry["tokens_shown"] = shown
        entry["shown_share"] = (shown / gen) if gen and shown is not None else None
        out["clients"][client] = entry
    ours = out["clients"].get("ours")
    if ours is not None:
        ours["server_ms"] = {k: v for k, v in metrics.items() if k.startswith("server_ms")}
        ours["memory"] = {
            "rss_bytes": memory.get("VmRSS"),
            "peak_rss_bytes": memory.get("VmHWM"),
            "model_bytes": model_bytes,
            "over_model_bytes": (memory.get("VmRSS") or 0) - model_bytes,
        }
        ours["server_start_s"] = load_s
    return out


def shown_tokens(runs: list[ReplayRun], count: Callable[[str], int]) -> int:
    """Tokens of suggestion text that reached the screen, each counted once: an answer
    from the typed-through cache repeats the rest of the previous one and counts only
    what it adds (the rest of a block whose first line was answered early)."""
    total = 0
    for run in runs:
        previous: Ask | None = None
        for ask in run.asks:
            if ask.latency_ms is None or not ask.text:
                continue
            new = ask.text
            if ask.source == "typed-through" and previous is not None:
                rest = previous.text[ask.offset - previous.offset :]
                new = ask.text[len(rest) :] if ask.text.startswith(rest) else ask.text
            total += count(new) if new else 0
            previous = ask
    return total


def _rate(flags: list[bool]) -> float | None:
    return (sum(flags) / len(flags)) if flags else None
