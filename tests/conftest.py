"""Session-wide set-up: engine hosts started by tests live in a runtime folder of their
own (never the user's, never another session's), and are stopped when the session ends.

Servers started by the tests use the default `engine.kind = "shared"`: the first one
starts a host and the others connect to it, so the model is loaded about once per session
instead of once per server."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

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


@pytest.fixture
def serve():
    """Starts fake model servers (test_remote's `Fake` behind `handler`) on free ports;
    used by the remote, security and lifecycle tests."""
    from http.server import ThreadingHTTPServer

    from test_remote import _Handler

    servers: list[ThreadingHTTPServer] = []

    def start(fake: Any, handler: type | None = None) -> str:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler or _Handler)
        httpd.daemon_threads = True
        httpd.fake = fake  # type: ignore[attr-defined]
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()
