"""Explain and fix through the real server over stdio (pytest-lsp), with VS Code's
capabilities; the two model calls are the issue's done-when cases."""

from __future__ import annotations

import asyncio
from typing import Union

import pytest
import pytest_lsp
from lsp_helpers import SERVER_COMMAND, change_document, free_port, open_document, profile
from lsprotocol import converters, types
from pytest_lsp import ClientServerConfig, LanguageClient

from copilot_server.syntax.problems import syntax_problems

URI = "file:///tmp/copilot-test/actions_sample.py"
MISSING_COLON = "import os\n\n\ndef add(a, b)\n    return a + b\n\n\nprint(add(1, 2))\n"
SMALL_FUNCTION = (
    "def is_palindrome(word):\n"
    "    cleaned = word.lower().replace(' ', '')\n"
    "    return cleaned == cleaned[::-1]\n"
)
EXPLAIN_BUDGET = 120


def _command_or_code_action(obj, _type):  # noqa: ANN001, ANN202
    # lsprotocol reads any object with a "command" key as a Command, so a CodeAction that
    # carries a command (our Explain) would lose its title, kind and arguments; editors
    # tell them apart by the type of "command", as this does.
    converter = converters.get_converter()
    kind = types.Command if isinstance(obj.get("command"), str) else types.CodeAction
    return converter.structure(obj, kind)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient):
    await _initialize(lsp_client, {"explainMaxTokens": EXPLAIN_BUDGET})
    yield
    await lsp_client.shutdown_session()


async def _initialize(lsp_client: LanguageClient, options: dict) -> None:
    """A VS Code-like session whose code actions are read the way editors read them."""
    lsp_client.protocol._converter.register_structure_hook(
        Union[types.Command, types.CodeAction],  # noqa: UP007 - the key lsprotocol registers
        _command_or_code_action,
    )
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=profile("vscode"), initialization_options={"copilotServer": options}
        )
    )


def _code_action_params(
    line: int, character: int = 0, end: tuple[int, int] | None = None, only: list[str] | None = None
) -> types.CodeActionParams:
    end_line, end_char = end if end is not None else (line, character)
    return types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        range=types.Range(
            start=types.Position(line=line, character=character),
            end=types.Position(line=end_line, character=end_char),
        ),
        context=types.CodeActionContext(diagnostics=[], only=only),
    )


async def _actions(
    client: LanguageClient, params: types.CodeActionParams
) -> list[types.CodeAction]:
    result = await client.text_document_code_action_async(params)
    return [a for a in (result or []) if isinstance(a, types.CodeAction)]


def _apply(text: str, edit: types.WorkspaceEdit) -> tuple[str, list[types.TextEdit]]:
    """Apply a WorkspaceEdit's text edits (UTF-16 = str indices for this ASCII sample)."""
    changes = edit.document_changes or []
    edits = [e for change in changes for e in change.edits] if changes else edit.changes[URI]
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    ordered = sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character))
    for e in reversed(ordered):
        start = offsets[e.range.start.line] + e.range.start.character
        end = offsets[e.range.end.line] + e.range.end.character
        text = text[:start] + e.new_text + text[end:]
    return text, ordered


async def test_code_actions_offer_fix_and_explain_without_a_model_call(client: LanguageClient):
    open_document(client, MISSING_COLON, URI)
    actions = await _actions(client, _code_action_params(3, 5))
    fixes = [a for a in actions if a.kind == types.CodeActionKind.QuickFix]
    assert len(fixes) == 1
    assert fixes[0].edit is None and fixes[0].data["startLine"] == 3
    explains = [a for a in actions if a.command and a.command.command == "copilot.explain"]
    assert len(explains) == 1
    status = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="copilot.status")
    )
    assert status["metrics"]["model_calls"] == 0
    # Lines without a problem offer no fix; a source-only request offers nothing.
    assert not [a for a in await _actions(client, _code_action_params(0)) if a.kind == "quickfix"]
    assert await _actions(client, _code_action_params(3, only=["source.organizeImports"])) == []


