"""Stopping the engine hosts that tests started (used by conftest.py and by tests that kill
hosts themselves). A module of its own: `from conftest import ...` is ambiguous once a
sub-folder has its own conftest.py."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def stop_engine_hosts(folder: Path, timeout: float = 10.0) -> None:
    """SIGTERM every engine host whose lock file is under `folder` (its pid is written
    there), then SIGKILL what is left."""
    pids = []
    for lock in folder.glob("**/engine-*.lock"):
        try:
            pid = int(lock.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if b"copilot_server" in cmdline and b"host" in cmdline:  # ours, not a reused pid
            pids.append(pid)
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            if _is_zombie(pid):
                break
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists() and not _is_zombie(pid):
            os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return ") Z" in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
