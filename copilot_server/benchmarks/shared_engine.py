"""Many editor windows, one model: what the shared engine host costs and saves, measured
against the in-process engine in the same run (issue 16).

    python -m copilot_server.benchmarks.shared_engine [--quick] [--out DIR]

1. memory: three LSP servers on three workspaces with `engine.kind = "shared"` (one host)
   and, for comparison, three with `local`; summed RSS against model file + 3 x 200 MB;
2. typing replay (benchmarks/replay.py) through an in-process server and through a
   shared one, the same regions: look-latency p50 and p95 and their ratio (bar 1.2);
3. two servers typing at once through one host: both answered; queue time per answered
   completion in the host (bar: none over 2 s);
4. the host killed with SIGKILL mid-generation: when each in-flight request is answered
   (bar 2 s) and when the next one is, by a new host;
5. switching documents: prompt time when the host restores a saved KV state against
   re-reading the prompt (`engine.host_saved_states = 0`).

Servers run on the CPU (nGpuLayers 0) with the same threads, as `copilot-server bench`.
Results go to DIR/shared_engine.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..stats import percentile, summary
from .common import fmt, rss_bytes, stdlib_dir, table, write_json
from .replay import ServerBackend, initial_text, pick_regions, replay, summarize

MB = 1024 * 1024
SERVER_BUDGET = 200 * MB  # per LSP server, over the model file (issue 16)
LATENCY_RATIO = 1.2
MAX_WAIT_MS = 2000.0
KILL_ANSWER_MS = 2000.0
LONG_PROMPT = "import math\n\n\nclass Vector:\n    def __init__(self, x, y):\n        "


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    """Environment for the servers started inside (they inherit it)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def _start(kind: str, model: Path, threads: int, runtime: Path, out: Path, name: str):
    workspace = Path(tempfile.mkdtemp(prefix=f"cs-bench-{name}-"))
    backend = ServerBackend(model, threads, workspace, out / f"{name}.log")
    with _env(COPILOT_SERVER_ENGINE=kind, XDG_RUNTIME_DIR=str(runtime)):
        await backend.start()
    backend.name = name
    return backend


def _hosts(runtime: Path) -> list[dict[str, Any]]:
    from ..engines.host import running_hosts
    from ..engines.shared import query_host

    with _env(XDG_RUNTIME_DIR=str(runtime)):
        found = [query_host(path) for path in running_hosts()]
    return [status for status in found if status is not None]


def _stop_hosts(runtime: Path) -> None:
    for status in _hosts(runtime):
        with contextlib.suppress(OSError):
            os.kill(int(status["pid"]), signal.SIGTERM)
    shutil.rmtree(runtime, ignore_errors=True)


async def _close(*backends: ServerBackend) -> None:
    for backend in backends:
        await backend.stop()
        shutil.rmtree(backend.workspace, ignore_errors=True)


async def _one_completion(backend: ServerBackend, text: str, invoked: bool = True):
    """Open `text` and ask at its end; returns (future of the answer, started)."""
    from lsprotocol import types

    uri = (backend.workspace / f"doc{int(time.monotonic() * 1000)}.py").as_uri()
    await backend.open(uri, text)
    lines = text.split("\n")
    kind = (
        types.InlineCompletionTriggerKind.Invoked
        if invoked
        else types.InlineCompletionTriggerKind.Automatic
    )
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=len(lines) - 1, character=len(lines[-1])),
        context=types.InlineCompletionContext(trigger_kind=kind),
    )
    started = time.perf_counter()
    future = backend.client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params)
    return asyncio.wrap_future(future), started


def _items(result: Any) -> list:
    from lsprotocol import types

    if isinstance(result, types.InlineCompletionList):
        return list(result.items)
    return list(result or [])


# -- 1. memory ---------------------------------------------------------------------------


