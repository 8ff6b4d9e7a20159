"""Next edit suggestions: the edit history, propagation, diffing, the filters, the prompt
formats, the LSP request sidekick.nvim and copilot-lsp send, and one real-model rewrite.

Pairs are made here, in the test; the bench's mined pairs are never downloaded by tests."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest
import pytest_lsp
from lsp_helpers import SERVER_COMMAND, change_document, inline_params, open_document, profile
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from copilot_server.config import Settings
from copilot_server.documents import DocumentStore
from copilot_server.documents import history as history_module
from copilot_server.documents.history import EditHistory, Hunk
from copilot_server.lsp.next_edit import plain, position, read_params
from copilot_server.next_edit.diffing import Edit, line_edits, nearest_edit, smallest_edit
from copilot_server.next_edit.propagation import Kinds, propagate
from copilot_server.next_edit.rewrite import run_rewrite
from copilot_server.next_edit.service import (
    NextEditRequest,
    NextEditService,
    copy_noise,
    more_syntax_errors,
    pick_edit,
    rejection,
)
from copilot_server.prompts.next_edit import (
    build_prompt,
    is_next_edit_model,
    original_window,
    window_around,
)

# -- edit history ---------------------------------------------------------------------------


def type_text(history: EditHistory, uri: str, text: str, at: int, typed: str, t0: float) -> str:
    """Type `typed` at `at` one character at a time, as didChange would report it."""
    for i, ch in enumerate(typed):
        after = text[: at + i] + ch + text[at + i :]
        history.record(uri, text, after, at + i, at + i, at + i + 1, now=t0 + i * 0.1)
        text = after
    return text


def delete(history: EditHistory, uri: str, text: str, start: int, end: int, now: float) -> str:
    after = text[:start] + text[end:]
    history.record(uri, text, after, start, end, start, now=now)
    return after


def test_typing_a_word_over_a_selection_coalesces_into_one_hunk():
    history = EditHistory()
    text = "total = 0\nprint(total)\n"
    text = delete(history, "u", text, 0, 5, now=1.0)
    text = type_text(history, "u", text, 0, "subtotal", t0=1.1)
    (hunk,) = history.hunks("u")
    assert (hunk.old, hunk.new, hunk.start) == ("total", "subtotal", 0)
    assert text[hunk.start : hunk.end] == "subtotal"
    assert hunk.updated > hunk.started


def test_two_changes_on_one_line_are_one_hunk_and_another_line_starts_a_new_one():
    history = EditHistory()
    text = "f(1, 2)\ng(3)\n"
    after = "f(7, 2)\ng(3)\n"
    history.record("u", text, after, 2, 3, 3, now=1.0)
    text, after = after, "f(7, 8)\ng(3)\n"
    history.record("u", text, after, 5, 6, 6, now=1.5)
    text, after = after, "f(7, 8)\ng(9)\n"
    history.record("u", text, after, 10, 11, 11, now=2.0)
    first, second = history.hunks("u")
    assert (first.old, first.new) == ("1, 2", "7, 8")
    assert (second.old, second.new, second.start) == ("3", "9", 10)


def test_an_edit_after_a_long_pause_starts_a_new_hunk():
    history = EditHistory(coalesce_s=5.0)
    text = "name = 1\n"
    text = type_text(history, "u", text, 4, "s", t0=1.0)
    type_text(history, "u", text, 5, "x", t0=100.0)
    assert [h.new for h in history.hunks("u")] == ["s", "x"]


def test_typed_and_deleted_again_leaves_no_hunk():
    history = EditHistory()
    text = type_text(history, "u", "x = 1\n", 5, "23", t0=1.0)
    delete(history, "u", text, 5, 7, now=2.0)
    assert history.hunks("u") == []


def test_hunks_after_an_edit_move_and_a_hunk_edited_inside_is_dropped():
    history = EditHistory()
    text = "aaa\nbbb\nccc\n"
    after = "aaa\nbXb\nccc\n"
    history.record("u", text, after, 5, 6, 6, now=1.0)  # line 2
    text, after = after, "AAAA\nbXb\nccc\n"
    history.record("u", text, after, 0, 3, 4, now=2.0)  # line 1, one char longer
    moved = history.hunks("u")[0]
    assert after[moved.start : moved.end] == "X" and moved.start == 6
    text, after = after, "AAAA\nbYb\nccc\n"
    history.record("u", text, after, 6, 7, 7, now=3.0)  # into the older hunk, not the last
    assert [h.new for h in history.hunks("u")] == ["AAAA", "Y"]


def test_history_is_bounded_per_document_and_in_total():
    history = EditHistory(per_document=3, total=5)
    for doc in range(3):
        text = "a\n" * 20
        for line in range(4):  # each on its own line: four hunks
            at = line * 4
            after = text[:at] + "b" + text[at + 1 :]
            history.record(f"d{doc}", text, after, at, at + 1, at + 1, now=doc * 10 + line)
            text = after
    assert all(len(history.hunks(f"d{d}")) <= 3 for d in range(3))
    assert history.count() == 5
    assert len(history.hunks("d2")) == 3  # the newest document keeps its hunks


def test_a_paste_larger_than_the_limit_is_not_a_hunk():
    history = EditHistory(max_hunk_chars=100)
    text = "x = 1\n"
    after = text + "y = 2\n" * 50
    history.record("u", text, after, len(text), len(text), len(after), now=1.0)
    assert history.hunks("u") == []


def test_a_ranged_did_change_is_recorded_without_comparing_the_texts(monkeypatch):
    def must_not_run(*_args):
        raise AssertionError("a keystroke must not diff the whole document")

    monkeypatch.setattr(history_module, "changed_span", must_not_run)
    store = DocumentStore()
    store.open("file:///a.py", "python", 1, "def f(a):\n    return a\n")
    history = EditHistory()
    changes = [((0, 7, 0, 7), "b")]
    pending = history.begin(store.get("file:///a.py"), changes, "utf-16")
    doc = store.change("file:///a.py", 2, changes, "utf-16")
    history.finish(pending, doc, 2)
    (hunk,) = history.hunks("file:///a.py")
    assert (hunk.start, hunk.old, hunk.new, hunk.version) == (7, "", "b", 2)


def test_a_full_text_did_change_is_recorded_by_comparing_the_texts():
    store = DocumentStore()
    store.open("file:///a.py", "python", 1, "x = 1\ny = 2\n")
    history = EditHistory()
    changes = [(None, "x = 1\ny = 20\n")]
    pending = history.begin(store.get("file:///a.py"), changes, "utf-16")
    doc = store.change("file:///a.py", 2, changes, "utf-16")
    history.finish(pending, doc, 2)
    (hunk,) = history.hunks("file:///a.py")
    assert (hunk.start, hunk.old, hunk.new) == (11, "", "0")


# -- propagation ----------------------------------------------------------------------------


def rename_at(text: str, old: str, new: str, occurrence: int = 0) -> tuple[str, Hunk]:
    at = -1
    for _ in range(occurrence + 1):
        at = text.index(old, at + 1)
    return text[:at] + new + text[at + len(old) :], Hunk(at, old, new, 0.0, 0.0)


def applied(text: str, edits: list[Edit]) -> list[str]:
    """The line each edit produces."""
    out = []
    for edit in edits:
        after = edit.apply(text)
        start = after.rfind("\n", 0, edit.start) + 1
        end = after.find("\n", edit.start)
        out.append(after[start:end].strip())
    return out


def test_rename_is_offered_at_other_uses_nearest_first_below_before_above():
    text = "a = count\ncount = 0\nb = count + 1\nc = 2\nd = count\n"
    text, hunk = rename_at(text, "count", "total", occurrence=1)
    edits = propagate(text, hunk, hunk.end, "python")
    assert applied(text, edits) == ["b = total + 1", "a = total", "d = total"]


def test_rename_leaves_attributes_longer_names_and_strings_and_comments_alone():
    text = (
        "def f(name):\n"
        "    print(name)  # the name\n"
        "    obj.name = name_x\n"
        "    return 'name', name\n"
    )
    text, hunk = rename_at(text, "name", "label")
    edits = propagate(text, hunk, hunk.end, "python")
    assert applied(text, edits) == ["print(label)  # the name", "return 'name', label"]
    assert all(e.text == "label" for e in edits)


def test_attribute_rename_is_offered_for_attributes_only():
    text = "self.get(x)\nitems.get(y)\nget(z)\n"
    at = text.index("get")
    text = text[:at] + "fetch" + text[at + 3 :]
    edits = propagate(text, Hunk(at, "get", "fetch", 0, 0), at + 5, "python")
    assert applied(text, edits) == ["items.fetch(y)"]


def test_changed_literal_is_offered_only_with_its_named_context():
    text = "a = call(timeout=30)\nb = call(timeout=30, retries=3)\nc = 30\n"
    at = text.index("30")
    text = text[:at] + "6" + text[at + 1 :]
    edits = propagate(text, Hunk(at, "3", "6", 0, 0), at + 1, "python")
    assert applied(text, edits) == ["b = call(timeout=60, retries=3)"]


def test_keyword_change_without_a_name_near_it_is_not_propagated():
    text = "x = True\ny = True\n"
    at = text.index("True")
    text = text[:at] + "False" + text[at + 4 :]
    assert propagate(text, Hunk(at, "True", "False", 0, 0), at + 5, "python") == []


def test_added_argument_is_offered_at_every_other_call_but_not_the_definition():
    text = "def load(path):\n    pass\na = load(p)\nb = load(q, 2)\nc = load()\nd = other.load(r)\n"
    at = text.index("load(p)") + len("load(p")
    text = text[:at] + ", strict=True" + text[at:]
    edits = propagate(text, Hunk(at, "", ", strict=True", 0, 0), at, "python")
    assert applied(text, edits) == [
        "b = load(q, 2, strict=True)",
        "c = load(strict=True)",
    ]


def test_a_call_that_already_has_the_argument_is_skipped():
    text = "a = load(p)\nb = load(q, strict=True)\n"
    at = text.index("load(p)") + len("load(p")
    text = text[:at] + ", strict=True" + text[at:]
    assert propagate(text, Hunk(at, "", ", strict=True", 0, 0), at, "python") == []


def test_text_that_already_reads_the_new_way_is_not_changed_again():
    text = "cfg = load()\nuse(cfg.value)\nuse(cfg)\n"
    at = text.index("cfg)") + 3  # append ".value" to the last `cfg`
    text = text[:at] + ".value" + text[at:]
    edits = propagate(text, Hunk(at, "", ".value", 0, 0), at + 6, "python")
    # `cfg` in `cfg.value` must not become `cfg.value.value`.
    assert applied(text, edits) == ["cfg.value = load()"]


def test_multi_line_edits_and_a_history_behind_the_text_give_nothing():
    text = "a = 1\nb = 1\n"
    assert propagate(text, Hunk(0, "a = 0\n", "a = 1\nx\n", 0, 0), 0) == []
    assert propagate(text, Hunk(0, "zz", "yy", 0, 0), 0) == []  # the text does not read yy


def test_one_letter_rename_stays_within_the_lines_around_it():
    far = "\n" * 40
    text = f"w = 1\nprint(w)\n{far}w = 2\n"
    text, hunk = rename_at(text, "w", "width")
    edits = propagate(text, hunk, hunk.end, "python")
    assert applied(text, edits) == ["print(width)"]


def test_a_use_far_away_in_a_long_file_is_still_found():
    filler = "".join(f"x{i} = {i}\n" for i in range(3000))
    text = f"limit = 1\n{filler}print(limit)\n"
    text, hunk = rename_at(text, "limit", "cap")
    edits = propagate(text, hunk, hunk.end, "python")
    assert applied(text, edits) == ["print(cap)"]


def test_kinds_tell_code_comments_and_strings_apart():
    py = 'x = 1  # note\ns = "a # b"\n"""doc\nname\n"""\ny = 2\n'
    kinds = Kinds(py, "python")
    assert kinds.at(py.index("x")) == "code"
    assert kinds.at(py.index("note")) == "comment"
    assert kinds.at(py.index("a # b")) == "string"
    assert kinds.at(py.index("name")) == "string"
    assert kinds.at(py.index("y = 2")) == "code"
    js = "/* a\n * name */\nconst name = 1; // name\nx.#priv = 2\n"
    kinds = Kinds(js, "javascript")
    assert kinds.at(js.index("name")) == "comment"
    assert kinds.at(js.index("const name") + 6) == "code"
    assert kinds.at(js.rindex("name")) == "comment"
    assert kinds.at(js.index("#priv")) == "code"


# -- diffing ------------------------------------------------------------------------------


def test_smallest_edit_trims_what_both_texts_share():
    assert smallest_edit("a = foo(1)\n", "a = foo(1, 2)\n", base=10) == Edit(19, 19, ", 2")
    assert smallest_edit("same", "same") is None


def test_line_edits_group_nearby_lines_and_nearest_edit_prefers_the_cursor():
    old = "a\nb\nc\nd\ne\nf\ng\nh\n"
    new = "a\nB\nc\nD\ne\nf\ng\nH\n"
    edits = line_edits(old, new)
    assert [(old[e.start : e.end], e.text) for e in edits] == [("b\nc\nd", "B\nc\nD"), ("h", "H")]
    assert nearest_edit(edits, old.index("g")).text == "H"
    assert pick_edit(old, new, 0, 0).text == "B\nc\nD"


# -- filters ------------------------------------------------------------------------------


def test_filters_drop_no_op_revert_and_syntax_breaking_edits():
    text = "def f(x):\n    return x + 1\n"
    hunk = Hunk(text.index("x + 1"), "y", "x", 0, 0)
    assert rejection(text, Edit(4, 5, "f"), hunk, "python") == "unchanged"
    undo = Edit(hunk.start, hunk.end, "y")
    assert rejection(text, undo, hunk, "python") == "reverts"
    broken = Edit(text.index("(x)"), text.index("(x)") + 3, "(x")
    assert rejection(text, broken, hunk, "python") == "syntax"
    fine = Edit(text.index("1"), text.index("1") + 1, "2")
    assert rejection(text, fine, hunk, "python") is None


def test_copying_slips_of_the_model_are_not_edits():
    text = "a = 1\n\n\nb = 2\nc = 3\nd = 4\n"
    blank_lost = Edit(text.index("\n\n"), text.index("\n\n") + 1, "")
    assert copy_noise(text, blank_lost) == "whitespace"
    lines_lost = Edit(text.index("b"), text.index("d"), "")
    assert copy_noise(text, lines_lost) == "deleted lines"
    assert copy_noise(text, Edit(text.index("2"), text.index("2") + 1, "5")) is None


def test_syntax_check_reads_only_the_lines_around_the_edit():
    # A broken function far away does not hide that this edit breaks its own lines.
    text = "def broken(:\n    pass\n" + "\n" * 5 + "x = [1, 2]\n" + "y = 3\n" * 200
    edit = Edit(text.index("]"), text.index("]") + 1, "")
    assert more_syntax_errors(text, edit, "python")
    ok = Edit(text.index("2"), text.index("2") + 1, "5")
    assert not more_syntax_errors(text, ok, "python")


# -- prompts ------------------------------------------------------------------------------


def test_window_is_whole_lines_around_the_cursor_shifted_at_the_ends():
    text = "".join(f"line {i}\n" for i in range(40))
    middle = window_around(text, text.index("line 20"), 5)
    assert middle.text == "line 18\nline 19\nline 20\nline 21\nline 22\n"
    end = window_around(text, len(text) - 1, 5)
    assert end.first_line == 35 and end.line_count == 5


def test_original_window_puts_the_recent_hunks_back():
    text = "a = 1\nb = total\nc = 3\n"
    window = window_around(text, 0, 3)
    hunk = Hunk(text.index("total"), "sum", "total", 0, 0)
    assert original_window(window, [hunk]) == "a = 1\nb = sum\nc = 3\n"


def test_next_edit_models_are_recognised_by_name():
    def info(name: str, path: str = "/m/model.gguf") -> object:
        return type("Info", (), {"name": name, "path": path, "metadata": {}})()

    assert is_next_edit_model(info("sweep-next-edit-1.5B"))
    assert is_next_edit_model(info("x", "/models/Sweep_Next_Edit-0.5b-Q8_0.gguf"))
    assert not is_next_edit_model(info("Qwen2.5 Coder 0.5B Instruct"))


def test_sweep_format_for_a_next_edit_model_with_markers_as_special_tokens(tmp_path):
    from gguf_factory import FAMILIES, load_vocab_engine, write_family

    family = dataclasses.replace(
        FAMILIES["qwen2.5-coder"], key="sweep", name="sweep-next-edit-1.5B", basename="sweep"
    )
    engine = load_vocab_engine(write_family(family, tmp_path))
    text = "x = 1\ny = x\nz = '<|file_sep|>'\n"
    hunk = Hunk(0, "w", "x", 0, 0)
    window = window_around(text, 0, 3)
    prompt = build_prompt(
        engine, path="a.py", language="python", document=text, window=window, hunks=[hunk]
    )
    assert prompt.format == "sweep"
    sep = engine.tokenize("<|file_sep|>", special=True)
    assert len(sep) == 1
    assert prompt.tokens.count(sep[0]) == 4  # diff, original, current, updated: not the code's
    pieces, piece = [], []
    for token in prompt.tokens:
        if token == sep[0]:
            pieces.append(engine.detokenize(piece))
            piece = []
        else:
            piece.append(token)
    pieces.append(engine.detokenize(piece))
    assert "<|file_sep|>".join(pieces) == (
        "<|file_sep|>a.py.diff\noriginal:\nw = 1\nupdated:\nx = 1\n"
        "<|file_sep|>original/a.py\nw = 1\ny = x\nz = '<|file_sep|>'\n"
        "<|file_sep|>current/a.py\nx = 1\ny = x\nz = '<|file_sep|>'\n"
        "<|file_sep|>updated/a.py\n"
    )
    assert sep[0] in prompt.stop_tokens


def test_read_params_takes_sidekick_params_and_rejects_bad_ones():
    good = {
        "textDocument": {"uri": "file:///a.py", "version": 3},
        "position": {"line": 1, "character": 2},
        "context": {"triggerKind": 2},
    }
    assert read_params(good) == ("file:///a.py", 3, 1, 2)
    for bad in (
        None,
        [],
        {"position": {"line": 0, "character": 0}},
        {"textDocument": {"uri": "file:///a.py", "version": "3"}, "position": good["position"]},
        {"textDocument": {"uri": "file:///a.py"}, "position": {"line": -1, "character": 0}},
        {"textDocument": {"uri": "file:///a.py"}, "position": {"line": True, "character": 0}},
    ):
        with pytest.raises(JsonRpcException):
            read_params(bad)


def test_positions_count_utf16_units_for_astral_characters():
    text = "a\n😀b = 1\n"
    assert position(text, text.index("b"), "utf-16") == {"line": 1, "character": 2}
    assert position(text, text.index("b"), "utf-32") == {"line": 1, "character": 1}


def test_service_offers_propagation_and_counts_it():
    settings = Settings()

    async def no_model(fn):  # noqa: ANN001, ANN202
        raise AssertionError("propagation must not use the model")

    service = NextEditService(lambda: settings, lambda: None, no_model)
    before = "n = 1\nprint(n)\nn += 1\n"
    after = "count = 1\nprint(n)\nn += 1\n"
    service.history.record("u", before, after, 0, 1, 5)
    result = asyncio.run(service.suggest(NextEditRequest("u", "a.py", "python", after, 5)))
    assert result.source == "propagation"
    assert result.edit.apply(after) == "count = 1\nprint(count)\nn += 1\n"
    assert service.metrics.offered_propagation == 1
    off = Settings().merged({"next_edit": {"propagation": False}})
    service = NextEditService(lambda: off, lambda: None, no_model)
    service.history.record("u", before, after, 0, 1, 5)
    result = asyncio.run(service.suggest(NextEditRequest("u", "a.py", "python", after, 5)))
    assert result.edit is None


# -- the LSP request, as sidekick.nvim and copilot-lsp send it -------------------------------


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient):
    # Neovim's capabilities offer utf-8 first; copilot-lsp's README set-up offers utf-16
    # only (it sends utf-16 positions whatever was negotiated).
    # copilot-lsp's init_options and settings, as its lsp/copilot_ls.lua sends them.
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=profile("neovim", ["utf-16"]),
            initialization_options={
                "editorInfo": {"name": "neovim", "version": "0.11.4"},
                "editorPluginInfo": {"name": "Github Copilot LSP for Neovim", "version": "0.0.1"},
            },
        )
    )
    lsp_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"nextEditSuggestions": {"enabled": True}})
    )
    yield
    await lsp_client.shutdown_session()


DOC_URI = "file:///tmp/copilot-test/shapes.py"
DOC = "def area(w, h):\n    return w * h\n\n\nprint(area(2, 3))\nx = area(4, 5)\n"


async def inline_edit(client: LanguageClient, params: dict) -> dict:
    answer = await asyncio.wait_for(
        asyncio.wrap_future(client.protocol.send_request("textDocument/copilotInlineEdit", params)),
        timeout=30,
    )
    return plain(answer)  # pygls' client reads an untyped answer into namedtuples


async def test_sidekick_and_copilot_lsp_requests_get_a_propagated_edit(client: LanguageClient):
    open_document(client, DOC, DOC_URI)
    # sidekick's BufEnter notification, exactly as it sends it.
    client.protocol.notify("textDocument/didFocus", {"textDocument": {"uri": DOC_URI}})
    # The user renames `area` in its definition: selects it and types the new name.
    change_document(client, DOC_URI, 2, (0, 4), (0, 8), "")
    for i, ch in enumerate("surface"):
        change_document(client, DOC_URI, 3 + i, (0, 4 + i), (0, 4 + i), ch)
    version = 2 + len("surface")
    # vim.lsp.util.make_position_params(0, enc) plus textDocument.version (both plugins);
    # newer sidekick adds context.triggerKind.
    params = {
        "textDocument": {"uri": DOC_URI, "version": version},
        "position": {"line": 0, "character": 11},
        "context": {"triggerKind": 2},
    }
    result = await inline_edit(client, params)
    (edit,) = result["edits"]
    assert edit["textDocument"] == {"uri": DOC_URI, "version": version}
    assert edit["range"] == {
        "start": {"line": 4, "character": 6},
        "end": {"line": 4, "character": 10},
    }
    assert edit["text"] == "surface"
    assert edit["command"]["command"] == "copilot.acceptedNextEdit"
    # copilot-lsp tells the server it showed it; the plugins run the command on apply.
    client.protocol.notify("textDocument/didShowInlineEdit", {"item": {"command": edit["command"]}})
    change_document(client, DOC_URI, version + 1, (4, 6), (4, 10), "surface")
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=edit["command"]["command"], arguments=edit["command"]["arguments"]
        )
    )
    # The accepted edit is the new last hunk: the next request offers the next use.
    params["textDocument"]["version"] = version + 1
    params["position"] = {"line": 4, "character": 13}
    (edit,) = (await inline_edit(client, params))["edits"]
    assert (edit["range"]["start"]["line"], edit["text"]) == (5, "surface")
    status = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="copilot.status", arguments=[])
    )
    metrics = status["nextEdits"]
    assert metrics["offered_propagation"] == 2
    assert metrics["shown"] == 1 and metrics["accepted"] == 1
    # Copilot's own init_options and settings were taken without complaint.
    errors = [m.message for m in client.messages if m.type == types.MessageType.Error]
    assert errors == []


async def test_inline_edit_for_an_old_version_is_empty_and_bad_params_are_errors(
    client: LanguageClient,
):
    open_document(client, DOC, DOC_URI)
    params = {
        "textDocument": {"uri": DOC_URI, "version": 99},
        "position": {"line": 0, "character": 0},
    }
    assert await inline_edit(client, params) == {"edits": []}
    for bad in (
        {"textDocument": {"uri": DOC_URI}},
        {"textDocument": {"uri": DOC_URI}, "position": {"line": 50, "character": 0}},
        {"textDocument": {"uri": "file:///not/open.py"}, "position": {"line": 0, "character": 0}},
    ):
        with pytest.raises(JsonRpcException) as info:
            await inline_edit(client, bad)
        assert info.value.code == -32602
    # The server is still there.
    assert (await inline_edit(client, params)) == {"edits": []}


# -- the real model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine():
    from pathlib import Path

    from copilot_server.engines.llama import LlamaEngine
    from copilot_server.engines.models import resolve_model_path

    settings = Settings().merged({"model": {"threads": 2, "n_gpu_layers": 0}})
    engine = LlamaEngine(Path(resolve_model_path(None)), settings.model)
    yield engine
    engine.close()


POINT = (
    "class Point:\n"
    "    def __init__(self, x, y, z):\n"
    "        self.x = x\n"
    "        self.y = y\n"
    "\n"
    "    def norm(self):\n"
    "        return (self.x ** 2 + self.y ** 2) ** 0.5\n"
)


def point_prompt(engine):  # noqa: ANN001, ANN201
    at = POINT.index(", z)")
    window = window_around(POINT, at, 7)
    hunk = Hunk(at, "", ", z", 0, 0)
    return window, build_prompt(
        engine, path="point.py", language="python", document=POINT, window=window, hunks=[hunk]
    )


@pytest.mark.model
def test_model_rewrite_of_a_short_window_stops_at_its_end_with_fewer_decode_calls(engine):
    window, prompt = point_prompt(engine)
    assert prompt.format == "chat"
    plain_run = run_rewrite(engine, prompt, threading.Event(), draft_tokens=0)
    drafted = run_rewrite(engine, prompt, threading.Event(), draft_tokens=16)
    for result in (plain_run, drafted):
        # Stopped by the window rule (fence or the window's last lines), not the cap.
        assert result.generation.stop_reason == "stopped"
        assert result.updated is not None
        assert result.updated.count("\n") >= window.text.count("\n") - 1
    # Speculation decodes the copied lines in a few batches: the same text, far fewer
    # model calls.
    assert drafted.generation.text == plain_run.generation.text
    assert drafted.decode_calls * 3 <= plain_run.decode_calls
    assert drafted.accepted > 0


@pytest.mark.model
def test_a_rewrite_leaves_the_completion_prompt_in_the_kv_cache(engine):
    completion_prompt = engine.tokenize("import json\n\n\ndef load_config(path):\n    ")
    no_stop = lambda text: False  # noqa: E731

    def complete():  # noqa: ANN202
        return engine.generate(
            completion_prompt, max_tokens=1, should_stop=no_stop, cancel=threading.Event()
        )

    complete()
    _, prompt = point_prompt(engine)
    run_rewrite(engine, prompt, threading.Event(), draft_tokens=16)
    # The next keystroke's completion reads one token, not its whole prompt again.
    assert complete().prompt_tokens_evaluated <= 1


# -- a real headless Neovim with our plugin --------------------------------------------------


@pytest.mark.nvim
def test_neovim_shows_jumps_to_and_applies_a_next_edit_in_one_undo_step(tmp_path, monkeypatch):
    from test_nvim import run_scenario

    monkeypatch.setenv("COPILOT_NVIM_SCENARIOS", "next_edit_scenarios.lua")
    r = run_scenario("rename_jump_apply", tmp_path, timeout=150)
    assert r["line1"] == "def surface(w, h):"
    # The preview: `area` struck on line 5, `surface` written inline after it, a sign.
    assert r["preview"]["deleted"] == [{"row": 4, "col": 6, "text": "area"}]
    assert r["preview"]["added"] == [{"row": 4, "col": 10, "text": "surface", "pos": "inline"}]
    assert r["preview"]["signs"] == [4]
    assert r["cursor_before"][0] == 1
    # Tab jumps to the edit (still shown), Tab again applies it in one undo step.
    assert r["cursor_after_jump"] == [5, 6]
    assert r["shown_after_jump"] is True
    assert r["lines_after_apply"][4] == "print(surface(2, 3))"
    assert r["undo_steps"] == 1
    # The next use follows; Esc dismisses it; one `u` takes back only the applied edit.
    assert r["preview_next"]["deleted"] == [{"row": 5, "col": 4, "text": "area"}]
    assert r["shown_after_esc"] is False
    assert r["lines_after_undo"][4] == "print(area(2, 3))"
    assert r["lines_after_undo"][0] == "def surface(w, h):"
    # Typing elsewhere dismisses a shown edit.
    assert r["shown_after_typing"] is False


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def model_client(lsp_client: LanguageClient):
    # The model source on (it is off by default), propagation off, a 7-line window.
    options = {"nextEdit": {"model": True, "propagation": False, "windowLines": 7}}
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=profile("neovim", ["utf-16"]), initialization_options=options
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.mark.model
async def test_sidekick_request_gets_an_edit_from_the_model(model_client: LanguageClient):
    uri = "file:///tmp/copilot-test/point.py"
    text = (
        "class Point:\n"
        "    def __init__(self, x, y):\n"
        "        self.x = x\n"
        "        self.y = y\n"
        "\n"
        "    def norm(self):\n"
        "        return (self.x ** 2 + self.y ** 2) ** 0.5\n"
    )
    open_document(model_client, text, uri)
    for _ in range(900):  # the model loads in the background
        status = await model_client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="copilot.status", arguments=[])
        )
        if status["state"] == "ready":
            break
        await asyncio.sleep(0.2)
    # The user adds a parameter `z`; the model should carry it into the class.
    change_document(model_client, uri, 2, (1, 27), (1, 27), ", z")
    params = {
        "textDocument": {"uri": uri, "version": 2},
        "position": {"line": 1, "character": 30},
    }
    answer = plain(
        await asyncio.wait_for(
            asyncio.wrap_future(
                model_client.protocol.send_request("textDocument/copilotInlineEdit", params)
            ),
            timeout=240,
        )
    )
    (edit,) = answer["edits"]
    assert edit["command"]["arguments"][0]["source"] == "model"
    assert 0 <= edit["range"]["start"]["line"] <= 6
    assert "z" in edit["text"]
    metrics = (
        await model_client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="copilot.status", arguments=[])
        )
    )["nextEdits"]
    assert metrics["model_calls"] == 1 and metrics["offered_model"] == 1
    # A completion request while a rewrite runs stops the rewrite: typing keeps the model.
    pending = model_client.protocol.send_request("textDocument/copilotInlineEdit", params)
    completion = await model_client.text_document_inline_completion_async(inline_params(uri, 6, 8))
    answer = plain(await asyncio.wait_for(asyncio.wrap_future(pending), timeout=240))
    assert answer == {"edits": []}
    assert completion is not None
    metrics = (
        await model_client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="copilot.status", arguments=[])
        )
    )["nextEdits"]
    assert metrics["model_cancelled"] == 1 and metrics["dropped"].get("cancelled") == 1
