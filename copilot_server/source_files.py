"""Reading a user's source file for the headless commands: one message per failure."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def read_source(path: Path, purpose: str = "nothing to do") -> str | None:
    """The file's text, or None after printing why it cannot be used (unreadable, binary)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        print(f"copilot-server: cannot read {path}: {exc}", file=sys.stderr)
        return None
    if b"\x00" in raw[:8192]:
        print(f"copilot-server: {path} looks binary; {purpose}", file=sys.stderr)
        return None
    return raw.decode("utf-8", errors="replace")


def common_prefix_length(a: Sequence, b: Sequence) -> int:
    """How many leading items two sequences share (KV reuse, diffs)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
