"""Context-gathering benchmark: a 6,000-line file and a workspace of ~300 files.

    .venv/bin/python -m copilot_server.benchmarks.context            # full run, real tokenizer
    .venv/bin/python -m copilot_server.benchmarks.context --quick    # fewer keystrokes
    .venv/bin/python -m copilot_server.benchmarks.context --json out.json

What it measures, all in one process with the real model's tokenizer (no generation):

- parsing: a fresh parse of the large file vs one keystroke's incremental edit + re-parse;
- typing: the server's work per keystroke apart from the model, while typing three
  statements at each of several places of the large file, with the workspace indexed
  and other files open: didChange (document + tree edit), the context engine, the FIM
  prompt's tokens. p50 / p95 / max; the issue's bar is p95 < 10 ms;
- KV-cache reuse: for each keystroke, the common token prefix with the previous
  keystroke's prompt is what llama.cpp keeps; the rest is evaluated again. Reported as
  evaluated / total prompt tokens, against plain prefix/suffix windows in the same run;
- the workspace index: build time (in-process and in the background worker), files,
  definitions, look-up time.

Exit status 1 when the p95 bar is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from pathlib import Path

from ..completion import CompletionRequest
from ..config import Settings
from ..context.engine import ContextEngine
from ..context.index import WorkspaceIndex
from ..context.windows import default_context_builder
from ..documents import DocumentStore
from ..prompts import build_fim_prompt
from ..prompts.whitespace import without_trailing_whitespace
from ..sequences import common_prefix_len
from ..stats import percentile
from ..syntax import SyntaxTree
from ..syntax.languages import grammar_for
from ..syntax.tree import parse

P95_BAR_MS = 10.0


# -- a synthetic but code-shaped workspace ------------------------------------------------


def python_module(i: int, rnd: random.Random) -> str:
    others = sorted({rnd.randrange(150) for _ in range(3)} - {i})
    imports = "".join(f"from pkg.mod_{j:03} import helper_{j:03}, Record{j:03}\n" for j in others)
    calls = "\n".join(f"        total += helper_{j:03}(item, {k})" for k, j in enumerate(others))
    return (
        f'"""Module {i}: records and helpers."""\n\nimport json\nimport logging\n{imports}\n\n'
        f"log = logging.getLogger(__name__)\n\n\n"
        f"class Record{i:03}:\n"
        f'    """A record of kind {i}."""\n\n'
        f"    def __init__(self, key: str, value: int = 0) -> None:\n"
        f"        self.key = key\n        self.value = value\n\n"
        f"    def score(self, weight: float = 1.0) -> float:\n"
        f"        return self.value * weight + {i}\n\n"
        f"    def to_json(self) -> str:\n"
        f'        return json.dumps({{"key": self.key, "value": self.value}})\n\n\n'
        f"def helper_{i:03}(item: Record{i:03}, factor: int) -> int:\n"
        f'    """Weighted value of one item."""\n'
        f"    return int(item.score(factor)) % 97\n\n\n"
        f"def summarize_{i:03}(items: list[Record{i:03}]) -> int:\n"
        f"    total = 0\n    for item in items:\n{calls or '        total += 1'}\n"
        f'    log.debug("summarized %d items", len(items))\n    return total\n'
    )


def typescript_module(i: int) -> str:
    return (
        f'import {{ format }} from "./format";\n\n'
        f"export interface Item{i} {{\n  id: number;\n  name: string;\n}}\n\n"
        f"export class Store{i} {{\n  private items: Item{i}[] = [];\n\n"
        f"  add(item: Item{i}): void {{\n    this.items.push(item);\n  }}\n\n"
        f"  find(id: number): Item{i} | undefined {{\n"
        "    return this.items.find((it) => it.id === id);\n  }\n}\n\n"
        f"export function render{i}(item: Item{i}): string {{\n  return format(item.name);\n}}\n"
    )


def go_module(i: int) -> str:
    return (
        f'package svc\n\nimport (\n\t"fmt"\n)\n\n'
        f"type Service{i} struct {{\n\tName string\n\tPort int\n}}\n\n"
        f"func NewService{i}(name string) *Service{i} {{\n"
        f"\treturn &Service{i}{{Name: name, Port: {8000 + i}}}\n}}\n\n"
        f"func (s *Service{i}) Start() error {{\n\tfmt.Println(s.Name, s.Port)\n\treturn nil\n}}\n"
    )


def java_module(i: int) -> str:
    return (
        f"package app;\n\nimport java.util.List;\n\npublic class Repo{i} {{\n"
        "    private int count;\n\n"
        "    public int size(List<String> items) {\n"
        "        return items.size() + count;\n    }\n}\n"
    )


def rust_module(i: int) -> str:
    return (
        "use std::collections::HashMap;\n\n"
        f"pub struct Cache{i} {{\n    map: HashMap<String, i32>,\n}}\n\n"
        f"impl Cache{i} {{\n    pub fn get(&self, key: &str) -> Option<i32> {{\n"
        "        self.map.get(key).copied()\n    }\n}\n"
    )


def c_module(i: int) -> str:
    return (
        f"#include <stdio.h>\n\nstruct point{i} {{\n    int x;\n    int y;\n}};\n\n"
        f"int add{i}(int a, int b) {{\n    return a + b + {i};\n}}\n"
    )


def large_python(lines: int, rnd: random.Random) -> str:
    parts = [
        '"""The large file: a service layer."""\n\nimport json\nimport logging\nimport os\n'
        + "".join(
            f"from pkg.mod_{j:03} import helper_{j:03}, Record{j:03}\n" for j in range(0, 150, 10)
        )
        + "\n\nlog = logging.getLogger(__name__)\n\n\n"
    ]
    i = 0
    while sum(p.count("\n") for p in parts) < lines:
        j = rnd.randrange(0, 150, 10)
        parts.append(
            f"class Service{i}:\n"
            f'    """Service {i}."""\n\n'
            f"    def __init__(self, root: str, limit: int = {i}) -> None:\n"
            f"        self.root = root\n        self.limit = limit\n        self.cache = {{}}\n\n"
            f"    def load(self, key: str) -> Record{j:03}:\n"
            f"        path = os.path.join(self.root, key)\n"
            f"        with open(path) as handle:\n            data = json.load(handle)\n"
            f'        record = Record{j:03}(key, data.get("value", 0))\n'
            f"        self.cache[key] = record\n        return record\n\n"
            f"    def total(self, keys: list[str]) -> int:\n"
            f"        value = 0\n        for key in keys:\n"
            f"            record = self.load(key)\n"
            f"            value += helper_{j:03}(record, self.limit)\n"
            f"        return value\n\n\n"
        )
        i += 1
    return "".join(parts)


def make_workspace(root: Path, large_lines: int) -> Path:
    rnd = random.Random(4)
    for i in range(150):
        write(root / "pkg" / f"mod_{i:03}.py", python_module(i, rnd))
    write(root / "pkg" / "__init__.py", "")
    for i in range(60):
        write(root / "web" / f"store{i}.ts", typescript_module(i))
    for i in range(30):
        write(root / "svc" / f"service{i}.go", go_module(i))
    for i in range(20):
        write(root / "app" / f"Repo{i}.java", java_module(i))
    for i in range(20):
        write(root / "cache" / f"cache{i}.rs", rust_module(i))
    for i in range(20):
        write(root / "native" / f"point{i}.c", c_module(i))
    write(root / ".gitignore", "build/\n")
    write(root / "build" / "generated.py", "def ignored():\n    pass\n")
    write(root / ".env", "SECRET=1\n")
    large = root / "service_layer.py"
    write(large, large_python(large_lines, rnd))
    return large


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# -- the tokenizer ------------------------------------------------------------------------


def load_engine(model: str | None, cheap: bool):
    if cheap:
        return CheapEngine(), "regex (--cheap)"
    from ..engines.loader import create_engine

    settings = Settings()
    if model:
        settings = settings.merged({"model": {"path": model}})
    engine = create_engine(settings)
    return engine, f"{engine.info.name} ({Path(engine.info.path).name})"


class CheapEngine:
    """A stand-in when no model is available: timings only, no KV figures."""

    def __init__(self) -> None:
        import re

        from ..engines.base import FimTokens, ModelInfo

        self._re = re.compile(r"\w+|[^\w\s]|\s+")
        self.info = ModelInfo(
            "", "regex", "none", 0, 4096, 4096, 0, 0, False, FimTokens(1, 2, 3, 4, 5), None, None
        )

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        return [hash(t) & 0xFFFF for t in self._re.findall(text)]

    def close(self) -> None:
        pass


# -- measurements -------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 3),
        "p95_ms": round(percentile(values, 95), 3),
        "max_ms": round(max(values), 3),
    }


def noise_floor(n: int = 800) -> dict[str, float]:
    """The same 0.3 ms of work, timed n times: on a busy machine its p95 shows how much of
    a tail is the scheduler's, not ours."""

    def work() -> int:
        total = 0
        for i in range(6000):
            total += i
        return total

    times = []
    for _ in range(n):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return summary(times)


