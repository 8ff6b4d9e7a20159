"""Verdicts, tables, plot and published results of a benchmark run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .common import fmt, ratio, table, write_json

P50_RATIO = 0.25
P95_RATIO = 0.5
SERVER_MS_P95 = 10.0
MEMORY_OVER_MODEL = 300 * 1024 * 1024
# Quality bars from issue 14, per cursor class: ours ≥ naive in first-line exact match and
# ≥ naive + 0.05 in edit similarity; cold-request p50 ≤ naive; HumanEval exact and pass@1.
SIMILARITY_MARGIN = 0.05
HUMANEVAL_EXACT = 0.50
HUMANEVAL_PASS = 0.65


# -- verdicts ----------------------------------------------------------------------------


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's bars, each met or missed with by how much."""
    out: list[dict[str, Any]] = []
    typing = report.get("typing", {}).get("clients", {})
    ours, naive = typing.get("ours"), typing.get("naive")
    if ours and naive:
        for q, bar in (("p50", P50_RATIO), ("p95", P95_RATIO)):
            r = ratio(ours["look_latency_ms"][q], naive["look_latency_ms"][q])
            out.append(_verdict(f"keystroke-to-suggestion {q} ours/naive", r, bar, "≤", "x"))
        mine, theirs = ours["first_line_exact"], naive["first_line_exact"]
        if mine is not None and theirs is not None:
            out.append(
                {
                    "target": "first-line exact match ours ≥ naive",
                    "value": mine,
                    "bar": theirs,
                    "met": mine >= theirs,
                    "by": None if mine >= theirs else theirs - mine,
                    "text": f"{mine * 100:.0f}% vs {theirs * 100:.0f}%",
                }
            )
    if ours:
        p95 = ours.get("server_ms", {}).get("server_ms_p95")
        if p95 is not None:
            out.append(
                _verdict("server time apart from the model p95 (ms)", p95, SERVER_MS_P95, "<", "ms")
            )
        memory = ours.get("memory", {})
        if memory.get("rss_bytes"):
            over = memory["rss_bytes"] - memory["model_bytes"]
            out.append(
                _verdict(
                    "resident memory over the model file (MB)",
                    over / 2**20,
                    MEMORY_OVER_MODEL / 2**20,
                    "≤",
                    "MB",
                )
            )
    out += _hole_targets(report)
    return out


def _at_least(name: str, mine: float | None, bar: float | None, text: str) -> dict[str, Any]:
    met = mine is not None and bar is not None and mine >= bar - 1e-9
    by = None if met or mine is None or bar is None else bar - mine
    return {"target": name, "value": mine, "bar": bar, "met": met, "by": by, "text": text}