async def test_a_diagnostic_from_another_server_gets_its_own_fix(client: LanguageClient):
    open_document(client, "import os\n\nprint(undefined_name)\n", URI)
    diagnostic = types.Diagnostic(
        range=types.Range(
            start=types.Position(line=2, character=6), end=types.Position(line=2, character=20)
        ),
        message='"undefined_name" is not defined',
        source="pyright",
    )
    params = _code_action_params(2, 6)
    params.context.diagnostics = [diagnostic]
    fixes = [a for a in await _actions(client, params) if a.kind == "quickfix"]
    assert len(fixes) == 1
    assert list(fixes[0].diagnostics) == [diagnostic]
    assert "undefined_name" in fixes[0].data["message"]


async def test_a_fix_offered_for_an_older_version_is_disabled_with_a_reason(client: LanguageClient):
    open_document(client, MISSING_COLON, URI)
    fix = next(a for a in await _actions(client, _code_action_params(3)) if a.kind == "quickfix")
    change_document(client, URI, 2, (0, 0), (0, 0), "# edited\n")
    resolved = await client.code_action_resolve_async(fix)
    assert resolved.edit is None
    assert resolved.disabled is not None and "changed" in resolved.disabled.reason


@pytest.mark.model
async def test_resolving_the_fix_repairs_the_missing_colon_touching_only_that_line(
    client: LanguageClient,
):
    open_document(client, MISSING_COLON, URI)
    fix = next(a for a in await _actions(client, _code_action_params(3, 5)) if a.kind == "quickfix")
    resolved = await client.code_action_resolve_async(fix)
    assert resolved.disabled is None, resolved.disabled
    assert resolved.edit is not None
    fixed, edits = _apply(MISSING_COLON, resolved.edit)
    assert syntax_problems("python", fixed) == []
    assert {e.range.start.line for e in edits} == {3} and {e.range.end.line for e in edits} == {3}
    assert fixed.split("\n")[3].startswith("def add(a, b)")
    # VS Code takes versioned document changes: the edit names the version it was made for.
    assert resolved.edit.document_changes[0].text_document.version == 1
    fix_progress = [
        reports
        for token, reports in client.progress_reports.items()
        if reports and getattr(reports[0], "title", "") == "Fixing"
    ]
    assert fix_progress, "a fix reports $/progress"
    assert fix_progress[0][0].cancellable and isinstance(
        fix_progress[0][-1], types.WorkDoneProgressEnd
    )


@pytest.mark.model
async def test_explain_names_what_a_small_function_does_within_the_budget(client: LanguageClient):
    open_document(client, SMALL_FUNCTION, URI)
    explain = next(
        a
        for a in await _actions(client, _code_action_params(1, 4))
        if a.command and a.command.command == "copilot.explain"
    )
    assert "is_palindrome" in explain.title
    notified = asyncio.ensure_future(client.wait_for_notification("copilot/explanation"))
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=explain.command.command, arguments=explain.command.arguments
        )
    )
    markdown = result["markdown"]
    assert "palindrome" in markdown.lower()
    assert 0 < result["tokens"] <= EXPLAIN_BUDGET
    sentences = [s for s in markdown.replace("\n", " ").split(". ") if s.strip()]
    assert 1 <= len(sentences) <= 4
    assert "```" not in markdown
    params = _plain(await asyncio.wait_for(notified, timeout=5))
    assert params["markdown"] == markdown and params["tokens"] == result["tokens"]
    assert params["uri"] == URI
    assert params["range"]["start"]["line"] == 0 and params["range"]["end"]["line"] == 2


def _plain(value):  # noqa: ANN001, ANN202 - notification params arrive as pygls Objects
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    return value


DOWN_URL = f"http://127.0.0.1:{free_port()}"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def remote_down_client(lsp_client: LanguageClient):
    await _initialize(lsp_client, {"engine": {"kind": "openai", "url": DOWN_URL, "retries": 0}})
    yield
    await lsp_client.shutdown_session()


async def test_explain_with_a_model_server_that_is_down_says_so(remote_down_client):
    client = remote_down_client
    open_document(client, SMALL_FUNCTION, URI)
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="copilot.explain",
            arguments=[
                {
                    "uri": URI,
                    "range": {
                        "start": {"line": 1, "character": 4},
                        "end": {"line": 1, "character": 4},
                    },
                }
            ],
        )
    )
    assert "refused the connection" in result["markdown"], result
    assert result["tokens"] == 0
    # The server is still up and answers the next request.
    actions = await _actions(client, _code_action_params(1, 4))
    assert any(a.command and a.command.command == "copilot.explain" for a in actions)