async def measure_memory(model: Path, threads: int, out: Path, local_too: bool) -> dict[str, Any]:
    runtime = Path(tempfile.mkdtemp(prefix="cs-mem-"))
    report: dict[str, Any] = {"model_bytes": model.stat().st_size}
    for kind in ("shared", "local") if local_too else ("shared",):
        servers = []
        try:
            for i in range(3):
                servers.append(await _start(kind, model, threads, runtime, out, f"{kind}-mem{i}"))
            for server in servers:  # each serves one completion: warm, as in use
                answer, _ = await _one_completion(server, "import json\n\ndef load(path):\n    ")
                await asyncio.wait_for(answer, 300)
            servers_rss = [rss_bytes(s.pid).get("VmRSS", 0) for s in servers]
            hosts = _hosts(runtime) if kind == "shared" else []
            host_rss = [int(h["rssBytes"]) for h in hosts]
            total = sum(servers_rss) + sum(host_rss)
            report[kind] = {
                "servers_rss_bytes": servers_rss,
                "hosts": len(hosts),
                "host_rss_bytes": host_rss,
                "host_clients": [h["clients"] for h in hosts],
                "total_rss_bytes": total,
                "budget_bytes": model.stat().st_size + 3 * SERVER_BUDGET,
            }
        finally:
            await _close(*servers)
            _stop_hosts(runtime)
    return report


# -- 2. typing replay, in process vs shared ----------------------------------------------


async def measure_typing(
    model: Path, threads: int, out: Path, regions: list, seed: int
) -> dict[str, Any]:
    runtime = Path(tempfile.mkdtemp(prefix="cs-typ-"))
    local = await _start("local", model, threads, runtime, out, "typing-local")
    shared = await _start("shared", model, threads, runtime, out, "typing-shared")
    runs: dict[str, list] = {"local": [], "shared": []}
    try:
        for index, region in enumerate(regions):
            # Alternate who goes first: the page cache and the CPU's state favour no one.
            order = [("local", local), ("shared", shared)]
            if index % 2:
                order.reverse()
            for kind, backend in order:
                path = backend.workspace / region.path.name
                path.write_text(initial_text(region), encoding="utf-8")
                run = await replay(backend, region, seed, path.as_uri())
                run.client = "ours"
                runs[kind].append(run)
                looks = [a.latency_ms for a in run.asks if a.latency_ms is not None]
                print(
                    f"  typing {region.name} {kind}: p50 {fmt(percentile(looks, 50), ' ms')}",
                    file=sys.stderr,
                )
        host = _hosts(runtime)
    finally:
        await _close(local, shared)
        _stop_hosts(runtime)
    report: dict[str, Any] = {}
    for kind, mine in runs.items():
        summary_ = summarize(mine, {}, {}, model.stat().st_size, 0.0)["clients"]["ours"]
        report[kind] = {
            "look_latency_ms": summary_["look_latency_ms"],
            "answered_latency_ms": summary_["answered_latency_ms"],
            "looks": summary_["looks"],
            "requests": summary_["requests"],
        }
    for q in ("p50", "p95"):
        ours, base = report["shared"]["look_latency_ms"][q], report["local"]["look_latency_ms"][q]
        report[f"{q}_ratio"] = (ours / base) if ours and base else None
    report["host"] = host[0] if host else None
    return report


# -- 3. two windows typing at once -------------------------------------------------------


async def measure_two_windows(
    model: Path, threads: int, out: Path, regions: list, seed: int
) -> dict[str, Any]:
    runtime = Path(tempfile.mkdtemp(prefix="cs-two-"))
    a = await _start("shared", model, threads, runtime, out, "window-a")
    b = await _start("shared", model, threads, runtime, out, "window-b")
    try:
        pairs = [(a, regions[0]), (b, regions[1 % len(regions)])]
        for backend, region in pairs:
            path = backend.workspace / region.path.name
            path.write_text(initial_text(region), encoding="utf-8")
        before = _hosts(runtime)[0]
        runs = await asyncio.gather(
            *(
                replay(backend, region, seed + i, (backend.workspace / region.path.name).as_uri())
                for i, (backend, region) in enumerate(pairs)
            )
        )
        host = _hosts(runtime)[0]
    finally:
        await _close(a, b)
        _stop_hosts(runtime)
    windows = []
    for run in runs:
        looks = [x for x in run.asks if x.kind == "look"]
        answered = [x.latency_ms for x in looks if x.latency_ms is not None]
        windows.append(
            {
                "region": run.region,
                "looks": len(looks),
                "looks_answered": len(answered),
                "look_latency_ms": summary(answered),
            }
        )
    return {
        "windows": windows,
        "host_wait_ms": host.get("waitMs"),
        "host_queue_ms": host.get("queueMs"),
        "preemptions": host["preemptions"] - before["preemptions"],
        "host_requests": host["requests"] - before["requests"],
    }