def _hole_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 14: per cursor class, ours ≥ naive in first-line exact match and ≥ naive + 0.05
    in edit similarity; the cold request's p50 ≤ naive's; HumanEval exact and pass@1."""
    from .holes import CLASS_LABELS, CLASSES

    out: list[dict[str, Any]] = []
    holes = report.get("holes", {})
    for kind in CLASSES:
        per = holes.get("kinds", {}).get(kind, {})
        a, b = per.get("ours"), per.get("naive")
        if not a or not b:
            continue
        label = CLASS_LABELS[kind]
        fa, fb = a["first_line_exact"], b["first_line_exact"]
        out.append(
            _at_least(
                f"{label}: first-line exact ours ≥ naive",
                fa,
                fb,
                f"{fa * 100:.0f}% vs {fb * 100:.0f}% (n={a['n']})",
            )
        )
        sa, sb = a["edit_similarity"], b["edit_similarity"]
        out.append(
            _at_least(
                f"{label}: edit similarity ours ≥ naive + {SIMILARITY_MARGIN}",
                sa,
                sb + SIMILARITY_MARGIN,
                f"{sa:.2f} vs {sb:.2f}",
            )
        )
    cold = holes.get("cold", {})
    if cold.get("ours") and cold.get("naive"):
        mine, theirs = cold["ours"]["latency_ms"]["p50"], cold["naive"]["latency_ms"]["p50"]
        out.append(_verdict("cold request p50 ours/naive", ratio(mine, theirs), 1.0, "≤", "x"))
    he = report.get("humaneval", {}).get("kinds", {}).get("humaneval", {}).get("ours")
    if he:
        n = he["n"]
        out.append(
            _at_least(
                f"HumanEval single-line exact ≥ {HUMANEVAL_EXACT:.2f}",
                he["exact"],
                HUMANEVAL_EXACT,
                f"{he['exact']:.2f} (n={n})",
            )
        )
        out.append(
            _at_least(
                f"HumanEval single-line pass@1 ≥ {HUMANEVAL_PASS:.2f}",
                he["pass_at_1"],
                HUMANEVAL_PASS,
                f"{he['pass_at_1']:.2f} (n={n})",
            )
        )
    return out


def _verdict(name: str, value: float | None, bar: float, op: str, unit: str) -> dict[str, Any]:
    if value is None:
        return {
            "target": name,
            "value": None,
            "bar": bar,
            "met": False,
            "by": None,
            "text": "not measured",
        }
    met = value <= bar if op == "≤" else value < bar
    by = None if met else value - bar
    shown_unit = "" if unit == "MB" else unit
    suffix = " MB" if unit == "MB" else ""
    text = f"{fmt(value, shown_unit)}{suffix} (bar {op} {fmt(bar, shown_unit)}{suffix})"
    if not met:
        text += f": missed by {fmt(by, shown_unit)}{suffix}"
    return {"target": name, "value": value, "bar": bar, "met": met, "by": by, "text": text}


# -- tables ------------------------------------------------------------------------------


def headline_rows(report: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    typing = report.get("typing", {}).get("clients", {})
    ours, naive = typing.get("ours"), typing.get("naive") or {}
    if ours:

        def both(label: str, get, unit: str = "", show_ratio: bool = True) -> None:  # noqa: ANN001
            a = get(ours)
            b = get(naive) if naive else None
            r = fmt(ratio(a, b), "x") if show_ratio else ""
            rows.append([label, fmt(a, unit), fmt(b, unit), r])

        both("typing: keystroke→suggestion p50 (ms)", lambda c: c["look_latency_ms"]["p50"])
        both("typing: keystroke→suggestion p95 (ms)", lambda c: c["look_latency_ms"]["p95"])
        both("typing: first-line exact match", lambda c: c["first_line_exact"], "%")
        both("typing: … at line starts", lambda c: c["first_line_exact_at_line_start"], "%")
        both("typing: … inside a word", lambda c: c.get("first_line_exact_mid_word"), "%")
        both(
            "typing: hesitations answered in time",
            lambda c: (
                (c["hesitations_answered_in_time"] / c["hesitations"]) if c["hesitations"] else None
            ),
            "%",
        )
        both(
            "typing: requests (superseded)",
            lambda c: f"{c['requests']} ({c['superseded']})",
            show_ratio=False,
        )
        both("typing: model calls", lambda c: c["counters"].get("model_calls"))
        both(
            "typing: cache answers (typed-through + LRU)",
            lambda c: c["counters"].get("typed_through_hits", 0) + c["counters"].get("lru_hits", 0),
            show_ratio=False,
        )
        both(
            "typing: prompt tokens evaluated / call",
            lambda c: c["prompt_tokens_evaluated_per_call"],
        )
        both("typing: prompt tokens / call", lambda c: c["prompt_tokens_per_call"])
        both("typing: tokens generated", lambda c: c["tokens_generated"])
        both("typing: tokens shown / generated", lambda c: c["shown_share"], "%", show_ratio=False)
        server = ours.get("server_ms", {})
        rows.append(
            ["server time apart from model p95 (ms)", fmt(server.get("server_ms_p95")), "", ""]
        )
        memory = ours.get("memory", {})
        if memory.get("rss_bytes"):
            rows.append(
                [
                    "server resident memory (MB; model file)",
                    f"{memory['rss_bytes'] / 2**20:.0f} ({memory['model_bytes'] / 2**20:.0f})",
                    "",
                    "",
                ]
            )
    from .holes import CLASS_LABELS

    for key, label in (("holes", "holes"), ("humaneval", "HumanEval infilling")):
        kinds = report.get(key, {}).get("kinds", {})
        for kind, per in kinds.items():
            a, b = per.get("ours", {}), per.get("naive", {})
            name = label if key == "humaneval" else f"holes: {CLASS_LABELS.get(kind, kind)}"
            if kind == "humaneval":
                rows.append(
                    [
                        f"{name}: pass@1 (n={a.get('n')})",
                        fmt(a.get("pass_at_1"), "%"),
                        fmt(b.get("pass_at_1"), "%"),
                        fmt(ratio(a.get("pass_at_1"), b.get("pass_at_1")), "x"),
                    ]
                )
            rows.append(
                [
                    f"{name}: exact (n={a.get('n')})",
                    fmt(a.get("exact"), "%"),
                    fmt(b.get("exact"), "%"),
                    fmt(ratio(a.get("exact"), b.get("exact")), "x"),
                ]
            )
            rows.append(
                [
                    f"{name}: edit similarity",
                    fmt(a.get("edit_similarity")),
                    fmt(b.get("edit_similarity")),
                    fmt(ratio(a.get("edit_similarity"), b.get("edit_similarity")), "x"),
                ]
            )
            la, lb = a.get("latency_ms", {}).get("p50"), b.get("latency_ms", {}).get("p50")
            rows.append([f"{name}: latency p50 (ms)", fmt(la), fmt(lb), fmt(ratio(la, lb), "x")])
        cold = report.get(key, {}).get("cold", {})
        if cold.get("ours"):
            la = cold["ours"]["latency_ms"]["p50"]
            lb = cold.get("naive", {}).get("latency_ms", {}).get("p50")
            langs = ", ".join(cold["ours"].get("languages", []))
            rows.append(
                [
                    f"holes: cold request p50, all classes (ms; {langs})",
                    fmt(la),
                    fmt(lb),
                    fmt(ratio(la, lb), "x"),
                ]
            )
    return rows


def render(report: dict[str, Any]) -> str:
    lines = [
        f"copilot-server bench{' --quick' if report.get('quick') else ''}: "
        f"{report.get('model')} on {report.get('machine')}",
        "",
        table(["measure", "ours", "naive", "ours/naive"], headline_rows(report)),
        "",
    ]
    for t in report.get("targets", []):
        lines.append(f"{'MET ' if t['met'] else 'MISS'}  {t['target']}: {t['text']}")
    lines.append(
        f"\nduration {report.get('duration_s', 0):.0f} s; results in {report.get('out_dir', '')}"
    )
    return "\n".join(lines)


# -- plot and published results ----------------------------------------------------------


def plot_latency(report: dict[str, Any], path: Path) -> bool:
    """Keystroke-to-suggestion latency, ours vs naive, as empirical CDFs (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clients = report.get("typing", {}).get("clients", {})
    if not clients:
        return False
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    colours = {"ours": "#1f77b4", "naive": "#d62728"}
    for name, data in clients.items():
        values = sorted(data.get("latencies_look_ms") or [])
        if not values:
            continue
        ys = [0.0] + [(i + 1) / len(values) for i in range(len(values))]
        p50 = data["look_latency_ms"]["p50"]
        label = f"{name} (p50 {p50:.0f} ms, n={len(values)})"
        ax.step([values[0], *values], ys, where="post", color=colours.get(name), label=label)
        ax.axvline(p50, color=colours.get(name), linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("keystroke → suggestion (ms, log scale; 150 ms debounce included)")
    ax.set_ylabel("share of suggestions")
    ax.set_title("Typing replay: when the suggestion appears", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.text(0.01, 0.01, report.get("machine", "")[:110], fontsize=6, color="#555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def compact(report: dict[str, Any]) -> dict[str, Any]:
    """The report without per-request detail (kept in bench-results/), for committing."""
    out = {k: v for k, v in report.items() if k not in ("typing", "holes", "humaneval", "out_dir")}
    typing = report.get("typing")
    if typing:
        out["typing"] = {
            "regions": typing.get("regions"),
            "duration_s": typing.get("duration_s"),
            "clients": {
                name: {k: v for k, v in data.items() if k not in ("asks",)}
                for name, data in typing.get("clients", {}).items()
            },
        }
    for key in ("holes", "humaneval"):
        if key in report:
            out[key] = {"kinds": report[key]["kinds"], "duration_s": report[key].get("duration_s")}
    return out


def publish(report: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "results.json", compact(report))
    try:
        plot_latency(report, folder / "latency.png")
    except ImportError:
        print(
            "matplotlib is not installed: no plot (pip install 'copilot-server[bench]')",
            file=sys.stderr,
        )
    (folder / "RESULTS.md").write_text(results_markdown(report), encoding="utf-8")


def results_markdown(report: dict[str, Any]) -> str:
    rows = headline_rows(report)
    verdicts = "\n".join(
        f"- {'✅' if t['met'] else '❌'} {t['target']}: {t['text']}"
        for t in report.get("targets", [])
    )
    minutes = report.get("duration_s", 0) / 60
    return f"""## Results

Measured with `{report.get("command")} --publish docs/results` ({minutes:.0f} min) on
{report.get("machine")}; model `{report.get("model")}`. Both clients use the same model
file and threads in the same run; the naive client is a plain FIM client (prefix and
suffix windows of 768 + 256 tokens cut at whole lines, the typed word at the end of the
prefix, no cache, stops at the first newline). Ratios are the headline: absolute times
depend on the machine and its load. Holes are cut where users type (inside a word, after
an operator, at indentation, after a complete line) in code the project did not write.

{table(["measure", "ours", "naive", "ours/naive"], rows)}

{verdicts}

![keystroke-to-suggestion latency, ours vs naive](docs/results/latency.png)

Regenerate: `copilot-server bench --publish docs/results` (full run) or
`copilot-server bench --quick` (a sample, < 5 min on 2 cores). Raw per-request data goes
to `bench-results/`.
"""
