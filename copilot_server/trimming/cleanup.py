"""Final clean-up: trailing blanks, closers the line suffix already has."""

from __future__ import annotations

import re

from ..syntax.text import CLOSING_TO_OPENING, OPENING, strip_strings
from .request import TrimRequest, next_line_index


def tidy(req: TrimRequest, text: str, raw: str | None = None) -> str:
    """Final clean-up: trailing blanks, text the line suffix already has."""
    lines = text.split("\n")
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    if req.single_line:
        following = next_line_index(req, lines)
        lines = lines[: following + 1] if following is not None else lines[:1]
    text = "\n".join(lines).rstrip(" \t") if len(lines) > 1 else lines[0].rstrip()
    if not text.strip():
        return ""
    if req.line_suffix.strip() and "\n" not in text:
        # The model often re-emits the closing brackets already after the cursor.
        text = _drop_suffix_overlap(text, req.line_prefix, req.line_suffix)
    elif req.line_suffix.strip():
        # Multi-line before closers on the cursor's line ("{|}"): end with a line break so
        # they land on their own line, indented as the model wrote them or as the cursor's.
        indent = req.line_prefix[: len(req.line_prefix) - len(req.line_prefix.lstrip())]
        rest = raw[len(text) :] if raw is not None and raw.startswith(text) else ""
        match = re.match(r"[ \t]*\n([ \t]*)", rest)
        if match and rest[match.end() :].startswith(req.line_suffix.strip()[:1]):
            indent = match.group(1)
        text += "\n" + indent
    return text


def _balance(text: str) -> int:
    """Unmatched closing brackets plus unpaired quotes: 0 for a balanced line."""
    text = strip_strings(text)
    depth = bad = 0
    for ch in text:
        if ch in OPENING:
            depth += 1
        elif ch in CLOSING_TO_OPENING:
            if depth == 0:
                bad += 1
            else:
                depth -= 1
    return bad + sum(text.count(q) % 2 for q in "\"'`")


def _drop_suffix_overlap(text: str, line_prefix: str, line_suffix: str) -> str:
    """Remove the end of `text` that repeats the start of the line suffix ("x)" before ")").

    Brackets and quotes are removed only when keeping them would leave the line
    unbalanced; ";" and other text always.
    """
    target = line_suffix.rstrip()
    for size in range(min(len(text), len(target)), 0, -1):
        overlap = target[:size]
        if not text.endswith(overlap) or not overlap.strip():
            continue
        shorter = text[: len(text) - size]
        if set(overlap) & (set(CLOSING_TO_OPENING) | set("\"'`")):
            before = _balance(line_prefix + text + line_suffix)
            after = _balance(line_prefix + shorter + line_suffix)
            if after >= before:
                continue
        return shorter
    return text
