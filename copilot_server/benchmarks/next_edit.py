"""`copilot-server bench next-edit`: next edits mined from real code we did not write.

Pairs come from two released versions of the same packages (PyPI sdists through `pip
download`, npm tarballs through `npm pack`), fetched once into
`bench-results/next-edit-cache/` (never at test time, never by the server). Each file that
changed between the versions is diffed; where two hunks lie close together (at most
NEARBY_LINES apart), the first is taken as the edit the user just made and the second as
the next edit we should suggest:

    before   = the old file                     (history: before -> current is the hunk)
    current  = the old file with hunk 1 applied  (the cursor at the end of hunk 1)
    expected = the old file with both applied

Each source (propagation, model, both: propagation first, the service's order) is asked
through NextEditService with the hunk in its edit history, exactly as the server does.
A suggestion *matches* when applying it to `current` gives `expected`. Reported per source:
exact (matches / pairs, Sweep's "exact match of the updated window"), precision (matches
/ suggestions shown), latency p50/p95, tokens generated and shown. Also: prompt-lookup
speculation against plain decoding on the same prompts (the speedup), and propagation's
server time on a 5,000-line file.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import random
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..sequences import common_prefix_len, common_suffix_len
from ..stats import percentile
from .common import fmt, machine_label, table, write_json

# (registry, package, older version, newer version): pure-source packages with real
# maintenance between two nearby releases.
PACKAGES: tuple[tuple[str, str, str, str], ...] = (
    ("pypi", "requests", "2.31.0", "2.32.0"),
    ("pypi", "click", "8.1.3", "8.1.7"),
    ("pypi", "attrs", "23.1.0", "23.2.0"),
    ("pypi", "rich", "13.5.0", "13.7.0"),
    ("pypi", "httpx", "0.25.0", "0.26.0"),
    ("pypi", "packaging", "23.1", "23.2"),
    ("pypi", "jinja2", "3.1.2", "3.1.3"),
    ("pypi", "flask", "2.3.3", "3.0.0"),
    ("npm", "commander", "11.0.0", "11.1.0"),
    ("npm", "semver", "7.5.4", "7.6.0"),
    ("npm", "express", "4.18.2", "4.19.2"),
    ("npm", "axios", "1.6.0", "1.6.2"),
    ("npm", "ws", "8.14.0", "8.16.0"),
    ("npm", "yargs", "17.6.0", "17.7.2"),
)
LANGUAGES = {".py": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript"}
# Two hunks this close (lines between them) are one edit and its follow-up.
NEARBY_LINES = 10
# A hunk larger than this (lines on either side) is a rewrite, not an edit to predict.
MAX_HUNK_LINES = 6
# At most this many pairs from one file, so one busy file does not make the bench.
MAX_PAIRS_PER_FILE = 4
# The model runs on a sample (seconds per pair on a laptop CPU); propagation on all pairs.
QUICK_MODEL_PAIRS = 16
FULL_MODEL_PAIRS = 100
QUICK_SPEEDUP_PAIRS = 4
FULL_SPEEDUP_PAIRS = 12


@dataclass(frozen=True)
class Pair:
    id: str
    language: str
    path: str
    before: str
    current: str
    expected: str
    # The recent hunk in `current`: `new` stands at `start` and replaced `old`.
    start: int
    old: str
    new: str
    # Every other hunk of the file's diff, in `current`: (start, end, replacement). A
    # suggestion that makes (part of) one of them is an edit the author made.
    pending: tuple[tuple[int, int, str], ...] = ()

    @property
    def cursor(self) -> int:
        return self.start + len(self.new)


# -- mining --------------------------------------------------------------------------------


def fetch(cache: Path, registry: str, name: str, version: str) -> Path:
    """The package's sources extracted under `cache` (downloaded on first use)."""
    folder = cache / registry / f"{name}-{version}"
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    if registry == "pypi":
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "--quiet", "-d", str(downloads), f"{name}=={version}"],
            check=True,
        )  # fmt: skip
        candidates = [
            p
            for p in downloads.iterdir()
            if p.name.lower().startswith(f"{name.lower()}-{version}")
            and p.name.endswith((".tar.gz", ".tgz"))
        ]
    else:
        subprocess.run(
            ["npm", "pack", "--silent", f"{name}@{version}"],
            check=True,
            cwd=downloads,
            stdout=subprocess.DEVNULL,
        )
        candidates = [p for p in downloads.iterdir() if p.name == f"{name}-{version}.tgz"]
    if not candidates:
        raise RuntimeError(f"no source archive for {name} {version} in {downloads}")
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(candidates[0]) as archive:
        for member in archive.getmembers():
            if member.isfile() and Path(member.name).suffix in LANGUAGES:
                data = archive.extractfile(member)
                if data is None:
                    continue
                # Drop the archive's top folder (name-version/ or package/).
                relative = Path(*Path(member.name).parts[1:])
                if ".." in relative.parts:
                    continue
                target = folder / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data.read())
    return folder


