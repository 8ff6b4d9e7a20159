"""The server's copy of a document is the editor's (issue 19, items 4-7).

Over stdio with a real LSP client (pytest-lsp, recorded VS Code and Neovim capabilities);
the server's copy is read with `copilot.debugDocument` (COPILOT_SERVER_DEBUG=1). The
model's output plays no part, so the server is given a model path that does not exist,
except in the one test that runs a fix with the real model.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from typing import Union

import pytest
import pytest_lsp
from lsp_helpers import SERVER_COMMAND, profile
from lsprotocol import converters, types
from pytest_lsp import ClientServerConfig, LanguageClient

from copilot_server.benchmarks.fuzzing import random_sequence, reference_apply, same_text
from copilot_server.documents import DocumentStore
from copilot_server.documents.store import parse_view
from copilot_server.syntax import SyntaxTree

URI = "file:///tmp/copilot-sync/doc.py"
MISSING_MODEL = ["--model", "/nonexistent/copilot-sync.gguf"]
DEBUG_ENV = {**os.environ, "COPILOT_SERVER_DEBUG": "1"}
CONFIG = ClientServerConfig(server_command=SERVER_COMMAND + MISSING_MODEL, server_env=DEBUG_ENV)


def _command_or_code_action(obj, _type):  # noqa: ANN001, ANN202
    # lsprotocol reads any object with a "command" key as a Command; editors tell a
    # CodeAction that carries a command (our Explain) apart by the type of "command".
    kind = types.Command if isinstance(obj.get("command"), str) else types.CodeAction
    return converters.get_converter().structure(obj, kind)


@pytest_lsp.fixture(config=CONFIG, params=["vscode", "neovim"])
async def client(lsp_client: LanguageClient, request):
    # Neovim offers ["utf-8", "utf-16"] and gets UTF-8; VS Code offers nothing: UTF-16.
    encodings = ["utf-8", "utf-16"] if request.param == "neovim" else None
    lsp_client.protocol._converter.register_structure_hook(
        Union[types.Command, types.CodeAction],  # noqa: UP007 - the key lsprotocol registers
        _command_or_code_action,
    )
    result = await lsp_client.initialize_session(
        types.InitializeParams(capabilities=profile(request.param, encodings))
    )
    lsp_client.encoding = result.capabilities.position_encoding  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, text: str, uri: str = URI) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )


def _insert(client: LanguageClient, line: int, character: int, text: str, version: int = 2):
    _change(client, [(line, character, line, character, text)], version)


def _change(client: LanguageClient, edits: list[tuple], version: int = 2) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=l0, character=c0),
                        end=types.Position(line=l1, character=c1),
                    ),
                    text=text,
                )
                for l0, c0, l1, c1, text in edits
            ],
        )
    )


async def _held(client: LanguageClient, uri: str = URI) -> str:
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="copilot.debugDocument", arguments=[{"uri": uri}])
    )
    return result["text"]


async def test_positions_are_read_in_the_negotiated_encoding(client: LanguageClient):
    # Item 4: Neovim negotiated UTF-8 and the server read its columns as UTF-16.
    encoding = client.encoding  # type: ignore[attr-defined]
    _open(client, "a👍b\n")
    column = 5 if encoding == "utf-8" else 3  # after the emoji: 1 + 4 bytes, 1 + 2 units
    _insert(client, 0, column, "X")
    assert await _held(client) == "a👍Xb\n"


async def test_only_lf_crlf_and_cr_end_lines(client: LanguageClient):
    # Item 5: pygls split lines with str.splitlines (FF, VT, U+2028, NEL ...) and clamped
    # the change's position in place before our handler read it.
    text = "a\x0cb = 1\nx\u2028y\x85z\r\nw\rv\n"
    _open(client, text)
    # The end of line 1: 5 UTF-16 units, 8 UTF-8 bytes (U+2028: 3, NEL: 2).
    end = 8 if client.encoding == "utf-8" else 5  # type: ignore[attr-defined]
    _change(client, [(0, 3, 0, 3, "X"), (1, end, 1, end, "Y"), (3, 1, 3, 1, "Z")])
    assert await _held(client) == "a\x0cbX = 1\nx\u2028y\x85zY\r\nw\rvZ\n"


async def test_a_position_past_the_line_end_means_the_line_end(client: LanguageClient):
    _open(client, "abc")  # the issue's reproducer: pygls made it "abXc"
    _change(client, [(0, 10, 0, 10, "X")])
    _change(client, [(9, 0, 9, 0, "!")], version=3)  # a line past the end: the end
    assert await _held(client) == "abcX!"


async def test_a_lone_surrogate_keeps_the_rest_of_the_notification(client: LanguageClient):
    # Item 6: the tree-sitter edit raised on "\ud800" after the text was replaced, so the
    # rest of the notification was lost and every later request failed with -32603.
    _open(client, "def f():\n    pass\n")
    _change(client, [(0, 0, 0, 0, "\ud800"), (1, 4, 1, 8, "return 1"), (2, 0, 2, 0, "x = 2\n")])
    assert same_text(await _held(client), "\ud800def f():\n    return 1\nx = 2\n")
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            range=types.Range(
                start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)
            ),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert any("Explain" in action.title for action in actions)
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line=1, character=12),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
    )
    assert result is not None  # answered, not -32603


async def test_explain_on_a_cr_only_file_covers_the_enclosing_function(client: LanguageClient):
    # Item 7: the region was read by "\n" only, so "explain" covered the whole file.
    _open(client, "def a():\r    return 1\r\rdef b():\r    x = 2\r    return x\r")
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            range=types.Range(
                start=types.Position(line=4, character=4), end=types.Position(line=4, character=4)
            ),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    explain = next(action for action in actions if "Explain" in action.title)
    assert explain.title == "Explain `b` (copilot)"
    target = explain.command.arguments[0]["range"]
    assert (target["start"]["line"], target["end"]["line"]) == (3, 5)


# -- in process: the store against the reference ---------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8", "utf-32"])
def test_document_store_follows_random_edits_like_the_reference(encoding):
    rng = random.Random(f"store-{encoding}")
    for n in range(150):
        seq = random_sequence(rng, f"file:///r/{n}.py", encoding, 10, surrogates=n % 3 == 0)
        store = DocumentStore()
        store.open(seq.uri, "python", 1, seq.text)
        for step, changes in enumerate(seq.notifications):
            edits = []
            for change in changes:
                rng_ = change.get("range")
                box = None
                if rng_ is not None:
                    start, end = rng_["start"], rng_["end"]
                    box = (start["line"], start["character"], end["line"], end["character"])
                edits.append((box, change["text"]))
            doc = store.change(seq.uri, step + 2, edits, encoding)
            assert doc is not None
            assert doc.source == seq.expected[step], (n, step, seq.text, changes)
            # The parse view has the source's length and no lone CR or surrogate.
            assert len(doc.text) == len(doc.source)
            assert doc.text == parse_view(doc.source)


def test_reference_applies_the_issue_reproducers():
    # The reference itself, on the issue's cases (UTF-8 after an emoji, FF, past the end).
    def insert(text, line, character, encoding):
        position = {"line": line, "character": character}
        change = {"range": {"start": position, "end": position}, "text": "X"}
        return reference_apply(text, change, encoding)

    assert insert("a👍b\n", 0, 5, "utf-8") == "a👍Xb\n"
    assert insert("a\x0cb = 1\n", 0, 3, "utf-16") == "a\x0cbX = 1\n"
    assert insert("abc", 0, 10, "utf-16") == "abcX"


def test_a_syntax_tree_takes_lone_surrogates_without_losing_offsets():
    tree = SyntaxTree.for_document("python", "x = 1\n", "a.py")
    assert tree is not None
    tree.edit("x = 1\n", "x = '\ud800'\n", 4, 5, 10)  # raised UnicodeEncodeError before
    assert tree.tree.root_node.end_byte == len("x = '\ufffd'\n".encode())


# -- the headless fix on a CR-only file (real model) --------------------------------------------


@pytest.mark.model
def test_fix_at_a_line_of_a_cr_only_file_fixes_that_line_and_keeps_its_line_ends(tmp_path):
    # Item 7: `fix --line 2` said "no syntax error at line 2" (rows were counted by "\n").
    path = tmp_path / "total.py"
    path.write_bytes(
        b"def total(values):\r    s = 0\r    for v in values\r        s += v\r    return s\r"
    )
    done = subprocess.run(
        [sys.executable, "-m", "copilot_server", "fix", str(path), "--line", "2", "--apply"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert "no syntax error" not in done.stderr
    assert done.returncode == 0, done.stderr[-2000:]
    fixed = path.read_bytes()
    assert b"    for v in values:\r" in fixed
    assert b"\n" not in fixed  # the file keeps its CR line ends


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def model_client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=profile("vscode"),
            initialization_options={"copilotServer": {"completion": {"maxTokens": 16}}},
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.mark.model
async def test_the_model_completes_a_document_with_a_lone_surrogate(model_client):
    # Item 6: the tokenizer was handed the surrogate and every request failed (-32603).
    _open(model_client, "def greet(name):\n    # \ud83d\n    return 'hello, ' + \n")
    result = await model_client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line=2, character=24),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
    )
    assert result is not None and result.items, "expected a suggestion"
