"""The first request where the cursor lands (a file just opened, a jump) gets the layout
FIM was trained on; typing after it still only appends to the prompt."""

from __future__ import annotations

from copilot_server.completions import LEAD_LINES, CompletionService, with_lead_lines
from copilot_server.config import Settings
from copilot_server.context import Context
from copilot_server.engines.loader import EngineLoader

PREFIX = "".join(f"line_{i} = {i}\n" for i in range(40))


def _context(prefix: str, line: str) -> Context:
    return Context("a.py", "python", prefix, line, "", "\nrest = 1\n")


def test_first_request_in_a_stretch_puts_every_line_before_the_suffix():
    service = CompletionService(Settings(), EngineLoader(Settings()))
    try:
        cursor = 37  # not a multiple of LEAD_LINES: the old layout moved 5 lines
        anchor = service._lead_anchor("file:///a.py", cursor)
        context = _context(PREFIX[: PREFIX.index("line_37")], "    x")
        assert with_lead_lines(context, cursor, anchor=anchor) is context
        # Typing two lines further: those lines go after the middle token (append-only).
        below = _context(PREFIX[: PREFIX.index("line_39")], "    y")
        anchor = service._lead_anchor("file:///a.py", cursor + 2)
        moved = with_lead_lines(below, cursor + 2, anchor=anchor)
        assert anchor == cursor
        assert moved.line_prefix == "line_37 = 37\nline_38 = 38\n    y"
        assert moved.prefix == context.prefix
    finally:
        service.close()


def test_leaving_the_stretch_or_closing_the_file_starts_a_new_one():
    service = CompletionService(Settings(), EngineLoader(Settings()))
    try:
        uri = "file:///a.py"
        assert service._lead_anchor(uri, 10) == 10
        assert service._lead_anchor(uri, 10 + LEAD_LINES - 1) == 10
        assert service._lead_anchor(uri, 10 + LEAD_LINES) == 10 + LEAD_LINES
        assert service._lead_anchor(uri, 3) == 3  # above it: a new stretch
        service.forget_document(uri)
        assert service._lead_anchor(uri, 9) == 9
    finally:
        service.close()
