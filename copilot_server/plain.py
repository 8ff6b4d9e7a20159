"""Params as plain dicts and lists: the LSP layer hands over the params of a method it has
no type for (the `copilot/*` notifications) as nested namedtuples; the features read dicts."""

from __future__ import annotations

from typing import Any


def plain(value: Any) -> Any:
    """`value` with every namedtuple read back as a dict and every tuple as a list."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
