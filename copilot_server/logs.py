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
    logging.getLogger("copilot_server").setLevel(level.upper())
    logging.getLogger("pygls").setLevel(
        logging.DEBUG if level.lower() == "debug" else max(logging.WARNING, _level(level))
    )


def _level(level: str) -> int:
    return logging.getLevelName(level.upper())