def source_files(root: Path) -> dict[str, str]:
    files = {}
    for path in sorted(root.rglob("*")):
        bundled = {"dist", "build", "umd"} & set(path.relative_to(root).parts)
        if bundled or ".min." in path.name:
            continue  # a bundle repeats the sources' changes: each would count twice
        if path.is_file() and path.suffix in LANGUAGES:
            try:
                files[str(path.relative_to(root))] = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
    return files


def mine_pairs(package: str, old_files: dict[str, str], new_files: dict[str, str]) -> list[Pair]:
    pairs = []
    for rel, old in sorted(old_files.items()):
        new = new_files.get(rel)
        if new is None or new == old:
            continue
        language = LANGUAGES[Path(rel).suffix]
        a = old.splitlines(keepends=True)
        b = new.splitlines(keepends=True)
        hunks = [
            op
            for op in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
            if op[0] != "equal"
        ]
        found = 0
        for index, (first, second) in enumerate(zip(hunks, hunks[1:], strict=False)):
            if found >= MAX_PAIRS_PER_FILE:
                break
            others = hunks[:index] + hunks[index + 1 :]
            pair = _pair(package, rel, language, a, b, first, second, others)
            if pair is not None:
                pairs.append(pair)
                found += 1
    return pairs


def _pair(
    package: str,
    rel: str,
    language: str,
    a: list[str],
    b: list[str],
    first: tuple[str, int, int, int, int],
    second: tuple[str, int, int, int, int],
    others: list[tuple[str, int, int, int, int]],
) -> Pair | None:
    _, i1, i2, j1, j2 = first
    _, k1, k2, l1, l2 = second
    if k1 - i2 > NEARBY_LINES:
        return None
    for lo, hi in ((i1, i2), (j1, j2), (k1, k2), (l1, l2)):
        if hi - lo > MAX_HUNK_LINES:
            return None
    old_1, new_1 = "".join(a[i1:i2]), "".join(b[j1:j2])
    old_2, new_2 = "".join(a[k1:k2]), "".join(b[l1:l2])
    if old_1.split() == new_1.split() or old_2.split() == new_2.split():
        return None  # whitespace-only: formatting, not an edit anyone predicts
    before = "".join(a)
    current = "".join(a[:i1]) + new_1 + "".join(a[i2:])
    expected = "".join(a[:i1]) + new_1 + "".join(a[i2:k1]) + new_2 + "".join(a[k2:])
    # The recent hunk trimmed to what differs (as the editor's keystrokes would leave it).
    at = len("".join(a[:i1]))
    prefix = common_prefix_len(old_1, new_1)
    suffix = common_suffix_len(old_1, new_1, prefix)
    offsets = [0]
    for line in a:
        offsets.append(offsets[-1] + len(line))
    shift = len(new_1) - len(old_1)
    pending = tuple(
        (
            offsets[o1] + (shift if o1 >= i2 else 0),
            offsets[o2] + (shift if o1 >= i2 else 0),
            "".join(b[n1:n2]),
        )
        for _, o1, o2, n1, n2 in others
    )
    return Pair(
        id=f"{package}:{rel}:{i1}",
        language=language,
        path=rel,
        before=before,
        current=current,
        expected=expected,
        start=at + prefix,
        old=old_1[prefix : len(old_1) - suffix],
        new=new_1[prefix : len(new_1) - suffix],
        pending=pending,
    )


