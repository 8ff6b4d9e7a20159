"""Soak: the long run of tests/fuzz against real servers, with the real model, and the
report issue 19 asks for.

    nice .venv/bin/python -m copilot_server.benchmarks.soak                 # the full run
    nice .venv/bin/python -m copilot_server.benchmarks.soak --quick         # a tenth of it
    nice .venv/bin/python -m copilot_server.benchmarks.soak --seed 7 --json soak.json

Server A (UTF-16, the real model in process: engine.kind "local") gets, in order:
  warm-up     a 60-keystroke typing storm, 300 frames, 50 edit sequences; then RSS and
              threads are taken (the "after warm-up" level);
  frames      >= 10,000 malformed or random frames (tests/fuzz's generator): every
              request owed an answer must get exactly one; then 200 bad requests one at
              a time, for the latency of an error answer;
  sequences   >= 1,000 random edit sequences in UTF-16 (one to four changes per
              notification; CRLF, CR, FF, VT, NEL, U+2028, emoji, CJK, lone surrogates),
              the server's copy compared with the reference after every notification;
  storm       1,000 keystrokes at 30 ms with an inline completion request each (the
              previous one cancelled, as VS Code does), all answered.
Server B (UTF-8, as Neovim negotiates; no model, as the model plays no part in sync):
  sequences   >= 1,000 in UTF-8, with requests at random positions.

Reported: crashes, unanswered requests, divergences per encoding, popups (the most times
one message was shown within a minute), stderr bytes, RSS and threads after warm-up and
at the end. Exit status 1 when a target is missed: 0 crashes, 0 unanswered, 0
divergences, <= 1 popup per problem per minute, stderr <= 5 MB, RSS within 50 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ..stats import percentile
from .fuzzing import (
    RawClient,
    error_codes,
    max_popups_per_minute,
    proc_status,
    random_frames,
    random_sequence,
    same_text,
    server_env,
)

STORM_URI = "file:///soak/storm.py"
FRAMES_URI = "file:///soak/frames-not-open.py"  # no model run for a fuzzed request
# What the storm types: ordinary code, with a backspace now and then.
STORM_CODE = '''import json
from pathlib import Path


def load_config(path):
    """Read a JSON config file and return its settings."""
    with open(path) as f:
        data = json.load(f)
    return data.get("settings", {})


def save_config(path, settings):
    Path(path).write_text(json.dumps({"settings": settings}, indent=2))


class Counter:
    def __init__(self):
        self.counts = {}

    def add(self, word):
        self.counts[word] = self.counts.get(word, 0) + 1

    def most_common(self, n=3):
        return sorted(self.counts.items(), key=lambda kv: -kv[1])[:n]
'''


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def snapshot(client: RawClient) -> dict[str, int]:
    status = proc_status(client.proc.pid)
    return {"rss_kb": status.get("VmRSS", 0), "threads": status.get("Threads", 0)}


class Tally:
    def __init__(self) -> None:
        self.crashes = 0
        self.owed = 0
        self.unanswered = 0
        self.answered_twice = 0
        self.internal_errors = 0
        self.divergences: Counter = Counter()
        self.checked: Counter = Counter()
        self.examples: list[str] = []

    def check_answers(self, client: RawClient, ids: list, timeout: float, what: str) -> None:
        missing = client.wait_all(ids, timeout)
        self.owed += len(ids)
        self.unanswered += len(missing)
        self.answered_twice += sum(1 for i in ids if len(client.answers.get(i, [])) > 1)
        internal = [i for i in ids if error_codes(client, [i])[-32603]]
        self.internal_errors += len(internal)
        if missing:
            self.examples.append(f"{what}: {len(missing)} unanswered, e.g. {missing[:3]!r}"[:300])
        for i in internal[:3]:
            message = client.answers[i][0]["error"]["message"]
            self.examples.append(f"{what}: -32603 {message}"[:300])
        if client.proc.poll() is not None:
            self.crashes += 1
            self.examples.append(f"{what}: the server exited with {client.proc.returncode}")


def run_frames(client: RawClient, rng: random.Random, count: int, first_id: int, tally: Tally):
    owed: list = []
    for fuzz in random_frames(rng, count, FRAMES_URI, first_id):
        client.send_bytes(fuzz.data)
        owed += fuzz.answer_ids
    client.request("workspace/executeCommand", {"command": "copilot.status"}, timeout=600)
    tally.check_answers(client, owed, 60, "frames")
    return len(owed)


def error_latencies(client: RawClient, count: int) -> list[float]:
    """Milliseconds from sending a bad request to its error, one request at a time."""
    out = []
    for n in range(count):
        msg_id = f"latency-{n}"
        client.sent_times[msg_id] = time.monotonic()
        client.send({"jsonrpc": "2.0", "id": msg_id, "method": "textDocument/hover", "params": []})
        client.wait(msg_id, timeout=30)
        out.append((client.answer_times[msg_id] - client.sent_times[msg_id]) * 1000)
    return out


def run_sequences(
    client: RawClient,
    rng: random.Random,
    encoding: str,
    count: int,
    tally: Tally,
    *,
    completions: bool,
    prefix: str,
) -> None:
    steps = 8
    for batch_start in range(0, count, 50):  # in batches: the pipe and memory stay small
        checks, requests = [], []
        for n in range(batch_start, min(count, batch_start + 50)):
            uri = f"file:///soak/{prefix}/{encoding}/{n}.py"
            seq = random_sequence(rng, uri, encoding, steps, surrogates=rng.random() < 0.3)
            client.open(uri, seq.text)
            for step, changes in enumerate(seq.notifications):
                client.change(uri, step + 2, changes)
                checks.append((client.server_text_async(uri), seq, step))
                if rng.random() < 0.3:
                    position = {"line": rng.randrange(6), "character": rng.randrange(12)}
                    ident = {"uri": uri}
                    requests.append(
                        client.request_async(
                            "textDocument/codeAction",
                            {
                                "textDocument": ident,
                                "range": {"start": position, "end": position},
                                "context": {"diagnostics": []},
                            },
                        )
                    )
                    if completions:
                        requests.append(
                            client.request_async(
                                "textDocument/inlineCompletion",
                                {
                                    "textDocument": ident,
                                    "position": position,
                                    "context": {"triggerKind": 2},
                                },
                            )
                        )
            client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        tally.check_answers(client, [c[0] for c in checks] + requests, 300, f"{encoding} sequences")
        for msg_id, seq, step in checks:
            tally.checked[encoding] += 1
            answer = (client.answers.get(msg_id) or [{}])[0]
            held = answer.get("result", {}).get("text") if "result" in answer else None
            if held is None or not same_text(held, seq.expected[step]):
                tally.divergences[encoding] += 1
                if len(tally.examples) < 20:
                    tally.examples.append(
                        f"{encoding} divergence: opened {seq.text!r} changes "
                        f"{seq.notifications[: step + 1]!r}"[:600]
                    )
        if client.proc.poll() is not None:
            return


def run_storm(
    client: RawClient, keystrokes: int, interval_s: float, tally: Tally, pause_s: float = 0.5
) -> dict:
    """Types STORM_CODE (again and again) at `interval_s` per key, an inline completion
    request after each key, the previous request cancelled if still open, and a pause of
    `pause_s` at each line end."""
    client.open(STORM_URI, "")
    text, version, ids = "", 1, []
    rng = random.Random(1)
    previous = None
    started = time.monotonic()
    for n in range(keystrokes):
        line = text.count("\n")
        column = len(text) - (text.rfind("\n") + 1)
        if text and rng.random() < 0.05:  # a backspace within the line
            if column:
                change = {
                    "range": {
                        "start": {"line": line, "character": column - 1},
                        "end": {"line": line, "character": column},
                    },
                    "text": "",
                }
                text = text[:-1]
            else:
                continue
        else:
            char = STORM_CODE[len(text) % len(STORM_CODE)] if len(text) < 5000 else "\n"
            change = {
                "range": {
                    "start": {"line": line, "character": column},
                    "end": {"line": line, "character": column},
                },
                "text": char,
            }
            text += char
        version += 1
        client.change(STORM_URI, version, [change])
        if previous is not None and not client.answers.get(previous):
            client.notify("$/cancelRequest", {"id": previous})
        line = text.count("\n")
        column = len(text) - (text.rfind("\n") + 1)
        previous = client.request_async(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": STORM_URI},
                "position": {"line": line, "character": column},
                "context": {"triggerKind": 2},
            },
        )
        ids.append(previous)
        if text.endswith("\n"):
            started += pause_s  # a hesitation at each line end: the model gets to answer
        time.sleep(max(0.0, started + (n + 1) * interval_s - time.monotonic()))
    tally.check_answers(client, ids, 300, "storm")
    held = client.wait(client.server_text_async(STORM_URI), 60).get("result", {}).get("text")
    if held != text:
        tally.divergences["storm"] += 1
    codes = error_codes(client, ids)
    latencies = [
        (client.answer_times[i] - client.sent_times[i]) * 1000
        for i in ids
        if i in client.answer_times and "result" in client.answers[i][0]
    ]
    suggested = sum(
        1
        for i in ids
        if client.answers.get(i) and (client.answers[i][0].get("result") or {}).get("items")
    )
    return {
        "keystrokes": len(ids),
        "answers": dict(codes),
        "with_suggestion": suggested,
        "answer_ms_p50": round(percentile(latencies, 50), 1) if latencies else None,
    }


def start(tmp: Path, name: str, args: list[str]) -> RawClient:
    return RawClient(["--stdio", *args], server_env(tmp), tmp / f"{name}.stderr")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="a tenth of each phase")
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--sequences", type=int, default=1_000, help="per encoding")
    parser.add_argument("--keystrokes", type=int, default=1_000)
    parser.add_argument("--interval-ms", type=float, default=30.0)
    parser.add_argument("--json", help="write the report here too")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.sequences, args.keystrokes = 1_000, 100, 100
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    log(f"seed {seed} (repeat with --seed {seed})")
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="copilot-soak-"))
    # The model in this process, so its RSS is the whole server's.
    config = tmp / "config" / "copilot-server"
    config.mkdir(parents=True)
    (config / "config.json").write_text(json.dumps({"engine": {"kind": "local"}}))
    tally = Tally()
    report: dict = {"seed": seed}
    began = time.monotonic()

    a = start(tmp, "a", [])
    try:
        a.initialize()
        log("A: warm-up (typing, frames, sequences)")
        run_storm(a, 60, args.interval_ms / 1000, Tally())
        a.notify("textDocument/didClose", {"textDocument": {"uri": STORM_URI}})
        run_frames(a, rng, 300, 10_000_000, Tally())
        run_sequences(a, rng, "utf-16", 50, Tally(), completions=False, prefix="warm")
        warm = snapshot(a)
        log(f"A: after warm-up {warm}")
        log(f"A: {args.frames} frames")
        report["frames"] = {
            "sent": args.frames,
            "owed_answers": run_frames(a, rng, args.frames, 0, tally),
        }
        phases = {"after_frames": snapshot(a)}
        latencies = error_latencies(a, 200)
        report["frames"]["error_answer_ms"] = {
            "p50": round(percentile(latencies, 50), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(max(latencies), 2),
        }
        log(f"A: {args.sequences} UTF-16 sequences")
        run_sequences(a, rng, "utf-16", args.sequences, tally, completions=False, prefix="a")
        phases["after_sequences"] = snapshot(a)
        log(f"A: {args.keystrokes}-keystroke storm at {args.interval_ms:.0f} ms")
        a.notify("textDocument/didClose", {"textDocument": {"uri": STORM_URI}})
        report["storm"] = run_storm(a, args.keystrokes, args.interval_ms / 1000, tally)
        time.sleep(2)  # let the last generation finish before measuring
        end = snapshot(a)
        report["server_a"] = {"after_warm_up": warm, **phases, "at_end": end}
        report["server_a"]["rss_growth_mb"] = round((end["rss_kb"] - warm["rss_kb"]) / 1024, 1)
        popups_a = a.popups()
    finally:
        a.close()
    b = start(tmp, "b", ["--model", "/nonexistent/copilot-soak.gguf"])
    try:
        answer = b.initialize(["utf-8", "utf-16"])
        assert answer["result"]["capabilities"]["positionEncoding"] == "utf-8"
        log(f"B: {args.sequences} UTF-8 sequences")
        b_start = snapshot(b)
        run_sequences(b, rng, "utf-8", args.sequences, tally, completions=True, prefix="b")
        report["server_b"] = {"at_start": b_start, "at_end": snapshot(b)}
        popups_b = b.popups()
    finally:
        b.close()

    stderr = {name: (tmp / f"{name}.stderr").stat().st_size for name in ("a", "b")}
    popups = popups_a + popups_b
    report.update(
        {
            "crashes": tally.crashes,
            "requests_owed_an_answer": tally.owed,
            "unanswered": tally.unanswered,
            "answered_twice": tally.answered_twice,
            "internal_errors": tally.internal_errors,
            "views_checked": dict(tally.checked),
            "divergences": {k: tally.divergences[k] for k in ("utf-16", "utf-8", "storm")},
            "popups": {
                "total": len(popups),
                "distinct": len({m for _, m in popups}),
                "max_per_message_per_minute": max_popups_per_minute(popups),
            },
            "stderr_bytes": stderr,
            "minutes": round((time.monotonic() - began) / 60, 1),
            "examples": tally.examples[:10],
        }
    )
    targets = {
        "0 crashes": tally.crashes == 0,
        "0 unanswered": tally.unanswered == 0 and tally.answered_twice == 0,
        "0 divergences": sum(tally.divergences.values()) == 0,
        "<= 1 popup per problem per minute": report["popups"]["max_per_message_per_minute"] <= 1,
        "stderr <= 5 MB": sum(stderr.values()) <= 5 * 1024 * 1024,
        "RSS within 50 MB of warm-up": abs(report["server_a"]["rss_growth_mb"]) <= 50,
    }
    report["targets"] = targets
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    log(f"stderr kept in {tmp}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
