"""The LSP edge of next edits: GitHub Copilot's `textDocument/copilotInlineEdit`.

The shapes are the ones sidekick.nvim and copilot-lsp (copilotlsp-nvim) exchange with
copilot-language-server, so those plugins work with this server by configuration alone:

- request params `{textDocument: {uri, version}, position, context?}` (sidekick sends
  `context: {triggerKind}` too);
- result `{edits: [{range, text, textDocument: {uri, version}, command}]}`; the clients
  run `command` (workspace/executeCommand) when the edit is applied;
- notifications `textDocument/didFocus {textDocument: {uri}}` (both plugins, on BufEnter)
  and `textDocument/didShowInlineEdit {item: {command}}` (copilot-lsp, once shown).

pygls hands a method it has no type for over as nested namedtuples; they are read back
into plain values here and checked, and a malformed request gets InvalidParams.
"""

from __future__ import annotations

from typing import Any

from pygls.exceptions import JsonRpcInvalidParams

from ..documents import DocumentStore
from ..documents.positions import Encoding, PositionError, index_to_column
from ..next_edit.service import NextEditRequest, NextEditResult, NextEditService
from ..plain import plain

INLINE_EDIT = "textDocument/copilotInlineEdit"
DID_FOCUS = "textDocument/didFocus"
DID_SHOW = "textDocument/didShowInlineEdit"
ACCEPT_COMMAND = "copilot.acceptedNextEdit"


# Top-level keys of the settings and initializationOptions GitHub Copilot's clients send
# (copilot-lsp: `init_options = {editorInfo, editorPluginInfo}`, `settings =
# {nextEditSuggestions = {enabled = true}}`). They are Copilot's, not ours to validate.
COPILOT_KEYS = frozenset(
    ("editorInfo", "editorPluginInfo", "nextEditSuggestions", "copilotCapabilities", "githubAppId")
)


def from_copilot_client(data: Any) -> dict[str, Any] | None:
    """Our settings in what a Copilot client sends, or None when it is not from one:
    `nextEditSuggestions.enabled` is our `nextEdit.enabled`; the rest is ignored."""
    if not isinstance(data, dict) or not COPILOT_KEYS.intersection(data):
        return None
    nes = data.get("nextEditSuggestions")
    enabled = nes.get("enabled") if isinstance(nes, dict) else None
    return {"nextEdit": {"enabled": enabled}} if isinstance(enabled, bool) else {}


def read_params(params: Any) -> tuple[str, int | None, int, int]:
    """(uri, version, line, character) from copilotInlineEdit params, or InvalidParams."""
    raw = plain(params)
    if not isinstance(raw, dict):
        raise JsonRpcInvalidParams("params must be {textDocument: {uri, version}, position}")
    doc = raw.get("textDocument")
    pos = raw.get("position")
    if not isinstance(doc, dict) or not isinstance(doc.get("uri"), str):
        raise JsonRpcInvalidParams("params.textDocument.uri must be a string")
    version = doc.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise JsonRpcInvalidParams("params.textDocument.version must be an integer")
    if not isinstance(pos, dict):
        raise JsonRpcInvalidParams("params.position must be {line, character}")
    line, character = pos.get("line"), pos.get("character")
    for name, number in (("line", line), ("character", character)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise JsonRpcInvalidParams(f"params.position.{name} must be an integer >= 0")
    return doc["uri"], version, line, character


async def inline_edit(
    next_edits: NextEditService, documents: DocumentStore, encoding: Encoding, params: Any
) -> dict[str, Any]:
    uri, version, line, character = read_params(params)
    doc = documents.get(uri)
    if doc is None:
        raise JsonRpcInvalidParams(f"document {uri} is not open (send textDocument/didOpen first)")
    if version is not None and version != doc.version:
        return {"edits": []}  # the client's buffer is not the one we have: no stale edit
    if doc.too_large or doc.looks_binary:
        return {"edits": []}
    try:
        cursor = doc.offset_at(line, character, encoding, strict=True)
    except PositionError as exc:
        raise JsonRpcInvalidParams(f"position {line}:{character}: {exc}") from None
    request = NextEditRequest(
        uri=uri,
        path=doc.path,
        language=doc.language_id,
        text=doc.text,
        cursor=cursor,
        version=doc.version,
    )
    result = await next_edits.suggest(request)
    current = documents.get(uri)
    if result.edit is None or current is None or current.version != request.version:
        return {"edits": []}  # nothing, or the document moved on while the model wrote
    return {"edits": [edit_item(request, result, encoding)]}


def edit_item(request: NextEditRequest, result: NextEditResult, encoding: str) -> dict[str, Any]:
    edit = result.edit
    assert edit is not None
    return {
        "range": {
            "start": position(request.text, edit.start, encoding),
            "end": position(request.text, edit.end, encoding),
        },
        "text": edit.text,
        "textDocument": {"uri": request.uri, "version": request.version},
        "command": {
            "title": "Accept next edit",
            "command": ACCEPT_COMMAND,
            "arguments": [{"id": result.id, "uri": request.uri, "source": result.source}],
        },
    }


def position(text: str, offset: int, encoding: str) -> dict[str, int]:
    """LSP position of a str offset: O(line length) after a C-speed newline count."""
    line = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    column = index_to_column(text[line_start:offset], offset - line_start, encoding)  # type: ignore[arg-type]
    return {"line": line, "character": column}


def accepted(next_edits: NextEditService, args: tuple[Any, ...]) -> None:
    next_edits.record_accepted()


def did_focus(next_edits: NextEditService, params: Any) -> None:
    """Which document the user looks at; Copilot uses it to rank context. Ours follows the
    open documents already, so it is accepted and noted."""
    raw = plain(params)
    uri = raw.get("textDocument", {}).get("uri") if isinstance(raw, dict) else None
    if isinstance(uri, str):
        next_edits.focused = uri


def did_show(next_edits: NextEditService, params: Any) -> None:
    next_edits.metrics.shown += 1
