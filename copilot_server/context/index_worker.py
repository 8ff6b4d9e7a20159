"""Parsing files for the index (in a worker process)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..syntax import find_definitions, summarize
from ..syntax.definitions import Definition
from ..syntax.languages import grammar_for
from ..syntax.tree import parse
from .files import inside, read_no_follow, stat_is_plain_file

MAX_DEFINITIONS_PER_FILE = 400
MAX_DEFINITION_CHARS = 600
# Files indexed per batch sent to the worker process.


@dataclass(frozen=True)
class Parsed:
    path: str
    mtime_ns: int = 0
    size: int = 0
    definitions: tuple[Definition, ...] = ()
    reason: str | None = None  # why nothing was indexed ("unchanged", "binary", …)


def lower_priority() -> None:
    """Worker set-up: yield the CPU to the model, and keep stdout (the LSP stream) clean."""
    try:
        os.nice(10)
    except (AttributeError, OSError):
        pass
    try:
        os.dup2(2, 1)
    except OSError:
        pass


def parse_files(
    paths: list[str],
    known: dict[str, tuple[int, int]],
    max_bytes: int,
    roots: tuple[str, ...] = (),
) -> list[Parsed]:
    return [_parse_file(path, known.get(path), max_bytes, roots) for path in paths]


def _parse_file(
    path: str, known: tuple[int, int] | None, max_bytes: int, roots: tuple[str, ...] = ()
) -> Parsed:
    try:
        stat = os.lstat(path)
    except OSError:
        return Parsed(path, reason="unreadable")
    if not stat_is_plain_file(stat) or (roots and not inside(path, roots)):
        return Parsed(path, reason="symlink")
    if known is not None and known == (stat.st_mtime_ns, stat.st_size):
        return Parsed(path, reason="unchanged")
    if stat.st_size > max_bytes:
        return Parsed(path, reason="too large")
    grammar = grammar_for("", path)
    if grammar is None:
        return Parsed(path, reason="no grammar")
    source = read_no_follow(path, max_bytes + 1)
    if source is None:
        return Parsed(path, reason="unreadable")
    if b"\x00" in source[:8192]:
        return Parsed(path, reason="binary")
    tree = parse(grammar, source)
    found = find_definitions(grammar, tree)[:MAX_DEFINITIONS_PER_FILE]
    definitions = tuple(
        Definition(
            name=d.name,
            kind=d.kind,
            path=path,
            line=d.start_row,
            end_line=d.end_row,
            text=summarize(d.node, source, grammar, d.kind)[:MAX_DEFINITION_CHARS],
            language=grammar.name,
        )
        for d in found
    )
    return Parsed(path, stat.st_mtime_ns, stat.st_size, definitions)
