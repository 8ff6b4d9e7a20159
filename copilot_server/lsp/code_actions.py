"""textDocument/codeAction, codeAction/resolve and the explain/fix commands: LSP values
in and out, the work on the action service (actions/service.py).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled

from ..actions import Edit, FixOutcome, Region, explain_region, region_span
from ..actions.progress import TokenCallback
from ..actions.service import ActionCancelled, ModelUnavailable
from ..documents.positions import Encoding, position_of
from ..ports import ClientFeatures, ClientPort, MessageLevel
from ..syntax.problems import syntax_problems
from ..syntax.tree import TreeCache, grammar_of, own_tree
from .convert import int_arg

if TYPE_CHECKING:
    from ..app import App
    from ..documents import Document


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


def _fix_action(
    features: ClientFeatures,
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
    if not features.code_action_resolve_edit:
        action.command = types.Command(title=action.title, command=FIX_COMMAND, arguments=[data])
    return action


def code_actions(
    app: App, port: ClientPort, params: types.CodeActionParams
) -> list[types.CodeAction]:
    """The cheap listing: tree-sitter only, no model call."""
    doc = app.documents.get(params.text_document.uri)
    if doc is None or doc.too_large or doc.looks_binary:
        return []
    only = params.context.only
    if only and not all(isinstance(kind, str) for kind in only):
        raise JsonRpcInvalidParams("context.only must list code action kinds (strings)")
    first, last = params.range.start.line, params.range.end.line
    tree = _tree_of(doc)
    features = port.features
    actions: list[types.CodeAction] = []
    if _wants(only, FIX_KIND):
        # Line spans, not sets of lines: a diagnostic may claim lines 0..2**31-1.
        covered: list[tuple[int, int]] = []
        for diag in params.context.diagnostics:
            actions.append(_fix_action(features, doc, diag.range, diag.message, [diag]))
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
            actions.append(_fix_action(features, doc, rng, problem.message, None))
    if _wants(only, EXPLAIN_KIND):
        actions.append(_explain_action(features.encoding, doc, params.range, tree))
    return actions


# Trees of the documents too large to keep a tree of their own (MAX_PARSE_CHARS): editors
# ask for code actions on every cursor move, and such a document must not be parsed from
# scratch each time (~1 s per MB).
_untracked = TreeCache(4)


def _tree_of(doc: Document) -> Any | None:
    """The document's tree for its languageId: its own (edited with it, re-parsed
    incrementally), else one kept here."""
    tree = own_tree(doc.language_id, doc.text, doc.syntax)
    if tree is not None:
        return tree
    grammar = grammar_of(doc.language_id)
    return _untracked.get(doc.uri, grammar, doc.text).tree if grammar is not None else None


def _explain_action(
    encoding: Encoding, doc: Document, rng: types.Range, tree: Any | None
) -> types.CodeAction:
    if rng.start != rng.end:
        title, target = "Explain selection (copilot)", rng
    else:
        region, name = explain_region(doc.language_id, doc.text, rng.start.line, tree)
        title = f"Explain `{name}` (copilot)" if name else "Explain this code (copilot)"
        target = _lsp_range(doc.text, region, encoding)
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


def _progress(port: ClientPort):  # noqa: ANN202 - an actions.service.ProgressFactory
    """Cancellable work-done progress where the client shows it; yields a token callback
    that is safe to call from the model thread."""

    @contextlib.asynccontextmanager
    async def progress(
        title: str, cancel: threading.Event, budget: int
    ) -> AsyncIterator[TokenCallback]:
        shown = await port.begin_progress(title, on_cancel=cancel.set)
        if shown is None:
            yield lambda n: None
            return

        def report(count: int) -> None:
            if count % 8:
                return  # one notification per 8 tokens is plenty for a progress bar
            shown.report(f"{count} tokens", min(99, count * 100 // max(1, budget)))

        try:
            yield report
        finally:
            shown.end()

    return progress


def _show(port: ClientPort, reason: str) -> None:
    port.show_message(MessageLevel.INFO, f"copilot-server: {reason}")


async def resolve_code_action(
    app: App, port: ClientPort, action: types.CodeAction
) -> types.CodeAction:
    data = action.data
    if not (isinstance(data, dict) and data.get("kind") == FIX_COMMAND):
        return action
    outcome, doc, reason = await _fix_for(app, port, data)
    if doc is None:  # a client's mistake, not news for the user: an error, not a popup
        raise JsonRpcInvalidParams(f"copilot.fix: {reason}")
    if reason is not None:
        # The action comes back without an edit, saying why: as `disabled` where the client
        # shows that, else as a message.
        if port.features.code_action_disabled:
            action.disabled = types.CodeActionDisabled(reason=reason)
        else:
            _show(port, reason)
        return action
    assert outcome is not None and doc is not None
    action.edit = workspace_edit(port.features, doc, outcome.edits)
    return action


async def fix_command(app: App, port: ClientPort, args: tuple[Any, ...]) -> dict[str, Any]:
    """`copilot.fix` for clients without codeAction/resolve: compute and apply the edit."""
    data = args[0] if args else None
    if not isinstance(data, dict):
        raise JsonRpcInvalidParams(
            "copilot.fix expects [{uri, version, startLine, endLine, message}]"
        )
    outcome, doc, reason = await _fix_for(app, port, data)
    if doc is None:
        raise JsonRpcInvalidParams(f"copilot.fix: {reason}")
    if reason is not None:
        _show(port, reason)
        return {"applied": False, "reason": reason}
    assert outcome is not None and doc is not None
    edit = workspace_edit(port.features, doc, outcome.edits)
    return {"applied": await port.apply_edit(edit, "copilot fix"), "reason": None}


async def _fix_for(
    app: App, port: ClientPort, data: dict[str, Any]
) -> tuple[FixOutcome | None, Document | None, str | None]:
    doc = app.documents.get(str(data.get("uri")))
    if doc is None:
        return None, None, "the document is not open"
    if data.get("version") != doc.version:
        return None, doc, "the document changed since this fix was offered; ask again"
    first, last = int_arg(data, "startLine"), int_arg(data, "endLine")
    message = str(data.get("message", ""))
    try:
        outcome = await app.actions.fix(doc, first, last, message, _progress(port))
    except ModelUnavailable as exc:
        return None, doc, str(exc)
    except ActionCancelled as exc:
        raise JsonRpcRequestCancelled(str(exc)) from None
    if doc.version != data.get("version"):
        return None, doc, "the document changed while the fix was computed; ask again"
    return outcome, doc, outcome.reason


def workspace_edit(
    features: ClientFeatures, doc: Document, edits: list[Edit]
) -> types.WorkspaceEdit:
    encoding = features.encoding
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
    if features.document_changes:
        ident = types.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version)
        return types.WorkspaceEdit(
            document_changes=[types.TextDocumentEdit(text_document=ident, edits=text_edits)]
        )
    return types.WorkspaceEdit(changes={doc.uri: text_edits})


async def explain_command(app: App, port: ClientPort, args: tuple[Any, ...]) -> dict[str, Any]:
    """`copilot.explain [{uri, range}]` → {markdown, tokens}; also sent as copilot/explanation."""
    info = args[0] if args else None
    if not (isinstance(info, dict) and isinstance(info.get("range"), dict)):
        raise JsonRpcInvalidParams("copilot.explain expects [{uri, range}]")
    doc = app.documents.get(str(info.get("uri")))
    if doc is None:
        raise JsonRpcInvalidParams(f"document {info.get('uri')} is not open")
    start, end = info["range"].get("start"), info["range"].get("end")
    if not (isinstance(start, dict) and isinstance(end, dict)):
        raise JsonRpcInvalidParams("copilot.explain: range needs start and end positions")
    encoding = port.features.encoding
    # int_arg: -32602 for inf, NaN, floats, negatives, not just for missing keys.
    line0, char0 = int_arg(start, "line", None), int_arg(start, "character", None)
    line1, char1 = int_arg(end, "line", None), int_arg(end, "character", None)
    begin = doc.offset_at(line0, char0, encoding, strict=False)
    stop = doc.offset_at(line1, char1, encoding, strict=False)
    text = doc.text
    try:
        region, result = await app.actions.explain(doc, begin, stop, _progress(port))
    except ModelUnavailable as exc:
        return {"markdown": f"_copilot-server: {exc}_", "tokens": 0}
    except ActionCancelled as exc:
        raise JsonRpcRequestCancelled(str(exc)) from None
    payload = {
        "uri": doc.uri,
        "range": _range_dict(_lsp_range(text, region, encoding)),
        "markdown": result.markdown,
        "tokens": result.tokens,
        "promptTokens": result.prompt_tokens,
        "latencyMs": round(result.latency_ms),
    }
    port.notify(EXPLANATION_NOTIFICATION, payload)
    return {k: payload[k] for k in ("markdown", "tokens", "promptTokens", "latencyMs")}
