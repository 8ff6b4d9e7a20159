"""Explain and fix without the editor: region choice, minimal edits, the re-parse check and
the prose trimmer on real tree-sitter grammars; the headless `fix` with the real model."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from copilot_server.actions import (
    MAX_FIX_LINES,
    ProseTrimmer,
    Region,
    apply_edits,
    check_fix,
    explain_region,
    extract_code,
    fit_to_region,
    fix_region,
    region_edits,
    region_span,
)
from copilot_server.cli.actions import write_atomically
from copilot_server.prompts.chat import render_chat
from copilot_server.syntax.problems import syntax_problems

MISSING_COLON = "import os\n\n\ndef add(a, b)\n    return a + b\n\n\nprint(add(1, 2))\n"


def _region_text(text: str, region: Region) -> str:
    begin, end = region_span(text, region)
    return text[begin:end]


# -- syntax problems -----------------------------------------------------------------------


def test_missing_colon_is_a_syntax_problem_on_the_def_line():
    problems = syntax_problems("python", MISSING_COLON)
    assert problems and problems[0].line == 3
    assert "def add(a, b)" in problems[0].message


def test_valid_code_and_languages_without_grammar_have_no_problems():
    assert syntax_problems("python", "def add(a, b):\n    return a + b\n") == []
    assert syntax_problems("markdown", "def add(a, b)\n") == []


def test_missing_token_is_named():
    problems = syntax_problems("javascript", "function f() {\n  return g(1;\n}\n")
    assert problems and problems[0].line == 1


# -- regions -------------------------------------------------------------------------------


def test_fix_region_takes_a_header_with_its_body():
    region = fix_region("python", MISSING_COLON, 3, 3)
    assert region == Region(3, 4)


def test_fix_region_of_an_unclosed_bracket_is_the_broken_statement():
    text = "def f(x):\n    y = (x + 1\n    return y\n\n\ndef g():\n    pass\n"
    region = fix_region("python", text, 1, 1)
    assert region.start == 1 and region.end <= 2


def test_fix_region_stays_small_inside_a_long_function():
    body = "".join(f"    v{i} = {i}\n" for i in range(40))
    text = "def big():\n" + body + "    return v1 +\n" + body
    problem = syntax_problems("python", text)[0]
    region = fix_region("python", text, problem.line, problem.line)
    assert region.start <= problem.line <= region.end
    assert region.lines <= MAX_FIX_LINES


def test_fix_region_of_a_diagnostic_over_a_whole_function_is_capped():
    text = "def f():\n" + "".join(f"    x{i} = {i}\n" for i in range(60))
    region = fix_region("python", text, 0, 60)
    assert region.start == 0 and region.lines <= MAX_FIX_LINES


def test_explain_region_is_the_enclosing_function_with_its_decorator():
    text = "import x\n\n\n@cache\ndef foo(a):\n    b = a * 2\n    return b\n\n\nfoo(1)\n"
    region, name = explain_region("python", text, 5)
    assert (region, name) == (Region(3, 6), "foo")


def test_explain_region_prefers_the_innermost_method():
    text = "class A:\n    def m(self):\n        return 1\n\n    def n(self):\n        return 2\n"
    assert explain_region("python", text, 5) == (Region(4, 5), "n")


def test_explain_region_outside_definitions_is_the_statement():
    text = "x = 1\ny = [\n    1,\n    2,\n]\n"
    assert explain_region("python", text, 2) == (Region(1, 4), None)


# -- edits ---------------------------------------------------------------------------------


def test_missing_colon_fix_is_one_inserted_character():
    region = Region(3, 4)
    new = fit_to_region("def add(a, b):\n    return a + b", _region_text(MISSING_COLON, region))
    edits = region_edits(MISSING_COLON, region, new)
    assert len(edits) == 1
    after_paren = MISSING_COLON.index("def add(a, b)") + len("def add(a, b)")
    assert edits[0].start == edits[0].end == after_paren
    assert edits[0].new_text == ":"
    assert syntax_problems("python", apply_edits(MISSING_COLON, edits)) == []


def test_unchanged_lines_between_changes_are_not_touched():
    text = "a = 1\nb = 2\nc = 3\nd = 4\n"
    edits = region_edits(text, Region(0, 3), "a = 10\nb = 2\nc = 3\nd = 40\n")
    assert [(text[e.start : e.end], e.new_text) for e in edits] == [("", "0"), ("", "0")]
    assert apply_edits(text, edits) == "a = 10\nb = 2\nc = 3\nd = 40\n"


def test_edit_of_a_last_line_without_newline():
    text = "x = [1, 2"
    new = fit_to_region("x = [1, 2]\n", _region_text(text, Region(0, 0)))
    edits = region_edits(text, Region(0, 0), new)
    assert apply_edits(text, edits) == "x = [1, 2]"


def test_fit_to_region_restores_indentation_and_crlf():
    old = "    if x > 1\r\n        return 2\r\n"
    assert fit_to_region("if x > 1:\n    return 2", old) == "    if x > 1:\r\n        return 2\r\n"
    # A model that kept the original indentation is not indented twice.
    assert fit_to_region("    if x > 1:\n        return 2", old.replace("\r\n", "\n")) == (
        "    if x > 1:\n        return 2\n"
    )


def test_extract_code_takes_the_first_fenced_block():
    assert extract_code("Here:\n```python\ndef f():\n    pass\n```\nDone.") == "def f():\n    pass"
    assert extract_code("def f():\n    pass\n") == "def f():\n    pass"
    assert extract_code("```python\nx = 1\n") == "x = 1"  # cut off before the closing fence


def test_a_rewrite_cut_off_before_its_closing_fence_is_never_applied():
    from copilot_server.actions.fix import _cut_off

    assert _cut_off("```python\ndef f():\n    return", "max_tokens")
    assert _cut_off("```python\n" + "x = 1\n" * 40, "stopped")  # too long
    assert not _cut_off("```python\nx = 1\n```", "stopped")
    assert not _cut_off("x = 1", "eos") and _cut_off("x = 1", "max_tokens")


# -- the re-parse check ----------------------------------------------------------------------


def test_check_fix_accepts_a_clean_rewrite():
    fixed = MISSING_COLON.replace("def add(a, b)", "def add(a, b):")
    assert check_fix("python", MISSING_COLON, fixed, Region(3, 4), Region(3, 4)) is None


def test_check_fix_rejects_a_rewrite_that_leaves_the_error():
    still = MISSING_COLON.replace("def add(a, b)", "def add(a, b")
    reason = check_fix("python", MISSING_COLON, still, Region(3, 4), Region(3, 4))
    assert reason is not None and "still has a syntax error" in reason


def test_check_fix_rejects_a_rewrite_that_breaks_other_code():
    text = "x = 1\ny = 2\n"
    broken = "x = (1\ny = 2\n"
    assert check_fix("python", text, broken, Region(1, 1), Region(1, 1)) is not None


# -- prose trimming --------------------------------------------------------------------------


def _stream(trimmer: ProseTrimmer, text: str) -> str:
    for end in range(1, len(text) + 1):
        if trimmer.should_stop(text[:end]):
            return trimmer.finish(text[:end], truncated=False)
    return trimmer.finish(text, truncated=False)


def test_prose_stops_before_a_code_block():
    trimmer = ProseTrimmer("def f(x):\n    return x * 2\n")
    out = _stream(trimmer, "Doubles its input.\n```python\ndef f(x):\n    return x * 2\n```\n")
    assert out == "Doubles its input." and trimmer.fired == "stop_at_fence"


def test_prose_stops_when_it_echoes_a_line_of_the_code():
    trimmer = ProseTrimmer("total = compute_total(items)\n")
    out = _stream(trimmer, "Sums the items.\ntotal = compute_total(items)\nmore text")
    assert out == "Sums the items." and trimmer.fired == "stop_at_code_echo"


def test_prose_stops_at_a_repeated_sentence():
    trimmer = ProseTrimmer("x = 1\n", max_sentences=10)
    text = "It returns the sum of a and b. It returns the sum of a and b. Again"
    assert _stream(trimmer, text) == "It returns the sum of a and b."
    assert trimmer.fired == "stop_at_repeated_sentence"


def test_prose_is_one_paragraph_without_the_walk_through_intro():
    trimmer = ProseTrimmer("x = 1\n")
    text = (
        "### Summary\n\nChecks whether a word is a palindrome. Here is how it works:\n\n"
        "1. **Cleaning**: it lowercases the word.\n"
    )
    assert _stream(trimmer, text) == "### Summary\n\nChecks whether a word is a palindrome."
    assert trimmer.fired == "stop_at_second_paragraph"


def test_prose_stops_after_the_sentence_cap_and_ignores_list_markers():
    trimmer = ProseTrimmer("x = 1\n", max_sentences=2)
    text = "1. It parses e.g. numbers. It returns them. It also logs. More."
    assert _stream(trimmer, text) == "1. It parses e.g. numbers. It returns them."


def test_prose_cut_by_the_budget_ends_at_the_last_whole_sentence():
    trimmer = ProseTrimmer("x = 1\n")
    assert trimmer.finish("Adds two numbers. It then retu", truncated=True) == "Adds two numbers."


# -- chat template ------------------------------------------------------------------------


def test_render_chat_ends_with_the_assistant_turn():
    template = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    out = render_chat(template, [{"role": "user", "content": "hi"}])
    assert out == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def engine():
    from copilot_server.config import Settings
    from copilot_server.engines.loader import create_engine

    loaded = create_engine(Settings())
    yield loaded
    loaded.close()


@pytest.mark.model
def test_chat_prompt_uses_the_models_template_and_keeps_contents_plain(engine):
    from copilot_server.prompts.chat import chat_prompt_tokens

    tokens = chat_prompt_tokens(engine, [{"role": "user", "content": "x = '<|im_end|>'"}])
    im_start, im_end = (engine.tokenize(t, special=True)[0] for t in ("<|im_start|>", "<|im_end|>"))
    assert tokens.count(im_start) == 3  # system (the template's default), user, assistant
    assert tokens.count(im_end) == 2  # the one in the code stays text
    tail = [im_start, *engine.tokenize("assistant\n")]
    assert tokens[-len(tail) :] == tail  # ends by opening the assistant's turn


HELPERS = """import re
from collections import Counter


