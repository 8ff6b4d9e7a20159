"""textDocument/codeAction, codeAction/resolve and the explain/fix commands, on the action
service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled

from ..actions import (
    Edit,
    Explanation,
    FixOutcome,
    Region,
    compute_explanation,
    compute_fix,
    context_snippets,
    explain_region,
    region_span,
)
from ..actions.progress import TokenCallback
from ..actions.regions import explain_target
from ..documents.positions import Encoding, position_of
from ..engines.base import Engine
from ..engines.remote import RemoteEngineError
from ..syntax.problems import syntax_problems
from ..syntax.tree import parse
from .convert import encoding_of, int_arg

if TYPE_CHECKING:
    from ..documents import Document
    from .server import CopilotServer

log = logging.getLogger(__name__)


EXPLAIN_COMMAND = "copilot.explain"
FIX_COMMAND = "copilot.fix"  # for clients without codeAction/resolve
EXPLANATION_NOTIFICATION = "copilot/explanation"
EXPLAIN_KIND = types.CodeActionKind.Empty
FIX_KIND = types.CodeActionKind.QuickFix
CODE_ACTION_KINDS = [FIX_KIND, EXPLAIN_KIND]


def _wants(only: list[str] | None, kind: str) -> bool:
    if not only:
        return True
    return any(kind == o or kind.startswith(o + ".") for o in only)


def _lsp_range(text: str, region: Region, encoding: Encoding) -> types.Range:
    begin, end = region_span(text, region)
    end = len(text[:end].rstrip("\r\n")) if end > begin else end
    (l0, c0), (l1, c1) = position_of(text, begin, encoding), position_of(text, end, encoding)
    return types.Range(
        start=types.Position(line=l0, character=c0), end=types.Position(line=l1, character=c1)
    )


def _supports_resolve(ls: CopilotServer) -> bool:
    caps = ls.client_capabilities.text_document
    action = caps.code_action if caps else None
    support = action.resolve_support if action else None
    return bool(support and "edit" in support.properties)


def _fix_action(
    ls: CopilotServer,
    doc: Document,
    rng: types.Range,
    message: str,
    diagnostics: list[types.Diagnostic] | None,
) -> types.CodeAction:
    data = {
        "kind": FIX_COMMAND,
        "uri": doc.uri,
        "version": doc.version,
        "startLine": rng.start.line,
        "endLine": rng.end.line,
        "message": message,
    }
    short = message.strip().split("\n", 1)[0]
    short = short if len(short) <= 60 else short[:57] + "..."
    action = types.CodeAction(
        title=f"Fix: {short} (copilot)", kind=FIX_KIND, diagnostics=diagnostics, data=data
    )
    if not _supports_resolve(ls):
        action.command = types.Command(title=action.title, command=FIX_COMMAND, arguments=[data])
    return action


def code_actions(ls: CopilotServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """The cheap listing: tree-sitter only, no model call."""
    doc = ls.documents.get(params.text_document.uri)
    if doc is None or doc.too_large or doc.looks_binary:
        return []
    only = params.context.only
    if only and not all(isinstance(kind, str) for kind in only):
        raise JsonRpcInvalidParams("context.only must list code action kinds (strings)")
    first, last = params.range.start.line, params.range.end.line
    tree = _tree_of(ls, doc)
    actions: list[types.CodeAction] = []
    if _wants(only, FIX_KIND):
        # Line spans, not sets of lines: a diagnostic may claim lines 0..2**31-1.
        covered: list[tuple[int, int]] = []
        for diag in params.context.diagnostics:
            actions.append(_fix_action(ls, doc, diag.range, diag.message, [diag]))
            covered.append((diag.range.start.line, diag.range.end.line))
        for problem in syntax_problems(doc.language_id, doc.text, tree):
            if not (first <= problem.line <= last) or any(
                a <= problem.line <= b for a, b in covered
            ):
                continue
            covered.append((problem.line, problem.line))
            rng = types.Range(
                start=types.Position(line=problem.line, character=0),
                end=types.Position(line=problem.line, character=0),
            )
            actions.append(_fix_action(ls, doc, rng, problem.message, None))
    if _wants(only, EXPLAIN_KIND):
        actions.append(_explain_action(ls, doc, params.range, tree))
    return actions


def _tree_of(ls: CopilotServer, doc: Document) -> Any | None:
    """The document's tree for this version: editors ask for code actions on every cursor
    move, and a version is parsed once (a few ms per thousand lines)."""
    cache: dict[str, tuple[int, int, Any]] = ls.extensions.setdefault("actions.trees", {})
    entry = cache.get(doc.uri)
    if entry is not None and entry[:2] == (doc.version, len(doc.text)):
        return entry[2]
    tree = parse(doc.language_id, doc.text)
    if len(cache) >= 16:  # open documents the user moves between; the rest are reparsed
        cache.pop(next(iter(cache)))
    cache[doc.uri] = (doc.version, len(doc.text), tree)
    return tree


def _explain_action(
    ls: CopilotServer, doc: Document, rng: types.Range, tree: Any | None
) -> types.CodeAction:
    if rng.start != rng.end:
        title, target = "Explain selection (copilot)", rng
    else:
        region, name = explain_region(doc.language_id, doc.text, rng.start.line, tree)
        title = f"Explain `{name}` (copilot)" if name else "Explain this code (copilot)"
        target = _lsp_range(doc.text, region, encoding_of(ls))
    args = [{"uri": doc.uri, "range": _range_dict(target)}]
    return types.CodeAction(
        title=title,
        kind=EXPLAIN_KIND,
        command=types.Command(title=title, command=EXPLAIN_COMMAND, arguments=args),
    )


def _range_dict(rng: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": rng.start.line, "character": rng.start.character},
        "end": {"line": rng.end.line, "character": rng.end.character},
    }


@contextlib.asynccontextmanager
async def _progress(
    ls: CopilotServer, title: str, cancel: threading.Event, budget: int
) -> AsyncIterator[TokenCallback]:
    """Cancellable work-done progress when the client supports it; yields a token callback
    that is safe to call from the model thread."""
    window = ls.client_capabilities.window
    loop = asyncio.get_running_loop()
    if not (window and window.work_done_progress):
        yield lambda n: None
        return
    token = f"copilot-server-{uuid.uuid4().hex[:8]}"
    try:
        await asyncio.wait_for(ls.work_done_progress.create_async(token), timeout=5)
    except Exception as exc:  # no progress is no reason to fail the work
        log.debug("progress create failed: %s", exc)
        yield lambda n: None
        return
    tracker = ls.work_done_progress.tokens.get(token)
    if tracker is not None:
        tracker.add_done_callback(lambda f: cancel.set() if f.cancelled() else None)
    ls.work_done_progress.begin(
        token, types.WorkDoneProgressBegin(title=title, cancellable=True, percentage=0)
    )

    def report(count: int) -> None:
        if count % 8:
            return  # one notification per 8 tokens is plenty for a progress bar
        value = types.WorkDoneProgressReport(
            message=f"{count} tokens", percentage=min(99, count * 100 // max(1, budget))
        )
        loop.call_soon_threadsafe(ls.work_done_progress.report, token, value)

    try:
        yield report
    finally:
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd())
        ls.work_done_progress.tokens.pop(token, None)


class ModelUnavailable(Exception):
    pass


async def _on_model(
    ls: CopilotServer,
    title: str,
    budget: int,
    work: Callable[[Engine, threading.Event, TokenCallback], Any],
) -> Any:
    engine = await ls.loader.wait(ls.settings.completion.model_wait_s)
    if engine is None:
        raise ModelUnavailable(ls.loader.state.message or "the model is not loaded")
    cancel = threading.Event()
    async with _progress(ls, title, cancel, budget) as on_token:
        with ls.status.busy():
            try:
                return await ls.completions.run_on_model(lambda: work(engine, cancel, on_token))
            except asyncio.CancelledError:
                cancel.set()  # $/cancelRequest: stop the decode loop at the next token
                raise
            except RemoteEngineError as exc:  # a model server that is down or failing
                raise ModelUnavailable(str(exc)) from None


async def resolve_code_action(ls: CopilotServer, action: types.CodeAction) -> types.CodeAction:
    data = action.data
    if not (isinstance(data, dict) and data.get("kind") == FIX_COMMAND):
        return action
    outcome, doc, reason = await _fix_for(ls, data)
    if doc is None:  # a client's mistake, not news for the user: an error, not a popup
        raise JsonRpcInvalidParams(f"copilot.fix: {reason}")
    if reason is not None:
        # The action comes back without an edit, saying why: as `disabled` where the client
        # shows that, else as a message.
        caps = ls.client_capabilities.text_document
        if caps and caps.code_action and caps.code_action.disabled_support:
            action.disabled = types.CodeActionDisabled(reason=reason)
        else:
            ls.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Info, message=f"copilot-server: {reason}"
                )
            )
        return action
    assert outcome is not None and doc is not None
    action.edit = workspace_edit(ls, doc, outcome.edits)
    return action


async def fix_command(ls: CopilotServer, args: tuple[Any, ...]) -> dict[str, Any]:
    """`copilot.fix` for clients without codeAction/resolve: compute and apply the edit."""
    data = args[0] if args else None
    if not isinstance(data, dict):
        raise JsonRpcInvalidParams(
            "copilot.fix expects [{uri, version, startLine, endLine, message}]"
        )
    outcome, doc, reason = await _fix_for(ls, data)
    if doc is None:
        raise JsonRpcInvalidParams(f"copilot.fix: {reason}")
    if reason is not None:
        ls.window_show_message(
            types.ShowMessageParams(
                type=types.MessageType.Info, message=f"copilot-server: {reason}"
            )
        )
        return {"applied": False, "reason": reason}
    assert outcome is not None and doc is not None
    result = await ls.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(
            edit=workspace_edit(ls, doc, outcome.edits), label="copilot fix"
        )
    )
    return {"applied": bool(result and result.applied), "reason": None}


async def _fix_for(
    ls: CopilotServer, data: dict[str, Any]
) -> tuple[FixOutcome | None, Document | None, str | None]:
    doc = ls.documents.get(str(data.get("uri")))
    if doc is None:
        return None, None, "the document is not open"
    if data.get("version") != doc.version:
        return None, doc, "the document changed since this fix was offered; ask again"
    text, settings = doc.text, ls.settings
    first, last = int_arg(data, "startLine"), int_arg(data, "endLine")

    def work(engine: Engine, cancel: threading.Event, on_token: TokenCallback) -> FixOutcome:
        return compute_fix(
            engine,
            settings,
            language=doc.language_id,
            text=text,
            first_line=first,
            last_line=last,
            message=str(data.get("message", "")),
            cancel=cancel,
            on_token=on_token,
        )

    try:
        outcome = await _on_model(ls, "Fixing", settings.fix_max_tokens, work)
    except ModelUnavailable as exc:
        return None, doc, str(exc)
    if outcome.reason == "cancelled":
        raise JsonRpcRequestCancelled("fix cancelled")
    if doc.version != data.get("version"):
        return None, doc, "the document changed while the fix was computed; ask again"
    return outcome, doc, outcome.reason


def workspace_edit(ls: CopilotServer, doc: Document, edits: list[Edit]) -> types.WorkspaceEdit:
    encoding = encoding_of(ls)
    text_edits: list[types.TextEdit | types.AnnotatedTextEdit | types.SnippetTextEdit] = []
    for edit in edits:
        (l0, c0), (l1, c1) = (
            position_of(doc.text, edit.start, encoding),
            position_of(doc.text, edit.end, encoding),
        )
        text_edits.append(
            types.TextEdit(
                range=types.Range(
                    start=types.Position(line=l0, character=c0),
                    end=types.Position(line=l1, character=c1),
                ),
                new_text=edit.new_text,
            )
        )
    workspace = ls.client_capabilities.workspace
    if workspace and workspace.workspace_edit and workspace.workspace_edit.document_changes:
        ident = types.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version)
        return types.WorkspaceEdit(
            document_changes=[types.TextDocumentEdit(text_document=ident, edits=text_edits)]
        )
    return types.WorkspaceEdit(changes={doc.uri: text_edits})


async def explain_command(ls: CopilotServer, args: tuple[Any, ...]) -> dict[str, Any]:
    """`copilot.explain [{uri, range}]` → {markdown, tokens}; also sent as copilot/explanation."""
    info = args[0] if args else None
    if not (isinstance(info, dict) and isinstance(info.get("range"), dict)):
        raise JsonRpcInvalidParams("copilot.explain expects [{uri, range}]")
    doc = ls.documents.get(str(info.get("uri")))
    if doc is None:
        raise JsonRpcInvalidParams(f"document {info.get('uri')} is not open")
    start, end = info["range"].get("start"), info["range"].get("end")
    if not (isinstance(start, dict) and isinstance(end, dict)):
        raise JsonRpcInvalidParams("copilot.explain: range needs start and end positions")
    encoding = encoding_of(ls)
    # int_arg: -32602 for inf, NaN, floats, negatives, not just for missing keys.
    line0, char0 = int_arg(start, "line", None), int_arg(start, "character", None)
    line1, char1 = int_arg(end, "line", None), int_arg(end, "character", None)
    begin = doc.offset_at(line0, char0, encoding, strict=False)
    stop = doc.offset_at(line1, char1, encoding, strict=False)
    text, settings = doc.text, ls.settings
    region, selection, name = explain_target(doc.language_id, text, begin, stop)
    builder = getattr(ls.completions, "context_builder", None)

    def work(engine: Engine, cancel: threading.Event, on_token: TokenCallback) -> Explanation:
        helpers = context_snippets(
            builder,
            engine,
            settings,
            uri=doc.uri,
            path=doc.path,
            language=doc.language_id,
            text=text,
            region=region,
        )
        return compute_explanation(
            engine,
            settings,
            language=doc.language_id,
            text=text,
            region=region,
            selection=selection,
            name=name,
            helpers=helpers,
            cancel=cancel,
            on_token=on_token,
        )

    try:
        result: Explanation = await _on_model(ls, "Explaining", settings.explain_max_tokens, work)
    except ModelUnavailable as exc:
        return {"markdown": f"_copilot-server: {exc}_", "tokens": 0}
    if result.stop_reason == "cancelled":
        raise JsonRpcRequestCancelled("explanation cancelled")
    payload = {
        "uri": doc.uri,
        "range": _range_dict(_lsp_range(text, region, encoding_of(ls))),
        "markdown": result.markdown,
        "tokens": result.tokens,
        "promptTokens": result.prompt_tokens,
        "latencyMs": round(result.latency_ms),
    }
    ls.protocol.notify(EXPLANATION_NOTIFICATION, payload)
    return {k: payload[k] for k in ("markdown", "tokens", "promptTokens", "latencyMs")}
