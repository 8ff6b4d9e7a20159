"""Headless explain and fix, the same code paths as the editor's code actions.

    copilot-server explain PATH --start-line A --end-line B [--json]
    copilot-server fix PATH --line N [--message TEXT] [--apply] [--json]

Lines are 0-based, as in `complete` and LSP.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

from ..config import Settings
from ..syntax.tree import parse_view
from .common import read_source


def register_cli(sub: argparse._SubParsersAction, common) -> None:  # noqa: ANN001
    explain = sub.add_parser("explain", help="explain lines of a file (Markdown on stdout)")
    explain.add_argument("path")
    explain.add_argument("--start-line", type=int, required=True, help="0-based first line")
    explain.add_argument(
        "--end-line", type=int, help="0-based last line (default: the enclosing function)"
    )
    explain.add_argument("--json", action="store_true")
    common(explain)
    explain.set_defaults(handler=cmd_explain)

    fix = sub.add_parser("fix", help="fix a problem at a line; print a unified diff")
    fix.add_argument("path")
    fix.add_argument("--line", type=int, required=True, help="0-based line of the problem")
    fix.add_argument(
        "--message", help="the problem (default: the syntax error tree-sitter finds there)"
    )
    fix.add_argument("--apply", action="store_true", help="write the fix to the file (atomically)")
    fix.add_argument("--json", action="store_true")
    common(fix)
    fix.set_defaults(handler=cmd_fix)


def _read(path: Path) -> str | None:
    return read_source(path, "nothing to do")


def _check_line(path: Path, text: str, line: int, name: str) -> bool:
    text = parse_view(text)  # a lone CR ends a line too
    count = text.count("\n") + (0 if text.endswith("\n") else 1)
    if not 0 <= line < max(1, count):
        print(f"copilot-server: {path}: {name} {line} is outside 0..{count - 1}", file=sys.stderr)
        return False
    return True


def _engine(settings: Settings):  # noqa: ANN202
    from .common import load_engine

    return load_engine(settings)


def cmd_explain(args: argparse.Namespace, settings: Settings) -> int:
    from ..actions import Region, compute_explanation, context_snippets, explain_region
    from .common import context_builder, language_for

    path = Path(args.path)
    text = _read(path)
    if text is None or not _check_line(path, text, args.start_line, "--start-line"):
        return 1
    language = language_for(path)
    if args.end_line is None:
        region, name = explain_region(language, text, args.start_line)
    else:
        name = None
        if not _check_line(path, text, args.end_line, "--end-line"):
            return 1
        region = Region(min(args.start_line, args.end_line), max(args.start_line, args.end_line))
    engine = _engine(settings)
    if engine is None:
        return 1
    try:
        helpers = context_snippets(
            context_builder(),
            engine,
            settings,
            uri=path.resolve().as_uri(),
            path=str(path),
            language=language,
            text=text,
            region=region,
        )
        result = compute_explanation(
            engine,
            settings,
            language=language,
            text=text,
            region=region,
            name=name,
            helpers=helpers,
            cancel=threading.Event(),
        )
    finally:
        engine.close()
    if args.json:
        print(
            json.dumps(
                {
                    "markdown": result.markdown,
                    "tokens": result.tokens,
                    "promptTokens": result.prompt_tokens,
                    "latencyMs": round(result.latency_ms),
                    "startLine": region.start,
                    "endLine": region.end,
                },
                indent=2,
            )
        )
    else:
        print(result.markdown)
        print(
            f"-- lines {region.start}-{region.end}: {result.tokens} tokens "
            f"(prompt {result.prompt_tokens}), {result.latency_ms:.0f} ms",
            file=sys.stderr,
        )
    return 0


def cmd_fix(args: argparse.Namespace, settings: Settings) -> int:
    from ..actions import compute_fix, unified_diff
    from ..syntax.problems import syntax_problems
    from .common import language_for

    path = Path(args.path)
    text = _read(path)
    if text is None or not _check_line(path, text, args.line, "--line"):
        return 1
    language = language_for(path)
    message = args.message
    first = last = args.line
    if not message:
        problem = next(
            (p for p in syntax_problems(language, text) if p.line <= args.line <= p.end_line), None
        )
        if problem is None:
            print(
                f"copilot-server: no syntax error at line {args.line} of {path}; "
                "say what to fix with --message",
                file=sys.stderr,
            )
            return 1
        message, first, last = problem.message, problem.line, problem.line
    engine = _engine(settings)
    if engine is None:
        return 1
    try:
        outcome = compute_fix(
            engine,
            settings,
            language=language,
            text=text,
            first_line=first,
            last_line=last,
            message=message,
            cancel=threading.Event(),
        )
    finally:
        engine.close()
    diff = unified_diff(str(path), text, outcome.new_text) if outcome.edits else ""
    if args.json:
        print(
            json.dumps(
                {
                    "ok": outcome.ok,
                    "reason": outcome.reason,
                    "diff": diff,
                    "tokens": outcome.tokens,
                    "promptTokens": outcome.prompt_tokens,
                    "latencyMs": round(outcome.latency_ms),
                    "startLine": outcome.region.start,
                    "endLine": outcome.region.end,
                },
                indent=2,
            )
        )
    elif diff and outcome.ok:
        sys.stdout.write(diff)
    if not outcome.ok:
        print(f"copilot-server: no fix offered: {outcome.reason}", file=sys.stderr)
        return 1
    print(
        f"-- lines {outcome.region.start}-{outcome.region.end}: {outcome.tokens} tokens "
        f"(prompt {outcome.prompt_tokens}), {outcome.latency_ms:.0f} ms",
        file=sys.stderr,
    )
    if args.apply:
        write_atomically(path, outcome.new_text)
        print(f"-- applied to {path}", file=sys.stderr)
    return 0


def write_atomically(path: Path, text: str) -> None:
    """Write through a temporary file in the same directory and os.replace it over `path`,
    so a reader never sees half a file; the file's permissions are kept."""
    directory = path.resolve().parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        except OSError:
            pass
        os.replace(tmp, path.resolve())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