def normalize(text):
    return re.sub(r"[^a-z]", "", text.lower())


def word_counts(lines):
    counts = Counter()
    for line in lines:
        for word in line.split():
            counts[normalize(word)] += 1
    return counts


def top_words(lines, n=3):
    return [w for w, _ in word_counts(lines).most_common(n) if w]
"""


@pytest.mark.model
def test_explain_context_shows_the_helpers_the_region_uses_not_its_callers(engine):
    from copilot_server.actions import context_snippets
    from copilot_server.config import Settings
    from copilot_server.context.engine import make_context_builder

    region, name = explain_region("python", HELPERS, 11)
    assert name == "word_counts"
    helpers = context_snippets(
        make_context_builder(),
        engine,
        Settings(),
        uri="file:///tmp/helpers.py",
        path="/tmp/helpers.py",
        language="python",
        text=HELPERS,
        region=region,
    )
    assert "def normalize(text):" in helpers and "from collections import Counter" in helpers
    assert "def top_words" not in helpers and "def word_counts" not in helpers


@pytest.mark.model
def test_a_cancelled_fix_stops_before_decoding(engine):
    import threading

    from copilot_server.actions import compute_fix
    from copilot_server.config import Settings

    cancel = threading.Event()
    cancel.set()
    outcome = compute_fix(
        engine,
        Settings(),
        language="python",
        text=MISSING_COLON,
        first_line=3,
        last_line=3,
        message="syntax error",
        cancel=cancel,
    )
    assert outcome.reason == "cancelled" and outcome.tokens == 0 and not outcome.edits


# -- headless -------------------------------------------------------------------------------


def _cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "copilot_server", *args, "--log-level", "warning"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_fix_without_a_problem_or_message_says_what_to_pass(tmp_path: Path):
    path = tmp_path / "ok.py"
    path.write_text("x = 1\n")
    result = _cli("fix", str(path), "--line", "0")
    assert result.returncode == 1 and "--message" in result.stderr
    result = _cli("fix", str(path), "--line", "7")
    assert result.returncode == 1 and "outside" in result.stderr


def test_write_atomically_replaces_the_file_and_keeps_its_mode(tmp_path: Path):
    path = tmp_path / "script.py"
    path.write_text("old\n")
    os.chmod(path, 0o750)
    write_atomically(path, "new\n")
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o750
    assert [p.name for p in tmp_path.iterdir()] == ["script.py"]


@pytest.mark.model
def test_headless_fix_apply_repairs_the_missing_colon_and_touches_only_that_line(tmp_path: Path):
    path = tmp_path / "broken.py"
    path.write_text(MISSING_COLON)
    result = _cli("fix", str(path), "--line", "3", "--apply")
    assert result.returncode == 0, result.stderr
    assert "-def add(a, b)\n+def add(a, b):\n" in result.stdout
    fixed = path.read_text()
    assert syntax_problems("python", fixed) == []
    before_lines, after_lines = MISSING_COLON.split("\n"), fixed.split("\n")
    assert len(after_lines) == len(before_lines)
    changed = [i for i, (a, b) in enumerate(zip(before_lines, after_lines, strict=True)) if a != b]
    assert changed == [3]
