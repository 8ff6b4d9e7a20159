"""Log levels: ours as configured; the LSP library's JSON-RPC traffic only when debugging.

The LSP library (named in lsp/, which registers its logger here) logs every message it
sends at INFO (whole completion lists and status payloads):
at our default level that is a JSON dump and a stderr write on every keystroke's answer,
which the editor's LSP log then stores. It is shown with `logLevel: debug`.

stderr is the editor's LSP log: a hostile or buggy client must not fill it. Each record's
message is cut to `MAX_LINE_CHARS` and its traceback to `MAX_TRACEBACK_CHARS` (the tail,
where the error is), and a record repeated more than `REPEATS_PER_MINUTE` times a minute
is counted instead of written (one fuzz run wrote 130 MB of the same tracebacks).
"""

from __future__ import annotations

import logging
import sys
import time

MAX_LINE_CHARS = 2000
MAX_TRACEBACK_CHARS = 4000
REPEATS_PER_MINUTE = 10


def _cut(text: str, limit: int, keep_tail: bool = False) -> str:
    if len(text) <= limit:
        return text
    note = f" [... {len(text) - limit} chars cut ...] "
    if keep_tail:
        return note + text[-limit:]
    return text[:limit] + note


class CappedFormatter(logging.Formatter):
    """A record is at most ~2 KB of message plus ~4 KB of traceback."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging API
        return _cut(super().formatMessage(record), MAX_LINE_CHARS)

    def formatException(self, ei) -> str:  # noqa: ANN001, N802 - logging API
        return _cut(super().formatException(ei), MAX_TRACEBACK_CHARS, keep_tail=True)


class RepeatFilter(logging.Filter):
    """Writes a warning or error at most `limit` times a minute per (logger, message
    template); the next one written after that says how many were held back."""

    def __init__(self, limit: int = REPEATS_PER_MINUTE, window_s: float = 60.0) -> None:
        super().__init__()
        self.limit = limit
        self.window_s = window_s
        self._seen: dict[tuple[str, str], list[float | int]] = {}  # key: [start, count, held]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True  # info is one line per user action; debug is asked for
        key = (record.name, str(record.msg)[:200])
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.window_s:
            held = int(entry[2]) if entry is not None else 0
            if len(self._seen) >= 1024:  # templates, not messages: a few hundred at most
                recent = [(k, v) for k, v in self._seen.items() if now - v[0] < self.window_s]
                self._seen = dict(recent[-512:])
            self._seen[key] = [now, 1, 0]
            if held:
                record.msg = f"{record.msg} ({held} more like this held back in the last minute)"
            return True
        entry[1] += 1
        if entry[1] <= self.limit:
            return True
        entry[2] += 1
        return False


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(CappedFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
    set_log_level(level)


# Loggers of JSON-RPC traffic (added by lsp/), and the level last set: a logger added
# later gets it at once.
_traffic_loggers: set[str] = set()
_level = "info"


def add_traffic_logger(name: str) -> None:
    _traffic_loggers.add(name)
    set_log_level(_level)


def set_log_level(level: str) -> None:
    global _level
    _level = level
    ours = logging.getLevelName(level.upper())
    logging.getLogger("copilot_server").setLevel(ours)
    traffic = ours if ours <= logging.DEBUG else max(logging.WARNING, ours)
    for name in _traffic_loggers:
        logging.getLogger(name).setLevel(traffic)
