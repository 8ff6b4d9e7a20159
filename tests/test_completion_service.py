"""Pieces of the completion path that need no model: selected-item handling, healing."""

from copilot_server.completion import CompletionRequest
from copilot_server.completion.service import CompletionService
from copilot_server.config import Settings
from copilot_server.engines.loader import EngineLoader
from copilot_server.prompts.whitespace import healed


def _service() -> CompletionService:
    return CompletionService(Settings(), EngineLoader(Settings()))


def _request(
    text: str, offset: int, selected: str | None, replace_start: int | None
) -> CompletionRequest:
    return CompletionRequest(
        "file:///a.py", "/a.py", "python", text, offset, False, selected, replace_start
    )


def test_suggestion_must_extend_the_selected_completion_item():
    text = "import os\nos.pa"
    service = _service()
    request = _request(text, len(text), "path.join", len(text) - 2)
    # The widget would insert "path.join" over "pa": ghost text must continue from there.
    assert service._honour_selected(request, "th.join(a, b)") == "th.join(a, b)"
    assert service._honour_selected(request, "th.exists(a)") == ""
    service.close()


def test_healing_removes_only_the_whitespace_the_user_typed():
    assert healed("        return x", "        ") == "return x"
    assert healed("    ", "        ") == ""
    assert healed("    return x", "        ") == "return x"
    assert healed("\n        y", "") == "\n        y"
