"""`copilot-server context PATH --line N --character N`: the prompt preview.

Prints every part of the prompt the model would get at that position, in prompt order,
each with its token count (the model's tokenizer) and budget, so a user can see why a
suggestion came out the way it did, and share it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..config import Settings
from .common import position_arguments, read_source

_BUDGETS = {
    "imports": "import_tokens",
    "definition": "definition_tokens",
    "similar": "snippet_tokens",
    "scope": "scope_tokens",
    "prefix": "prefix_tokens",
    "suffix": "suffix_tokens",
}


def register_cli(sub: Any, common: Any) -> None:
    parser = sub.add_parser(
        "context", help="print the prompt parts for a position, with their token counts"
    )
    position_arguments(parser)
    parser.add_argument("--workspace", help="workspace folder to index (default: the git root)")
    parser.add_argument("--no-index", action="store_true", help="do not index the workspace")
    parser.add_argument(
        "--open",
        action="append",
        default=[],
        metavar="FILE",
        help="also treat FILE as an open editor tab",
    )
    parser.add_argument("--json", action="store_true")
    common(parser)
    parser.set_defaults(handler=cmd_context)


def workspace_root(path: Path) -> Path:
    """The nearest folder above `path` holding .git, else the file's folder."""
    start = path.resolve().parent
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def _read(path: Path) -> str | None:
    return read_source(path, "no context")


def cmd_context(args: argparse.Namespace, settings: Settings) -> int:
    from ..completion import CompletionRequest
    from ..context.engine import make_context_builder
    from ..context.index import WorkspaceIndex
    from ..documents import DocumentStore
    from ..prompts import PromptError, build_fim_prompt
    from ..prompts.whitespace import without_trailing_whitespace
    from ..syntax.languages import language_id_for_path
    from .common import load_engine, read_position

    path = Path(args.path)
    found = read_position(path, args.line, args.character, "no context")
    if found is None:
        return 1
    text, offset = found
    documents = DocumentStore()
    language = language_id_for_path(str(path)) or "plaintext"
    uri = path.resolve().as_uri()
    documents.open(uri, language, 1, text)
    for other in args.open:
        other_path = Path(other)
        other_text = _read(other_path)
        if other_text is not None:
            other_language = language_id_for_path(other) or "plaintext"
            documents.open(other_path.resolve().as_uri(), other_language, 1, other_text)
    index = None
    index_ms = 0.0
    if not args.no_index and settings.context.index_enabled:
        root = Path(args.workspace) if args.workspace else workspace_root(path)
        index = WorkspaceIndex([root], settings.context, use_process=False)
        started = time.perf_counter()
        index.build()
        index_ms = (time.perf_counter() - started) * 1000
    engine = load_engine(settings)
    if engine is None:
        return 1
    try:
        builder = make_context_builder(documents, index)
        request = CompletionRequest(
            uri=uri,
            path=str(path.resolve()),
            language=language,
            text=text,
            offset=offset,
            invoked=True,
        )
        started = time.perf_counter()
        context = builder(request, engine, settings)
        context_ms = (time.perf_counter() - started) * 1000
        try:
            prompt = build_fim_prompt(
                engine, without_trailing_whitespace(context), settings.model.template
            )
        except PromptError as exc:
            print(f"copilot-server: {exc}", file=sys.stderr)
            return 1
    finally:
        engine.close()
    parts = []
    snippets = iter(context.snippets)
    for part in prompt.parts:
        budget_key = _BUDGETS.get(part.name)
        is_snippet = part.name not in ("prefix", "suffix", "line")
        parts.append(
            {
                "name": part.name,
                "path": next(snippets).path if is_snippet else context.path,
                "tokens": part.tokens,
                "budget": getattr(settings.context, budget_key) if budget_key else None,
                "text": part.text,
            }
        )
    report = {
        "path": context.path,
        "language": context.language,
        "line": args.line,
        "character": args.character,
        "prompt_tokens": len(prompt.tokens),
        "template": prompt.template,
        "context_ms": round(context_ms, 2),
        "index": (index.stats.as_dict() | {"build_ms": round(index_ms, 1)}) if index else None,
        "parts": parts,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def print_report(report: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(
        f"{report['path']}:{report['line'] + 1}:{report['character'] + 1} ({report['language']}) — "
        f"{report['prompt_tokens']} prompt tokens ({report['template']}), "
        f"context in {report['context_ms']:.1f} ms\n"
    )
    if report["index"]:
        idx = report["index"]
        out.write(f"workspace index: {idx['files']} files, {idx['definitions']} definitions\n")
    for part in report["parts"]:
        budget = f" / {part['budget']}" if part["budget"] is not None else ""
        where = f"  {part['path']}" if part["name"] not in ("prefix", "suffix", "line") else ""
        out.write(f"\n── {part['name']}{where} · {part['tokens']} tokens{budget} ──\n")
        text = part["text"]
        out.write(text if text.endswith("\n") or not text else text + "\n")
        if part["name"] == "line":
            out.write("▌ (cursor)\n")
