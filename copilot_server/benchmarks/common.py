"""Small shared pieces of the benchmarks: statistics, scoring, the machine label, tables."""

from __future__ import annotations

import json
import math
import os
import platform
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

FIM_MAX_TOKENS = 64  # both clients' generation cap (our default completion.maxTokens)


def ratio(ours: float | None, naive: float | None) -> float | None:
    if ours is None or naive is None or naive == 0:
        return None
    return ours / naive


def edit_similarity(a: str, b: str) -> float:
    """1 - Levenshtein(a, b) / max(len): 1.0 for equal texts, 0.0 for nothing in common."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return 1.0 - previous[-1] / max(len(a), len(b))


def normalise_lines(text: str) -> str:
    """Text compared line by line without trailing whitespace or trailing blank lines."""
    return "\n".join(line.rstrip() for line in text.rstrip().split("\n"))


def first_line(text: str) -> str:
    return text.split("\n", 1)[0].rstrip()


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def machine_label(threads: int) -> str:
    """Where absolute times were taken: CPU model, cores, the threads llama.cpp used."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load avg {os.getloadavg()[0]:.1f} at start"
    return f"{cpu}, {os.cpu_count()} cores, {threads} llama.cpp threads, {platform.system()}{load}"


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def rss_bytes(pid: int) -> dict[str, int]:
    """Resident memory of a process (VmRSS, and its peak VmHWM) from /proc."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(data), indent=2) + "\n", encoding="utf-8")


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if unit == "%":
            return f"{value * 100:.0f}%"
        if unit == "x":
            return f"{value:.2f}×"
        if abs(value) >= 100:
            return f"{value:.0f}{unit}"
        return f"{value:.2f}{unit}" if abs(value) < 10 else f"{value:.1f}{unit}"
    return f"{value}{unit}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table (also readable in a terminal)."""
    rows = [list(r) for r in rows]
    widths = [
        max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(h)
        for i, h in enumerate(headers)
    ]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
        for r in rows
    ]
    return "\n".join([line, sep, *body])