# -- 4. SIGKILL mid-generation -----------------------------------------------------------


async def measure_kill(model: Path, threads: int, out: Path) -> dict[str, Any]:
    runtime = Path(tempfile.mkdtemp(prefix="cs-kill-"))
    a = await _start("shared", model, threads, runtime, out, "kill-a")
    b = await _start("shared", model, threads, runtime, out, "kill-b")
    try:
        old = _hosts(runtime)[0]["pid"]
        flights = [await _one_completion(s, LONG_PROMPT + f"# {s.name}\n    ") for s in (a, b)]
        deadline = time.monotonic() + 120
        while not any(h.get("busy") for h in _hosts(runtime)):
            if time.monotonic() > deadline:
                raise RuntimeError("the host never started generating")
            await asyncio.sleep(0.005)
        os.kill(int(old), signal.SIGKILL)
        killed = time.perf_counter()
        answers = []
        for future, _started in flights:
            try:
                result = await asyncio.wait_for(future, 30)
                answers.append(
                    {
                        "answered_ms": (time.perf_counter() - killed) * 1000,
                        "empty": not _items(result),
                    }
                )
            except TimeoutError:
                answers.append({"answered_ms": None, "empty": None})
        # The servers start a new host at once; requests made while it loads are answered
        # empty. When the status shows it serving, the next request goes to it.
        restart_deadline = time.monotonic() + 300
        while True:
            host = (await a.status()).get("host") or {}
            if host.get("pid") not in (None, old) and host.get("state") == "ready":
                break
            if time.monotonic() > restart_deadline:
                raise RuntimeError("no new host served within 5 minutes")
            await asyncio.sleep(0.05)
        restart_ms = (time.perf_counter() - killed) * 1000
        future, started = await _one_completion(a, "import json\n\ndef load(path):\n    ")
        result = await asyncio.wait_for(future, 300)
        next_ms = (time.perf_counter() - started) * 1000
        new = _hosts(runtime)
    finally:
        await _close(a, b)
        _stop_hosts(runtime)
    return {
        "old_host_pid": old,
        "new_host_pids": [h["pid"] for h in new],
        "in_flight": answers,
        "new_host_serving_after_ms": restart_ms,
        "next_request_ms": next_ms,
        "next_request_answered": bool(_items(result)),
    }


# -- 5. KV states on switching documents -------------------------------------------------


def measure_switching(model: Path, threads: int, rounds: int = 3) -> dict[str, Any]:
    from ..config import Settings
    from ..engines.shared import SharedEngine

    sources = sorted(stdlib_dir().glob("*.py"))
    texts = [p.read_text(encoding="utf-8", errors="replace")[:2400] for p in sources[10:12]]
    never = threading.Event()
    report: dict[str, Any] = {}
    for states in (4, 0):
        runtime = Path(tempfile.mkdtemp(prefix="cs-kv-"))
        settings = Settings().merged(
            {
                "model": {"path": str(model), "threads": threads, "n_gpu_layers": 0},
                "engine": {"host_saved_states": states},
            }
        )
        with _env(XDG_RUNTIME_DIR=str(runtime)):
            engine = SharedEngine(model, settings)
        try:
            prompts = [engine.tokenize(t) for t in texts]
            switches = []
            for turn in range(rounds * 2):
                gen = engine.generate(
                    prompts[turn % 2], max_tokens=1, should_stop=lambda _t: False, cancel=never
                )
                if turn >= 2:  # the first visit of each document is cold either way
                    switches.append((gen.prompt_ms, gen.prompt_tokens_evaluated))
            host = engine.host_status()
        finally:
            engine.close()
            _stop_hosts(runtime)
        report[f"saved_states_{states}"] = {
            "prompt_tokens": [len(p) for p in prompts],
            "switch_prompt_ms": summary([s[0] for s in switches]),
            "switch_tokens_evaluated": [s[1] for s in switches],
            "state_save_ms": host.get("stateSaveMs"),
            "state_restore_ms": host.get("stateRestoreMs"),
            "saved_state_bytes": host.get("savedStateBytes"),
        }
    on, off = report["saved_states_4"], report["saved_states_0"]
    if on["switch_prompt_ms"]["p50"] and off["switch_prompt_ms"]["p50"]:
        report["speedup_p50"] = off["switch_prompt_ms"]["p50"] / on["switch_prompt_ms"]["p50"]
    return report


