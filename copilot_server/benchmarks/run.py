"""`copilot-server bench`: latency, token economy and quality against a naive client, in one run.

    copilot-server bench                  # everything (~25 min on 2 cores)
    copilot-server bench --quick          # a small sample of each (< 5 min on 2 cores)
    copilot-server bench typing holes     # chosen sub-benchmarks: typing, holes, humaneval
    copilot-server bench --publish docs/results   # also write results.json, latency.png, RESULTS.md

Every sub-benchmark runs our path and the naive client (benchmarks/naive.py: the same
GGUF file, the same threads, plain prefix/suffix windows, no cache, stop at newline) on the
same cases in the same run, interleaved, and prints a table; ratios ours / naive are the
headline, absolute times are labelled with the machine. JSON goes to bench-results/.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import Settings
from .common import machine_label, stdlib_dir, write_json
from .report import plot_latency, targets

SUITES = ("typing", "holes", "humaneval")
# Targets from the issue: ours / naive latency ratios, quality, server time, memory.


def sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {"regions": 1, "region_lines": 5, "class_holes": 2, "block_holes": 1, "humaneval": 6}
    return {"regions": 3, "region_lines": 14, "class_holes": 40, "block_holes": 8, "humaneval": 100}


# Code the project did not write, where the machine has it: npm's JavaScript, the VS Code
# client's TypeScript dependencies (after `npm ci`), C and Go examples of -dev packages.
EXTRA_CORPUS = (
    Path("/usr/lib/node_modules/npm"),
    Path(__file__).resolve().parents[2] / "editors" / "vscode" / "node_modules",
    Path("/usr/share/doc"),
)


def default_corpus(quick: bool) -> list[Path]:
    return [stdlib_dir(), *(extra for extra in EXTRA_CORPUS if extra.is_dir())]


def run_bench(
    settings: Settings,
    model_path: Path,
    threads: int,
    suites: list[str],
    quick: bool,
    corpus: list[Path],
    seed: int,
    out_root: Path,
    with_naive: bool = True,
    size_overrides: dict[str, int] | None = None,
) -> dict[str, Any]:
    from .holes import OursInProcess, corpus_holes, humaneval_holes, run_holes
    from .naive import NaiveClient
    from .replay import pick_regions, run_replay

    size = sizes(quick) | (size_overrides or {})
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = out_root / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "machine": machine_label(threads),
        "model": model_path.name,
        "model_bytes": model_path.stat().st_size,
        "threads": threads,
        "quick": quick,
        "seed": seed,
        "sizes": size,
        "command": "copilot-server bench" + (" --quick" if quick else ""),
        "started": stamp,
    }
    naive = NaiveClient(model_path, threads) if with_naive else None
    try:
        if "typing" in suites:
            print(
                f"typing replay: {size['regions']} region(s) of {size['region_lines']} lines",
                flush=True,
            )
            files = [p for p in sorted(stdlib_dir().glob("*.py"))]
            regions = pick_regions(files, size["regions"], size["region_lines"], seed)
            t0 = time.perf_counter()
            report["typing"] = asyncio.run(
                run_replay(regions, model_path, threads, seed, out_dir, naive, progress=_say)
            )
            report["typing"]["duration_s"] = time.perf_counter() - t0
            write_json(out_dir / "typing.json", report["typing"])
        if "holes" in suites or "humaneval" in suites:
            ours = OursInProcess(settings)
            try:
                if "holes" in suites:
                    holes = corpus_holes(corpus, size["class_holes"], size["block_holes"], seed)
                    print(f"holes: {len(holes)} from {', '.join(map(str, corpus))}", flush=True)
                    t0 = time.perf_counter()
                    report["holes"] = run_holes(holes, ours, naive, progress=_say)
                    report["holes"]["duration_s"] = time.perf_counter() - t0
                    write_json(out_dir / "holes.json", report["holes"])
                if "humaneval" in suites:
                    holes = humaneval_holes(size["humaneval"], seed)
                    print(f"humaneval single-line infilling: {len(holes)} tasks", flush=True)
                    t0 = time.perf_counter()
                    report["humaneval"] = run_holes(holes, ours, naive, progress=_say)
                    report["humaneval"]["duration_s"] = time.perf_counter() - t0
                    write_json(out_dir / "humaneval.json", report["humaneval"])
            finally:
                ours.close()
    finally:
        if naive is not None:
            naive.close()
    report["duration_s"] = time.perf_counter() - started
    report["targets"] = targets(report)
    write_json(out_dir / "results.json", report)
    try:
        plot_latency(report, out_dir / "latency.png")
    except ImportError:
        pass
    report["out_dir"] = str(out_dir)
    return report


def _say(line: str) -> None:
    print(line, flush=True)
