"""pygls's JSON-RPC traffic is logged only when debugging."""

from __future__ import annotations

import logging

import copilot_server.lsp  # noqa: F401 - names the LSP library's traffic logger to logs.py
from copilot_server.logs import set_log_level


def test_pygls_traffic_is_logged_only_at_debug():
    pygls_log, ours = logging.getLogger("pygls"), logging.getLogger("copilot_server")
    saved = pygls_log.level, ours.level
    try:
        set_log_level("info")
        assert not pygls_log.isEnabledFor(logging.INFO)  # "Sending data: {…}" per message
        assert ours.isEnabledFor(logging.INFO)
        set_log_level("debug")
        assert pygls_log.isEnabledFor(logging.DEBUG) and ours.isEnabledFor(logging.DEBUG)
        set_log_level("error")
        assert not pygls_log.isEnabledFor(logging.WARNING)
        assert not ours.isEnabledFor(logging.WARNING)
    finally:
        pygls_log.setLevel(saved[0])
        ours.setLevel(saved[1])