# -- 6. per-token cost of the round trips ------------------------------------------------


def measure_overhead(model: Path, threads: int, rounds: int = 5) -> dict[str, Any]:
    """The same greedy generation in process and through a host, alternating: what the
    lockstep round trip (a token out, a verdict back) costs per token."""
    from ..config import Settings
    from ..engines.loader import local_engine
    from ..engines.shared import SharedEngine

    settings = Settings().merged(
        {"model": {"path": str(model), "threads": threads, "n_gpu_layers": 0}}
    )
    runtime = Path(tempfile.mkdtemp(prefix="cs-ovh-"))
    with _env(XDG_RUNTIME_DIR=str(runtime)):
        shared = SharedEngine(model, settings)
    local = local_engine(model, settings.model)
    never = threading.Event()
    per_token: dict[str, list[float]] = {"local": [], "shared": []}
    try:
        prompt = shared.tokenize("def quicksort(items):\n    ")
        for _ in range(rounds):
            for name, engine in (("local", local), ("shared", shared)):
                gen = engine.generate(
                    prompt, max_tokens=24, should_stop=lambda _t: False, cancel=never
                )
                if gen.tokens_generated > 1:
                    per_token[name].append(gen.generation_ms / (gen.tokens_generated - 1))
    finally:
        shared.close()
        local.close()
        _stop_hosts(runtime)
    out: dict[str, Any] = {k: summary(v) for k, v in per_token.items()}
    if out["local"]["p50"] and out["shared"]["p50"]:
        out["ratio_p50"] = out["shared"]["p50"] / out["local"]["p50"]
    return out


# -- the report --------------------------------------------------------------------------


