"""Session-wide set-up: engine hosts started by tests live in a runtime folder of their
own (never the user's, never another session's), and are stopped when the session ends.

Servers started by the tests use the default `engine.kind = "shared"`: the first one
starts a host and the others connect to it, so the model is loaded about once per session
instead of once per server."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from engine_hosts import stop_engine_hosts

# Set at import, before test modules are collected: some build a server's environment
# from os.environ when they are imported. A short path: a Unix socket's path has at most
# 107 bytes.
RUNTIME_DIR = Path(tempfile.mkdtemp(prefix="cs-rt-"))
RUNTIME_DIR.chmod(0o700)
_SAVED = os.environ.get("XDG_RUNTIME_DIR")
os.environ["XDG_RUNTIME_DIR"] = str(RUNTIME_DIR)


@pytest.fixture(scope="session", autouse=True)
def engine_host_runtime_dir():
    try:
        yield RUNTIME_DIR
    finally:
        stop_engine_hosts(RUNTIME_DIR)
        if _SAVED is None:
            os.environ.pop("XDG_RUNTIME_DIR", None)
        else:
            os.environ["XDG_RUNTIME_DIR"] = _SAVED
        shutil.rmtree(RUNTIME_DIR, ignore_errors=True)
