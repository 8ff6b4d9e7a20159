"""Chat-model output: fences, prose and a restated prefix around the code."""

from __future__ import annotations

import re

from ..syntax.text import indent_width
from .request import Seen, TrimRequest


def stop_at_fence(req: TrimRequest, seen: Seen) -> int | None:
    """A markdown fence closes the code block (chat models, instruct FIM builds)."""
    if req.language == "markdown":
        return None
    for index in range(0, len(seen.lines)):
        line = seen.lines[index]
        if line.lstrip().startswith("```") and (index > 0 or not req.line_prefix.strip()):
            return index
    return None


_PROSE_START = re.compile(r"^(\*\*|#{1,4} |[-*] [A-Z]|[A-Z][a-z]+('s)?[,:!.]? [a-zA-Z])")
_PROSE_LABEL = re.compile(r"^[A-Z][a-z]+( [a-z]+)?:$")  # "Explanation:", "Example usage:"


def looks_like_prose(line: str) -> bool:
    """A sentence, a markdown heading or bold label, not code."""
    text = line.strip()
    if _PROSE_LABEL.match(text):
        return True
    if not text or not _PROSE_START.match(text):
        return False
    if text.startswith(("**", "# ", "## ", "### ", "#### ")):
        return True
    words = text.split()
    if len(words) < 3:
        return False
    code_chars = sum(text.count(ch) for ch in "=(){}[];<>")
    wordy = sum(1 for w in words if w.strip(".,:;!?'\"`").isalpha())
    return code_chars <= 1 and wordy >= 0.7 * len(words) and text[-1] in ".:!?"


def stop_at_prose(req: TrimRequest, seen: Seen) -> int | None:
    """Chat models explain after the code: prose after a blank line ends the suggestion."""
    if not req.chat:
        return None
    for index in range(1, seen.closed):
        line = seen.lines[index]
        if not looks_like_prose(line) or indent_width(line) > 0:
            continue
        previous = seen.lines[index - 1]
        if not previous.strip():
            return index - 1
        if line.rstrip().endswith(":"):
            return index
    return None


def skip_lead_in(req: TrimRequest, text: str) -> str:
    """Drop what comes before the code: an opening fence, a chat model's "Here is…" line,
    a chat model's copy of the code before the cursor.

    Returns the text after it; while the lead-in is still being written, "".
    """
    if req.line_prefix.strip():
        return text
    lines = text.split("\n")
    index = 0
    if req.chat:
        while index < len(lines) - 1 and (
            looks_like_prose(lines[index]) or not lines[index].strip()
        ):
            index += 1
        if index and not lines[index].lstrip().startswith("```"):
            # Prose not followed by a fence: nothing to show before the fence appears.
            return "" if index == len(lines) - 1 else text
    if lines[index].lstrip().startswith("```"):
        if index == len(lines) - 1:
            return ""  # the fence line is still being written
        index += 1
    if req.chat:
        restated = _restated_lines(req, lines[index:])
        if restated is None:
            return ""  # still copying the prefix
        if restated:
            index += restated
            # The copy reached the cursor's line: the typed indentation is already there.
            if lines[index].startswith(req.line_prefix):
                lines[index] = lines[index][len(req.line_prefix) :]
    return "\n".join(lines[index:]) if index else text


def _restated_lines(req: TrimRequest, lines: list[str]) -> int | None:
    """How many of `lines` copy the code before the cursor up to the cursor's line (blank
    lines aside: models often drop or add them).

    0: they do not; None: they have so far (the copy is still being written).
    """
    before = [line.rstrip() for line in req.prefix.split("\n") if line.strip()]
    complete = [line.rstrip() for line in lines[:-1]]
    first = next((line for line in complete if line.strip()), "")
    if len(first.strip()) < 4:
        return 0
    for start in reversed(range(len(before))):
        if before[start] != first:
            continue
        wanted = before[start:]
        matched = 0
        for consumed, line in enumerate(complete, 1):
            if not line.strip():
                continue
            if line != wanted[matched]:
                break
            matched += 1
            if matched == len(wanted):
                return consumed
        else:
            return None
    return 0