def verdicts(report: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []

    def row(name: str, value: str, bar: str, ok: bool | None) -> None:
        rows.append([name, value, bar, "-" if ok is None else ("yes" if ok else "NO")])

    memory = report.get("memory", {})
    shared = memory.get("shared")
    if shared:
        row("hosts (model loads) for 3 servers", str(shared["hosts"]), "1", shared["hosts"] == 1)
        row(
            "summed RSS, 3 servers + host",
            fmt(shared["total_rss_bytes"] / MB, " MB"),
            f"<= {shared['budget_bytes'] / MB:.0f} MB",
            shared["total_rss_bytes"] <= shared["budget_bytes"],
        )
    if memory.get("local"):
        row(
            "summed RSS, 3 in-process servers",
            fmt(memory["local"]["total_rss_bytes"] / MB, " MB"),
            "",
            None,
        )
    typing = report.get("typing")
    if typing:
        for q in ("p50", "p95"):
            ratio = typing.get(f"{q}_ratio")
            value = (
                f"{fmt(typing['shared']['look_latency_ms'][q], ' ms')} vs "
                f"{fmt(typing['local']['look_latency_ms'][q], ' ms')} ({fmt(ratio)}x)"
            )
            row(
                f"typing look {q}: shared vs in process",
                value,
                f"<= {LATENCY_RATIO}x",
                ratio is not None and ratio <= LATENCY_RATIO,
            )
    two = report.get("two_windows")
    if two:
        answered = all(w["looks_answered"] > 0 for w in two["windows"])
        counts = ", ".join(f"{w['looks_answered']}/{w['looks']}" for w in two["windows"])
        row("two windows typing: looks answered", counts, "both > 0", answered)
        wait = (two.get("host_wait_ms") or {}).get("max")
        row(
            "two windows: longest wait behind the other",
            fmt(wait, " ms"),
            f"<= {MAX_WAIT_MS:.0f} ms",
            wait is not None and wait <= MAX_WAIT_MS,
        )
    kill = report.get("kill")
    if kill:
        times = [a["answered_ms"] for a in kill["in_flight"]]
        ok = all(t is not None and t <= KILL_ANSWER_MS for t in times)
        row(
            "SIGKILL: in-flight answered after",
            ", ".join(fmt(t, " ms") for t in times),
            f"<= {KILL_ANSWER_MS:.0f} ms",
            ok,
        )
        served = kill["next_request_answered"] and kill["old_host_pid"] not in kill["new_host_pids"]
        row(
            "SIGKILL: new host serving after",
            fmt(kill.get("new_host_serving_after_ms"), " ms"),
            "",
            None,
        )
        row(
            "SIGKILL: next request by a new host",
            fmt(kill["next_request_ms"], " ms"),
            "answered",
            served,
        )
    overhead = report.get("overhead")
    if overhead:
        row(
            "ms per token: through the host vs in process",
            f"{fmt(overhead['shared']['p50'], ' ms')} vs {fmt(overhead['local']['p50'], ' ms')}"
            f" ({fmt(overhead.get('ratio_p50'))}x)",
            "",
            None,
        )
    switching = report.get("switching")
    if switching:
        on, off = switching["saved_states_4"], switching["saved_states_0"]
        row(
            "switching documents: prompt p50",
            f"{fmt(on['switch_prompt_ms']['p50'], ' ms')} restored vs "
            f"{fmt(off['switch_prompt_ms']['p50'], ' ms')} re-read",
            "restore pays",
            (switching.get("speedup_p50") or 0) > 1,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m copilot_server.benchmarks.shared_engine")
    parser.add_argument("--quick", action="store_true", help="1 short region (smoke run)")
    parser.add_argument("--regions", type=int, default=None)
    parser.add_argument("--lines", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", default="bench-results/shared-engine")
    parser.add_argument(
        "--parts",
        default="memory,typing,two,kill,switching,overhead",
        help="comma-separated subset",
    )
    parser.add_argument("--no-local-memory", action="store_true")
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("pygls").setLevel(logging.WARNING)
    from ..engines.models import resolve_model_path

    model = resolve_model_path(args.model)
    threads = args.threads or os.cpu_count() or 2
    count = args.regions or (1 if args.quick else 2)
    lines = args.lines or (5 if args.quick else 8)
    regions = pick_regions(sorted(stdlib_dir().glob("*.py")), max(count, 2), lines, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(","))
    report: dict[str, Any] = {"model": str(model), "threads": threads, "regions": count}

    def save() -> None:  # after every part: a long run stopped half-way keeps its figures
        write_json(out / "shared_engine.json", report)

    async def run() -> None:
        if "memory" in parts:
            print("memory: 3 servers shared, 3 in process", file=sys.stderr)
            report["memory"] = await measure_memory(model, threads, out, not args.no_local_memory)
            save()
        if "typing" in parts:
            print("typing replay: in process vs shared", file=sys.stderr)
            report["typing"] = await measure_typing(model, threads, out, regions[:count], args.seed)
            save()
        if "two" in parts:
            print("two windows typing at once", file=sys.stderr)
            report["two_windows"] = await measure_two_windows(
                model, threads, out, regions, args.seed
            )
            save()
        if "kill" in parts:
            print("SIGKILL of the host mid-generation", file=sys.stderr)
            report["kill"] = await measure_kill(model, threads, out)
            save()

    asyncio.run(run())
    if "overhead" in parts:
        print("per-token cost: in process vs through the host", file=sys.stderr)
        report["overhead"] = measure_overhead(model, threads)
        save()
    if "switching" in parts:
        print("switching documents: saved KV states vs none", file=sys.stderr)
        report["switching"] = measure_switching(model, threads)
    write_json(out / "shared_engine.json", report)
    print(table(["measure", "value", "bar", "met"], verdicts(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
