"""LSP values <-> our typed values, at the edge: positions, requests and result items."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from .completions import CompletionRequest, CompletionResult
from .positions import Encoding, PositionError, index_to_column, split_lines

if TYPE_CHECKING:
    from .server import CopilotServer

_ENCODINGS: dict[str, Encoding] = {"utf-8": "utf-8", "utf-16": "utf-16", "utf-32": "utf-32"}


def encoding_of(ls: CopilotServer) -> Encoding:
    return _ENCODINGS.get(str(ls.workspace.position_encoding or "utf-16"), "utf-16")


def content_changes(changes: Any) -> list[tuple[tuple[int, int, int, int] | None, str]]:
    out: list[tuple[tuple[int, int, int, int] | None, str]] = []
    for change in changes:
        rng = getattr(change, "range", None)
        if rng is None:
            out.append((None, change.text))
        else:
            out.append(
                (
                    (rng.start.line, rng.start.character, rng.end.line, rng.end.character),
                    change.text,
                )
            )
    return out


def completion_request_from_params(
    ls: CopilotServer, params: types.InlineCompletionParams | types.CompletionParams
) -> CompletionRequest | None:
    """None when there is nothing to do (disabled, unknown document, binary file);
    a JSON-RPC InvalidParams error when the position is not in the document."""
    if not ls.settings.completion.enabled:
        return None
    uri = params.text_document.uri
    doc = ls.documents.get(uri)
    if doc is None:
        raise JsonRpcInvalidParams(f"document {uri} is not open (send textDocument/didOpen first)")
    if doc.language_id in ls.settings.completion.disabled_languages:
        return None
    if doc.too_large or doc.looks_binary:
        return None
    encoding = encoding_of(ls)
    pos = params.position
    try:
        offset = doc.offset_at(pos.line, pos.character, encoding, strict=True)
    except PositionError as exc:
        raise JsonRpcInvalidParams(f"position {pos.line}:{pos.character}: {exc}") from None
    invoked = False
    selected_text = None
    replace_start = None
    context = getattr(params, "context", None)
    if isinstance(context, types.InlineCompletionContext):
        invoked = context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        info = context.selected_completion_info
        if info is not None:
            selected_text = info.text
            replace_start = doc.offset_at(
                info.range.start.line, info.range.start.character, encoding, strict=False
            )
    return CompletionRequest(
        uri=uri,
        path=doc.path,
        language=doc.language_id,
        text=doc.text,
        offset=offset,
        invoked=invoked,
        selected_text=selected_text,
        replace_start=replace_start,
    )


def _accept_command(result: CompletionResult, uri: str, name: str) -> types.Command:
    return types.Command(
        title="Accept suggestion",
        command=name,
        arguments=[
            {"id": result.id, "uri": uri, "length": len(result.text), "source": result.source}
        ],
    )


def inline_items(
    ls: CopilotServer,
    params: types.InlineCompletionParams,
    request: CompletionRequest,
    result: CompletionResult,
    accept_command: str,
) -> list[types.InlineCompletionItem]:
    if not result.text.strip():
        return []
    text = result.text
    start = params.position
    if request.selected_text is not None and request.replace_start is not None:
        # Include the selected completion item's text so the ghost text extends it.
        typed = request.text[request.replace_start : request.offset]
        text = typed + text
        start = _position_for(request.text, request.replace_start, encoding_of(ls))
    return [
        types.InlineCompletionItem(
            insert_text=text,
            range=types.Range(start=start, end=params.position),
            command=_accept_command(result, request.uri, accept_command),
        )
    ]


def plain_completion_items(
    ls: CopilotServer,
    params: types.CompletionParams,
    request: CompletionRequest,
    result: CompletionResult,
    accept_command: str,
) -> types.CompletionList:
    if not result.text.strip():
        return types.CompletionList(is_incomplete=True, items=[])
    first_line = result.text.split("\n", 1)[0]
    label = (first_line.strip() or result.text.strip().split("\n", 1)[0])[:60]
    item = types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Snippet,
        detail="copilot-server",
        # Sorts after the language server's own items so we do not fight with them.
        sort_text="~copilot",
        filter_text=request.text[request.text.rfind("\n", 0, request.offset) + 1 : request.offset]
        + result.text,
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(
            range=types.Range(start=params.position, end=params.position), new_text=result.text
        ),
        command=_accept_command(result, request.uri, accept_command),
    )
    return types.CompletionList(is_incomplete=True, items=[item])


def _position_for(text: str, offset: int, encoding: Encoding) -> types.Position:
    lines = split_lines(text[:offset])
    return types.Position(
        line=len(lines) - 1, character=index_to_column(lines[-1], len(lines[-1]), encoding)
    )
