"""LSP values <-> our typed values, at the edge: positions, requests and result items."""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from ..completion import CompletionRequest, CompletionResult
from ..config import Settings
from ..context.secrets import kept_from_model_server
from ..documents import DocumentStore
from ..documents.positions import Encoding, PositionError, index_to_column, split_lines


def workspace_folders(workspace: Any) -> list[str]:
    """Local folders of a pygls Workspace: its workspace folders, else its root."""
    from ..documents import uri_to_path

    paths: list[str] = []
    folders = getattr(workspace, "folders", None) or {}
    for folder in folders.values():
        uri = getattr(folder, "uri", "")
        if uri.startswith("file:"):
            paths.append(uri_to_path(uri))
    root = getattr(workspace, "root_path", None)
    if not paths and root:
        paths.append(root)
    return paths


# LSP's uinteger: line and character numbers, lengths.
MAX_UINTEGER = 2**31 - 1


def int_arg(data: dict[str, Any], key: str, default: int | None = 0) -> int:
    """An integer argument of a command (a JSON-RPC -32602 error when it is not one, or
    when it is missing and there is no default)."""
    if key not in data and default is None:
        raise JsonRpcInvalidParams(f"{key} is missing")
    value = data.get(key, default)
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or not 0 <= value <= MAX_UINTEGER:
        raise JsonRpcInvalidParams(
            f"{key} must be an integer in 0..{MAX_UINTEGER}, got {repr(value)[:40]}"
        )
    return value


def document_snapshot(documents: DocumentStore, args: tuple[Any, ...]) -> dict[str, Any]:
    """`copilot.debugDocument [{uri}]`: the server's copy of an open document, exactly as
    held (the fuzz suite compares it with the editor's text)."""
    info = args[0] if args else None
    uri = info.get("uri") if isinstance(info, dict) else None
    doc = documents.get(uri) if isinstance(uri, str) else None
    if doc is None:
        raise JsonRpcInvalidParams(f"document {repr(uri)[:200]} is not open")
    return {"uri": doc.uri, "version": doc.version, "text": doc.source}


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
    params: types.InlineCompletionParams | types.CompletionParams,
    documents: DocumentStore,
    settings: Settings,
    encoding: Encoding,
) -> CompletionRequest | None:
    """None when there is nothing to do (disabled, unknown document, binary file);
    a JSON-RPC InvalidParams error when the position is not in the document."""
    if not settings.completion.enabled:
        return None
    uri = params.text_document.uri
    doc = documents.get(uri)
    if doc is None:
        raise JsonRpcInvalidParams(f"document {uri} is not open (send textDocument/didOpen first)")
    if doc.language_id in settings.completion.disabled_languages:
        return None
    if doc.too_large or doc.looks_binary:
        return None
    if kept_from_model_server(doc.path, settings):
        return None  # a .env-like file's text would leave the machine
    pos = params.position
    try:
        offset = doc.offset_at(pos.line, pos.character, encoding, strict=True)
    except PositionError as exc:
        raise JsonRpcInvalidParams(f"position {pos.line}:{pos.character}: {exc}") from None
    if _line_length(doc.text, offset) > settings.completion.max_line_chars:
        return None  # minified code or data: seconds of tokenizing per keystroke
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
        # An explicit request (a key) gets suggestions to cycle through; typing gets one.
        alternatives=settings.completion.alternatives if invoked else 1,
    )


def _line_length(text: str, offset: int) -> int:
    end = text.find("\n", offset)
    return (len(text) if end < 0 else end) - (text.rfind("\n", 0, offset) + 1)


def _accept_command(
    result: CompletionResult, uri: str, name: str, text: str | None = None
) -> types.Command:
    length = len(result.text if text is None else text)
    return types.Command(
        title="Accept suggestion",
        command=name,
        arguments=[{"id": result.id, "uri": uri, "length": length, "source": result.source}],
    )


def inline_items(
    params: types.InlineCompletionParams,
    request: CompletionRequest,
    result: CompletionResult,
    accept_command: str,
    encoding: Encoding,
) -> list[types.InlineCompletionItem]:
    if not result.text.strip():
        return []
    typed = ""
    start = params.position
    if request.selected_text is not None and request.replace_start is not None:
        # Include the selected completion item's text so the ghost text extends it.
        typed = request.text[request.replace_start : request.offset]
        start = _position_for(request.text, request.replace_start, encoding)
    return [
        types.InlineCompletionItem(
            insert_text=typed + text,
            range=types.Range(start=start, end=params.position),
            command=_accept_command(result, request.uri, accept_command, text),
        )
        for text in [result.text, *result.alternatives]
    ]


def plain_completion_items(
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
