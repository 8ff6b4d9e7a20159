"""Log levels: ours as configured; pygls's JSON-RPC traffic only when debugging.

pygls logs every message it sends at INFO (whole completion lists and status payloads):
at our default level that is a JSON dump and a stderr write on every keystroke's answer,
which the editor's LSP log then stores. It is shown with `logLevel: debug`.
"""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    set_log_level(level)


def set_log_level(level: str) -> None:
    ours = logging.getLevelName(level.upper())
    logging.getLogger("copilot_server").setLevel(ours)
    traffic = ours if ours <= logging.DEBUG else max(logging.WARNING, ours)
    logging.getLogger("pygls").setLevel(traffic)