def bench_parse(text: str, keystrokes: int) -> dict[str, float]:
    grammar = grammar_for("python")
    fresh = []
    for _ in range(3):
        started = time.perf_counter()
        parse(grammar, text.encode())
        fresh.append((time.perf_counter() - started) * 1000)
    tree = SyntaxTree(grammar, text)
    offset = text.index("        return value\n", len(text) // 2)
    incremental = []
    for i in range(keystrokes):
        new = text[:offset] + "x" + text[offset:]
        started = time.perf_counter()
        tree.edit(text, new, offset, offset, offset + 1)
        tree.tree  # noqa: B018 - the re-parse
        incremental.append((time.perf_counter() - started) * 1000)
        text, offset = new, offset + 1
        if i % 20 == 19:  # keep the file valid-ish: newline every 20 characters
            new = text[:offset] + "\n        " + text[offset:]
            tree.edit(text, new, offset, offset, offset + 9)
            text, offset = new, offset + 9
    return {
        "fresh_parse_ms": round(min(fresh), 2),
        **{f"incremental_{k}": v for k, v in summary(incremental).items()},
    }


STATEMENTS = (
    "result = helper_020(record, self.limit)",
    'log.info("loaded %s", key)',
    "return result",
)


def simulate_typing(
    engine,
    settings: Settings,
    store: DocumentStore,
    uri: str,
    path: str,
    positions: int,
    builder,
    measure: bool,
) -> dict:
    """Type STATEMENTS (with Enter between them) at `positions` places of the document."""
    doc = store.get(uri)
    rnd = random.Random(7)
    marks = [i for i in range(len(doc.text)) if doc.text.startswith("        return value\n", i)]
    places = sorted(rnd.sample(marks, positions))
    change_ms: list[float] = []
    position_ms: list[float] = []
    context_ms: list[float] = []
    prompt_ms: list[float] = []
    request_ms: list[float] = []
    by_kind: dict[str, list[float]] = {"same line": [], "new line": [], "new region": []}
    evaluated = total = 0
    typing_evaluated = typing_total = 0
    previous: list[int] = []
    previous_line = -1
    shift = 0
    for place in places:
        offset = place + shift + len("        return value\n")
        text_to_type = "        " + "\n        ".join(STATEMENTS) + "\n"
        for ch in text_to_type:
            before = doc.text[:offset]
            line = before.count("\n")
            column = len(before) - (before.rfind("\n") + 1)
            # didChange (a notification: document text + tree edit).
            started = time.perf_counter()
            store.change(uri, doc.version + 1, [((line, column, line, column), ch)], "utf-16")
            changed = time.perf_counter()
            offset += 1
            shift += 1
            cursor_line, cursor_column = (line + 1, 0) if ch == "\n" else (line, column + 1)
            # inlineCompletion: position → offset, context, prompt tokens (then the model).
            requested = time.perf_counter()
            at = doc.offset_at(cursor_line, cursor_column, "utf-16")
            positioned = time.perf_counter()
            assert at == offset
            request = CompletionRequest(
                uri=uri, path=path, language="python", text=doc.text, offset=at
            )
            misses = getattr(getattr(builder, "stats", None), "region_misses", 0)
            context = builder(request, engine, settings)
            built = time.perf_counter()
            if getattr(getattr(builder, "stats", None), "region_misses", 0) > misses:
                kind = "new region"
            else:
                kind = "same line" if cursor_line == previous_line else "new line"
            previous_line = cursor_line
            by_kind[kind].append((built - positioned) * 1000)
            prompt = build_fim_prompt(
                engine, without_trailing_whitespace(context), settings.model.template
            )
            done = time.perf_counter()
            change_ms.append((changed - started) * 1000)
            position_ms.append((positioned - requested) * 1000)
            context_ms.append((built - positioned) * 1000)
            prompt_ms.append((done - built) * 1000)
            request_ms.append((done - requested) * 1000)
            tokens = prompt.tokens
            common = common_prefix_len(previous, tokens)
            evaluated += len(tokens) - common
            total += len(tokens)
            if previous and ch != "\n" and common:  # a keystroke within a line
                typing_evaluated += len(tokens) - common
                typing_total += len(tokens)
            previous = tokens
    result = {
        "keystrokes": len(request_ms),
        "prompt_tokens_avg": round(total / max(1, len(request_ms)), 1),
        "evaluated_fraction": round(evaluated / max(1, total), 4),
        "evaluated_fraction_within_a_line": round(typing_evaluated / max(1, typing_total), 4),
    }
    if measure:
        result |= {
            "did_change": summary(change_ms),
            "position": summary(position_ms),
            "context": summary(context_ms),
            "context_by_kind": {
                kind: summary(values) for kind, values in by_kind.items() if values
            },
            "prompt": summary(prompt_ms),
            "request": summary(request_ms),
        }
    return result


async def as_server(function, *args):
    """Run `function` inside an event loop, as the server runs the context engine: a
    document's pending edits are then re-parsed in idle time, not inside a request (the
    parse section above gives that re-parse's cost)."""
    return function(*args)


def bench_index(root: Path, settings: Settings) -> dict:
    index = WorkspaceIndex([root], settings.context, use_process=False)
    started = time.perf_counter()
    index.build()
    build_s = time.perf_counter() - started
    background = WorkspaceIndex([root], settings.context, use_process=True)
    started = time.perf_counter()
    background.start(watch=False)
    start_returned_ms = (time.perf_counter() - started) * 1000
    background.ready.wait(120)
    ready_s = time.perf_counter() - started
    background.stop()
    names = [d.name for path in index.indexed_files() for d in index.definitions_in(path)]
    started = time.perf_counter()
    for name in names:
        index.lookup(name)
    lookup_us = (time.perf_counter() - started) / max(1, len(names)) * 1e6
    return {
        "files": index.stats.files,
        "definitions": index.stats.definitions,
        "skipped": index.stats.skipped,
        "build_in_process_s": round(build_s, 3),
        "files_per_s": round(index.stats.files / build_s, 1),
        "background_start_returns_ms": round(start_returned_ms, 2),
        "background_ready_s": round(ready_s, 3),
        "lookup_us": round(lookup_us, 2),
        "index": index,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer places and keystrokes")
    parser.add_argument("--lines", type=int, default=6000, help="lines of the large file")
    parser.add_argument(
        "--model", help="GGUF whose tokenizer counts tokens (default: the embedded model)"
    )
    parser.add_argument(
        "--cheap", action="store_true", help="regex tokenizer instead of the model's"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    positions = 3 if args.quick else 8

    settings = Settings()
    engine, tokenizer = load_engine(args.model, args.cheap)
    results: dict = {
        "tokenizer": tokenizer,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "noise_floor": noise_floor(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "workspace"
        large = make_workspace(root, args.lines)
        text = large.read_text()
        results["large_file_lines"] = text.count("\n")
        results["parse"] = bench_parse(text, 60 if args.quick else 200)
        index_results = bench_index(root, settings)
        index = index_results.pop("index")
        results["index"] = index_results

        # The editor: the large file plus a few other tabs.
        store = DocumentStore()
        uri = large.resolve().as_uri()
        started = time.perf_counter()
        store.open(uri, "python", 1, text)
        results["did_open_large_ms"] = round((time.perf_counter() - started) * 1000, 2)
        for tab in ("pkg/mod_020.py", "pkg/mod_040.py", "web/store3.ts", "svc/service2.go"):
            tab_path = root / tab
            language = {"py": "python", "ts": "typescript", "go": "go"}[tab_path.suffix[1:]]
            store.open(tab_path.resolve().as_uri(), language, 1, tab_path.read_text())
        builder = ContextEngine(store, index)
        results["typing"] = asyncio.run(
            as_server(
                simulate_typing, engine, settings, store, uri, str(large), positions, builder, True
            )
        )
        results["typing"]["engine_stats"] = builder.stats.as_dict()

        # Baseline in the same run: plain windows (no snippets, unaligned prefix start).
        baseline_store = DocumentStore()
        baseline_store.open(uri, "python", 1, text)
        results["baseline_plain_windows"] = simulate_typing(
            engine,
            settings,
            baseline_store,
            uri,
            str(large),
            positions,
            default_context_builder,
            False,
        )
    engine.close()

    typing = results["typing"]
    p95 = typing["request"]["p95_ms"]
    results["p95_bar_ms"] = P95_BAR_MS
    results["p95_ok"] = p95 < P95_BAR_MS
    print_report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if results["p95_ok"] else 1


def _row(label: str, s: dict) -> str:
    return f"  {label:36} p50 {s['p50_ms']:7.3f}  p95 {s['p95_ms']:7.3f}  max {s['max_ms']:7.3f}"


def print_report(r: dict) -> None:
    t, b, idx, p, n = (
        r["typing"],
        r["baseline_plain_windows"],
        r["index"],
        r["parse"],
        r["noise_floor"],
    )
    print(f"tokenizer: {r['tokenizer']}; CPUs: {r['cpu_count']}; load average {r['load_average']}")
    print(_row("noise floor (a fixed 0.3 ms loop)", n))
    print(f"\nlarge file: {r['large_file_lines']} lines; didOpen {r['did_open_large_ms']} ms")
    print(f"  parse from scratch {p['fresh_parse_ms']} ms")
    print(
        _row(
            "edit + incremental re-parse",
            {k[len("incremental_") :]: v for k, v in p.items() if k.startswith("incremental_")},
        )
    )
    print(f"\ntyping {t['keystrokes']} keystrokes (server work per keystroke, ms):")
    labels = {
        "did_change": "didChange (document + tree edit)",
        "position": "  request: position -> offset",
        "context": "  request: context engine",
        "prompt": "  request: prompt tokens",
        "request": "request before the model",
    }
    for key, label in labels.items():
        print(_row(label, t[key]))
    for kind, s in t["context_by_kind"].items():
        print(_row(f"    context, {kind} (n={s['n']})", s))
    stats = t["engine_stats"]
    print(f"  regions computed {stats['region_misses']}, reused {stats['region_hits']}")
    print(f"  request p95 bar {r['p95_bar_ms']} ms: {'PASS' if r['p95_ok'] else 'FAIL'}")
    print("\nKV-cache reuse (prompt tokens evaluated / prompt tokens; lower is better):")
    for label, s in (("context engine", t), ("plain windows ", b)):
        print(
            f"  {label}: {s['evaluated_fraction']:.1%} overall, "
            f"{s['evaluated_fraction_within_a_line']:.1%} within a line; "
            f"{s['prompt_tokens_avg']} tokens/prompt"
        )
    print(f"\nworkspace index: {idx['files']} files, {idx['definitions']} definitions")
    print(f"  skipped {idx['skipped']}")
    print(f"  build in-process {idx['build_in_process_s']} s ({idx['files_per_s']} files/s)")
    print(
        f"  background: start() returns in {idx['background_start_returns_ms']} ms, "
        f"ready after {idx['background_ready_s']} s; look-up {idx['lookup_us']} µs"
    )


if __name__ == "__main__":
    raise SystemExit(main())
