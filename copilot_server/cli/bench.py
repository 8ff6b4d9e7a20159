"""`copilot-server bench`: the command; the benchmarks live in copilot_server/benchmarks/."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..benchmarks.common import table, write_json
from ..benchmarks.report import compact, headline_rows, publish, render
from ..benchmarks.run import SUITES, default_corpus, run_bench
from ..config import Settings
from ..logs import set_log_level


def register_cli(sub: argparse._SubParsersAction, common) -> None:  # noqa: ANN001
    bench = sub.add_parser(
        "bench", help="measure latency, token economy and quality against a naive client"
    )
    bench.add_argument(
        "suites",
        nargs="*",
        metavar="SUITE",
        help=f"sub-benchmarks: {', '.join(SUITES)} (default: all); or next-edit alone",
    )
    bench.add_argument(
        "--quick", action="store_true", help="a small sample of each (< 5 min on 2 cores)"
    )
    bench.add_argument(
        "--out",
        default="bench-results",
        help="folder for the JSON results (default: bench-results)",
    )
    bench.add_argument(
        "--publish", help="also write results.json, latency.png and RESULTS.md to this folder"
    )
    bench.add_argument(
        "--corpus",
        action="append",
        help="folder of code for the holes (repeatable; default: stdlib)",
    )
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument("--no-naive", action="store_true", help="skip the naive client (no ratios)")
    bench.add_argument(
        "--profile",
        dest="bench_profile",
        choices=["auto", "fast", "quality", "both"],
        default="auto",
        help="model profile(s) to measure: the one auto picks here (default), fast, quality, "
        "or both (a comparison table; also predicted vs measured typing p50)",
    )
    common(bench)
    bench.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    if not args.log_level:  # the tables, not every JSON-RPC message and completion
        set_log_level("warning")
    from ..benchmarks import profile_runs
    from ..engines.models import ModelNotFoundError

    threads = settings.model.threads or os.cpu_count() or 2
    # Both clients on the CPU with the same threads: the comparison is of the two paths.
    settings = settings.merged({"model": {"threads": threads, "n_gpu_layers": 0}})
    try:
        models = profile_runs.models_to_bench(settings, args.bench_profile)
    except ModelNotFoundError as exc:
        print(f"copilot-server: {exc}", file=sys.stderr)
        return 1
    if args.suites == ["next-edit"]:  # a bench of its own: mined next-edit pairs
        from ..benchmarks import next_edit

        model_path = models[0][1]
        merged = settings.merged({"model": {"path": str(model_path)}})
        return next_edit.handle(args, merged, model_path, threads)
    suites = list(dict.fromkeys(args.suites)) or list(SUITES)
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        print(
            f"copilot-server bench: unknown sub-benchmark {', '.join(unknown)} "
            f"(choose from {', '.join(SUITES)})",
            file=sys.stderr,
        )
        return 2
    corpus = [Path(c) for c in args.corpus] if args.corpus else default_corpus(args.quick)
    reports: dict[str, dict[str, Any]] = {}
    for profile, model_path in models:
        if len(models) > 1:
            print(f"profile {profile}: {model_path.name}", flush=True)
        report = run_bench(
            settings.merged({"model": {"path": str(model_path)}}),
            model_path,
            threads,
            suites,
            args.quick,
            corpus,
            args.seed,
            Path(args.out),
            not args.no_naive,
        )
        report["profile"] = profile
        print(render(report))
        reports[profile] = report
    pred = None
    if "typing" in suites and "custom" not in reports:
        pred = profile_runs.prediction(settings, reports)
        for report in reports.values():
            report["profile_prediction"] = pred
    if len(reports) > 1:
        headers, rows = profile_runs.comparison_rows(reports, headline_rows)
        print("\n" + table(headers, rows))
    if pred:
        print("\n" + profile_runs.render_prediction(pred))
    if args.publish:
        chosen = reports.get(pred["auto_chooses"]) if pred else None
        publish(chosen or next(iter(reports.values())), Path(args.publish))
        if len(reports) > 1:
            text = profile_runs.comparison_markdown(reports, pred, headline_rows)
            (Path(args.publish) / "PROFILES.md").write_text(text, encoding="utf-8")
            write_json(
                Path(args.publish) / "profiles.json",
                {name: compact(r) for name, r in reports.items()},
            )
        print(f"published to {args.publish}")
    return 0