def load_pairs(cache: Path, say=print) -> list[Pair]:  # noqa: ANN001
    """Every pair of every package (mined once, then read from the cache)."""
    stored = cache / "pairs.json"
    key = [list(p) for p in PACKAGES]
    if stored.is_file():
        data = json.loads(stored.read_text(encoding="utf-8"))
        if data.get("packages") == key:
            return [
                Pair(**{**p, "pending": tuple(tuple(h) for h in p.get("pending", ()))})
                for p in data["pairs"]
            ]
    pairs: list[Pair] = []
    for registry, name, old_version, new_version in PACKAGES:
        try:
            old_root = fetch(cache, registry, name, old_version)
            new_root = fetch(cache, registry, name, new_version)
        except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
            say(f"  skipped {name}: {exc}")
            continue
        found = mine_pairs(name, source_files(old_root), source_files(new_root))
        say(f"  {name} {old_version} -> {new_version}: {len(found)} pairs")
        pairs.extend(found)
    write_json(stored, {"packages": key, "pairs": [asdict(p) for p in pairs]})
    return pairs


def sample(pairs: list[Pair], n: int, seed: int) -> list[Pair]:
    """`n` pairs, the same share from each language, the same ones for the same seed."""
    if n >= len(pairs):
        return list(pairs)
    rng = random.Random(seed)
    by_language: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_language.setdefault(pair.language, []).append(pair)
    chosen: list[Pair] = []
    share = max(1, n // len(by_language))
    for group in by_language.values():
        chosen.extend(rng.sample(group, min(share, len(group))))
    # A language with fewer pairs than its share leaves room: fill it from the others.
    taken = {p.id for p in chosen}
    rest = [p for p in pairs if p.id not in taken]
    chosen.extend(rng.sample(rest, max(0, min(n - len(chosen), len(rest)))))
    return chosen[:n]


# -- asking the service --------------------------------------------------------------------


@dataclass
class Outcome:
    pair: str
    language: str
    source: str
    offered: bool
    matched: bool  # exactly the expected next edit
    correct: bool  # (part of) an edit the author made: the expected one or another
    latency_ms: float
    tokens_generated: int = 0
    tokens_shown: int = 0
    dropped: tuple[str, ...] = ()


def make_service(settings: Settings, engine: Any):  # noqa: ANN201
    from ..next_edit.service import NextEditService

    async def inline(fn):  # noqa: ANN001, ANN202 - the bench runs the model in line
        return fn()

    return NextEditService(lambda: settings, lambda: engine, inline)


def ask(service: Any, pair: Pair, uri: str) -> Any:
    """One request with the pair's hunk as the document's last edit."""
    from ..next_edit.service import NextEditRequest

    service.history.forget(uri)
    old_end = pair.start + len(pair.old)
    service.history.record(
        uri, pair.before, pair.current, pair.start, old_end, pair.start + len(pair.new)
    )
    request = NextEditRequest(uri, pair.path, pair.language, pair.current, pair.cursor, 1)
    return asyncio.run(service.suggest(request))


def outcome(pair: Pair, result: Any, source: str) -> Outcome:
    edit = result.edit
    matched = edit is not None and edit.apply(pair.current) == pair.expected
    correct = matched or (edit is not None and made_by_author(pair, edit))
    return Outcome(
        pair.id,
        pair.language,
        source,
        edit is not None,
        matched,
        correct,
        result.latency_ms,
        result.tokens_generated,
        result.tokens_shown,
        tuple(result.dropped),
    )


def made_by_author(pair: Pair, edit: Any) -> bool:
    """Whether `edit` makes (part of) one of the author's hunks: it lies inside the hunk's
    region and brings the region closer to what the author wrote there."""
    from .common import edit_similarity

    for start, end, text in pair.pending:
        if start <= edit.start and edit.end <= end:
            region = pair.current[start:end]
            changed = region[: edit.start - start] + edit.text + region[edit.end - start :]
            if changed == text or edit_similarity(changed, text) > edit_similarity(region, text):
                return True
    return False


def run_source(
    settings: Settings,
    engine: Any,
    pairs: list[Pair],
    source: str,
    say=print,  # noqa: ANN001
) -> list[Outcome]:
    ne = {"propagation": source == "propagation", "model": source == "model"}
    service = make_service(settings.merged({"next_edit": ne}), engine)
    outcomes = []
    for index, pair in enumerate(pairs):
        outcomes.append(outcome(pair, ask(service, pair, f"file:///bench/{index}"), source))
        if source == "model" and (index + 1) % 10 == 0:
            say(f"  model: {index + 1}/{len(pairs)}")
    return outcomes


def both(propagation: list[Outcome], model: list[Outcome]) -> list[Outcome]:
    """The service's order: propagation's answer where it has one, else the model's."""
    out = []
    for p, m in zip(propagation, model, strict=True):
        if p.offered:
            out.append(p)
        else:
            latency = p.latency_ms + m.latency_ms
            out.append(Outcome(**{**asdict(m), "source": "both", "latency_ms": latency}))
    return out


def scores(outcomes: list[Outcome]) -> dict[str, Any]:
    offered = [o for o in outcomes if o.offered]
    matched = [o for o in outcomes if o.matched]
    correct = [o for o in outcomes if o.correct]
    latencies = [o.latency_ms for o in outcomes]
    generated = sum(o.tokens_generated for o in outcomes)
    shown = sum(o.tokens_shown for o in outcomes if o.offered)
    return {
        "pairs": len(outcomes),
        "offered": len(offered),
        "matched": len(matched),
        "correct": len(correct),
        "exact": len(matched) / len(outcomes) if outcomes else None,
        # Suggestions that are an edit the author made (the expected one or another).
        "precision": len(correct) / len(offered) if offered else None,
        # Suggestions that are exactly the expected next edit.
        "precision_exact": len(matched) / len(offered) if offered else None,
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p95_ms": percentile(latencies, 95),
        "tokens_generated": generated,
        "tokens_shown": shown,
    }


# -- speculation and propagation speed ------------------------------------------------------


def speedup(engine: Any, pairs: list[Pair], draft_tokens: int, window_lines: int) -> dict:
    """The same rewrite prompts decoded with and without prompt-lookup drafts."""
    from ..documents.history import Hunk
    from ..next_edit.rewrite import run_rewrite
    from ..prompts.next_edit import build_prompt, window_around

    rows = []
    for pair in pairs:
        hunk = Hunk(pair.start, pair.old, pair.new, 0.0, 0.0)
        window = window_around(pair.current, pair.cursor, window_lines)
        prompt = build_prompt(
            engine,
            path=pair.path,
            language=pair.language,
            document=pair.current,
            window=window,
            hunks=[hunk],
        )
        row = {}
        for name, drafts in (("plain", 0), ("lookup", draft_tokens)):
            result = run_rewrite(engine, prompt, threading.Event(), draft_tokens=drafts)
            g = result.generation
            row[name] = {
                "generation_ms": g.generation_ms,
                "tokens": g.tokens_generated,
                "decode_calls": result.decode_calls,
                "accepted": result.accepted,
                "drafted": result.drafted,
                "text": g.text,
            }
        row["same_output"] = row["plain"].pop("text") == row["lookup"].pop("text")
        rows.append(row)
    plain = sum(r["plain"]["generation_ms"] for r in rows)
    lookup = sum(r["lookup"]["generation_ms"] for r in rows)
    tokens = sum(r["lookup"]["tokens"] for r in rows)
    calls = sum(r["lookup"]["decode_calls"] for r in rows)
    return {
        "prompts": len(rows),
        "plain_ms_per_token": plain / max(1, sum(r["plain"]["tokens"] for r in rows)),
        "lookup_ms_per_token": lookup / max(1, tokens),
        "speedup": plain / lookup if lookup else None,
        "tokens_per_decode_call": tokens / max(1, calls),
        "draft_acceptance": sum(r["lookup"]["accepted"] for r in rows)
        / max(1, sum(r["lookup"]["drafted"] for r in rows)),
        "same_output": sum(r["same_output"] for r in rows),
    }


def propagation_speed(settings: Settings, lines: int = 5_000, requests: int = 50) -> dict:
    """Server time of one propagation request (history, rules, filters, LSP positions) on
    a `lines`-line file made of real code (the stdlib), and of recording one keystroke."""
    import sysconfig

    from ..lsp.next_edit import position
    from ..next_edit.service import NextEditRequest

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    text = ""
    for name in ("argparse.py", "typing.py", "inspect.py", "tarfile.py", "pathlib.py"):
        if text.count("\n") >= lines:
            break
        text += (stdlib / name).read_text(encoding="utf-8")
    text = "".join(text.splitlines(keepends=True)[:lines])
    service = make_service(settings.merged({"next_edit": {"model": False}}), None)
    rng = random.Random(5)
    # Renames of names that occur many times: the worst case for the search.
    names = ["self", "parser", "action", "args", "name", "value", "result", "kwargs"]
    times, record_times = [], []
    for i in range(requests):
        name = names[i % len(names)]
        starts = [j for j in range(len(text)) if text.startswith(name, j)][:400]
        at = rng.choice(starts)
        current = text[:at] + name + "_x" + text[at + len(name) :]
        began = time.perf_counter()
        service.history.record(
            "file:///big.py", text, current, at, at + len(name), at + len(name) + 2
        )
        record_times.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        request = NextEditRequest("file:///big.py", "big.py", "python", current, at + len(name) + 2)
        edit = service.propagated(request)
        if edit is not None:
            position(current, edit.start, "utf-16")
            position(current, edit.end, "utf-16")
        times.append((time.perf_counter() - began) * 1000)
        service.history.forget("file:///big.py")
    return {
        "lines": text.count("\n"),
        "requests": requests,
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "max_ms": max(times),
        "record_keystroke_p95_ms": percentile(record_times, 95),
    }


# -- the command ---------------------------------------------------------------------------


def run(
    settings: Settings,
    model_path: Path,
    threads: int,
    quick: bool,
    out: Path,
    seed: int = 7,
    say=print,  # noqa: ANN001
) -> dict[str, Any]:
    from ..engines.loader import local_engine

    cache = out / "next-edit-cache"
    started = time.perf_counter()
    say("next-edit: mining pairs (first run downloads the packages)")
    pairs = load_pairs(cache, say)
    languages = sorted({p.language for p in pairs})
    say(f"  {len(pairs)} pairs in {', '.join(languages)}")
    say(f"next-edit: propagation on {len(pairs)} pairs")
    prop_all = run_source(settings, None, pairs, "propagation", say)
    chosen = sample(pairs, QUICK_MODEL_PAIRS if quick else FULL_MODEL_PAIRS, seed)
    by_id = {o.pair: o for o in prop_all}
    prop = [by_id[p.id] for p in chosen]
    say("next-edit: propagation speed on a 5,000-line file")
    speed = propagation_speed(settings)
    say("next-edit: loading the model")
    engine = local_engine(model_path, settings.model)
    try:
        say(f"next-edit: model on {len(chosen)} pairs")
        model = run_source(settings, engine, chosen, "model", say)
        n = QUICK_SPEEDUP_PAIRS if quick else FULL_SPEEDUP_PAIRS
        say(f"next-edit: speculation vs plain decoding on {n} prompts")
        spec = speedup(
            engine,
            sample(chosen, n, seed + 1),
            settings.next_edit.draft_tokens,
            settings.next_edit.window_lines,
        )
    finally:
        engine.close()
    combined = both(prop, model)
    report = {
        "machine": machine_label(threads),
        "model": model_path.name,
        "quick": quick,
        "pairs_total": len(pairs),
        "pairs_by_language": {lang: sum(p.language == lang for p in pairs) for lang in languages},
        "pairs_measured": len(chosen),
        # Propagation needs no model: measured on every pair too.
        "propagation_all_pairs": scores(prop_all),
        "packages": [list(p) for p in PACKAGES],
        "sources": {
            "propagation": scores(prop),
            "model": scores(model),
            "both": scores(combined),
        },
        "by_language": {
            lang: {
                name: scores([o for o in outcomes if o.language == lang])
                for name, outcomes in (("propagation", prop), ("model", model), ("both", combined))
            }
            for lang in languages
        },
        "dropped": _dropped(prop + model),
        "speculation": spec,
        "propagation_speed": speed,
        "duration_s": time.perf_counter() - started,
        "outcomes": [asdict(o) for o in prop_all + model],
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    write_json(out / f"next-edit-{stamp}.json", report)
    return report


def _dropped(outcomes: list[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in outcomes:
        for reason in o.dropped:
            counts[f"{o.source}:{reason}"] = counts.get(f"{o.source}:{reason}", 0) + 1
    return counts


def render(report: dict[str, Any]) -> str:
    rows = []
    for name, s in report["sources"].items():
        rows.append(
            [
                name,
                str(s["pairs"]),
                str(s["offered"]),
                fmt(s["exact"], "%"),
                fmt(s["precision"], "%"),
                fmt(s["precision_exact"], "%"),
                fmt(s["latency_p50_ms"]),
                fmt(s["latency_p95_ms"]),
                f"{s['tokens_generated']} / {s['tokens_shown']}",
            ]
        )
    headers = [
        "source",
        "pairs",
        "shown",
        "exact",
        "precision",
        "precision (exact)",
        "p50 ms",
        "p95 ms",
        "tokens generated / shown",
    ]
    spec = report["speculation"]
    speed = report["propagation_speed"]
    by_lang = ", ".join(f"{n} {lang}" for lang, n in report["pairs_by_language"].items())
    lines = [
        f"Next edits: {report['pairs_measured']} of {report['pairs_total']} pairs ({by_lang}); "
        f"model {report['model']}; {report['machine']}",
        "",
        table(headers, rows),
        "",
        f"Prompt-lookup speculation: {fmt(spec['speedup'], 'x')} faster decoding than plain "
        f"greedy on {spec['prompts']} rewrite prompts ({fmt(spec['plain_ms_per_token'])} -> "
        f"{fmt(spec['lookup_ms_per_token'])} ms/token; {fmt(spec['tokens_per_decode_call'])} "
        f"tokens per decode call; {fmt(spec['draft_acceptance'], '%')} of drafted tokens kept; "
        f"same output on {spec['same_output']}/{spec['prompts']}).",
        f"Propagation server time on a {speed['lines']}-line file: p50 "
        f"{fmt(speed['p50_ms'])} ms, p95 {fmt(speed['p95_ms'])} ms, max {fmt(speed['max_ms'])} "
        f"ms; recording a keystroke p95 {fmt(speed['record_keystroke_p95_ms'])} ms.",
        f"Dropped by filters: {report['dropped'] or 'none'}. Took {report['duration_s']:.0f} s.",
    ]
    return "\n".join(lines)


def handle(args: argparse.Namespace, settings: Settings, model_path: Path, threads: int) -> int:
    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = run(settings, model_path, threads, args.quick, Path(args.out), args.seed, say)
    print(render(report))
    return 0
