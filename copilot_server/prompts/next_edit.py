"""Next-edit prompts: recent hunks as original/updated blocks and the window to rewrite."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..documents.history import Hunk
from ..engines.base import Engine
from ..syntax.languages import fence_name
from .chat import chat_prompt_tokens

# Lines shown to the model: the cursor's line and about as many above as below. Sweep
# trains on fixed 21-line windows: the model then knows how many lines to write back.
WINDOW_LINES = 21
# Recent hunks shown, newest last, and at most this many lines of each side of one.
MAX_HUNKS = 3
MAX_HUNK_LINES = 12
# Definitions from the context engine, at most this many characters.
MAX_DEFINITION_CHARS = 1_200
# A rewrite that runs this many lines past the window's length is not a rewrite.
EXTRA_LINES = 8
SYSTEM = "You are a helpful coding assistant."
# Measured on the bench with Qwen2.5-Coder-0.5B-Instruct: stating the change as "this
# became that" and asking for it "where it still applies" gets edits where an abstract
# "predict the next edit" gets the window copied back unchanged.
INSTRUCTION = (
    "Make the edit that should follow in this code (for example, the same change where it "
    "still applies), and change nothing else:"
)
_SWEEP_NAME = re.compile(r"(?i)sweep.*next[-_ ]?edit|next[-_ ]?edit.*sweep")


@dataclass(frozen=True)
class Window:
    """Whole lines `[first_line, first_line + line_count)` of a document."""

    start: int
    end: int
    text: str
    first_line: int

    @property
    def line_count(self) -> int:
        return self.text.count("\n") + (0 if self.text.endswith("\n") else 1)


def window_around(text: str, cursor: int, lines: int = WINDOW_LINES) -> Window:
    """`lines` whole lines around the cursor's line (shifted inward at the file's ends)."""
    cursor = max(0, min(cursor, len(text)))
    n_lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    line = min(text.count("\n", 0, cursor), max(0, n_lines - 1))
    first = max(0, min(line - (lines - 1) // 2, n_lines - lines))
    last = min(n_lines, first + lines)
    start = _line_offset(text, first, 0, 0)
    end = _line_offset(text, last, first, start)
    return Window(start, end, text[start:end], first)


def _line_offset(text: str, line: int, from_line: int, from_offset: int) -> int:
    offset = from_offset
    for _ in range(line - from_line):
        nl = text.find("\n", offset)
        if nl < 0:
            return len(text)
        offset = nl + 1
    return offset


def is_next_edit_model(info: Any) -> bool:
    """A GGUF trained on Sweep's next-edit format (by its name, path or metadata)."""
    meta = getattr(info, "metadata", {}) or {}
    names = (
        getattr(info, "name", ""),
        getattr(info, "path", ""),
        meta.get("general.name", ""),
        meta.get("general.basename", ""),
        meta.get("general.finetune", ""),
    )
    return any(_SWEEP_NAME.search(str(name)) for name in names)


@dataclass
class RewritePrompt:
    tokens: list[int]
    lookup: list[int]  # the window's tokens: where prompt-lookup drafts come from
    window: Window
    format: str  # "sweep" | "chat"
    max_tokens: int
    stop_tokens: frozenset[int] = frozenset()
    window_tail: str = ""

    def __post_init__(self) -> None:
        self.window_tail = window_tail(self.window.text)

    def updated_window(self, generated: str, complete: bool) -> str | None:
        """The rewritten window from the model's output; None when it never finished."""
        body = generated
        if self.format == "chat":
            fence = closing_fence(body)
            if fence is None:
                if not complete:
                    return None
            else:
                body = body[:fence]
        elif not complete:
            return None
        want_newline = self.window.text.endswith("\n")
        if want_newline and not body.endswith("\n"):
            body += "\n"
        elif not want_newline and body.endswith("\n"):
            body = body[:-1]
        return body


def original_window(window: Window, hunks: list[Hunk]) -> str:
    """The window as it read before the recent hunks inside it were made."""
    text = window.text
    for hunk in sorted(hunks, key=lambda h: h.start, reverse=True):
        if hunk.start >= window.start and hunk.end <= window.end:
            at = hunk.start - window.start
            text = text[:at] + hunk.old + text[at + len(hunk.new) :]
    return text


def hunk_blocks(document: str, hunks: list[Hunk]) -> list[tuple[str, str]]:
    """(original, updated) whole-line blocks for the most recent hunks, oldest first."""
    blocks = []
    for hunk in hunks[-MAX_HUNKS:]:
        if hunk.end > len(document) or document[hunk.start : hunk.end] != hunk.new:
            continue
        line_start = document.rfind("\n", 0, hunk.start) + 1
        line_end = document.find("\n", hunk.end)
        line_end = len(document) if line_end < 0 else line_end
        updated = document[line_start:line_end]
        original = document[line_start : hunk.start] + hunk.old + document[hunk.end : line_end]
        blocks.append((_clip_lines(original), _clip_lines(updated)))
    return blocks


def build_prompt(
    engine: Engine,
    *,
    path: str,
    language: str,
    document: str,
    window: Window,
    hunks: list[Hunk],
    definitions: str = "",
    max_tokens: int = 512,
) -> RewritePrompt:
    blocks = hunk_blocks(document, hunks)
    definitions = definitions[:MAX_DEFINITION_CHARS]
    lookup = engine.tokenize(window.text)
    # The window once more, a few lines more if the model adds some, and the end marker.
    budget = min(max_tokens, len(lookup) + 16 * EXTRA_LINES // 2 + 8)
    if is_next_edit_model(engine.info):
        tokens, stops = _sweep_tokens(engine, path, window, hunks, blocks, definitions)
        return RewritePrompt(tokens, lookup, window, "sweep", budget, stops)
    tokens = _chat_tokens(engine, path, language, window, blocks, definitions)
    return RewritePrompt(tokens, lookup, window, "chat", budget)


def _sweep_tokens(
    engine: Engine,
    path: str,
    window: Window,
    hunks: list[Hunk],
    blocks: list[tuple[str, str]],
    definitions: str,
) -> tuple[list[int], frozenset[int]]:
    """Sweep's next-edit layout; the markers are special tokens, the code plain text (a
    file containing "<|file_sep|>" cannot forge a section)."""
    sep = engine.tokenize("<|file_sep|>", special=True)
    tokens: list[int] = []

    def section(header: str, body: str) -> None:
        tokens.extend(sep)
        tokens.extend(engine.tokenize(f"{header}\n{body}"))

    if definitions:
        section("definitions", definitions.rstrip("\n") + "\n")
    for original, updated in blocks:
        section(f"{path}.diff", f"original:\n{original}\nupdated:\n{updated}\n")
    section(f"original/{path}", original_window(window, hunks))
    section(f"current/{path}", window.text)
    tokens.extend(sep)
    tokens.extend(engine.tokenize(f"updated/{path}\n"))
    stops = set(sep[:1])
    for text in ("<|endoftext|>", "<|im_end|>"):
        found = engine.tokenize(text, special=True)
        if len(found) == 1:
            stops.add(found[0])
    return tokens, frozenset(stops)


def _chat_tokens(
    engine: Engine,
    path: str,
    language: str,
    window: Window,
    blocks: list[tuple[str, str]],
    definitions: str,
) -> list[int]:
    fence = fence_name(language or "")
    parts = []
    for original, updated in blocks:
        parts.append(
            f"I just changed this in {path}:\n```{fence}\n{original}\n```\n"
            f"to:\n```{fence}\n{updated}\n```"
        )
    if definitions:
        parts.append(f"Definitions used nearby:\n```{fence}\n{definitions.rstrip()}\n```")
    parts.append(f"{INSTRUCTION}\n```{fence}\n{window.text}```")
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "\n\n".join(parts)},
    ]
    # The answer's fence is already open: the first token is the window's first token.
    return chat_prompt_tokens(engine, messages) + engine.tokenize(f"```{fence}\n")


def window_tail(window: str) -> str:
    """The shortest run of the window's last whole lines with two non-blank lines that
    occurs once in it: seeing it written again means the rewrite reached the end."""
    lines = window.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        return ""  # the file's last line: the rewrite ends with the model's end marker
    for k in range(2, len(lines) + 1):
        tail = "".join(lines[-k:])
        if sum(1 for line in lines[-k:] if line.strip()) >= 2 and window.count(tail) == 1:
            return tail
    return ""


def closing_fence(text: str) -> int | None:
    if text.startswith("```"):
        return 0
    at = text.find("\n```")
    return None if at < 0 else at + 1


def _clip_lines(text: str) -> str:
    lines = text.split("\n")
    if len(lines) <= MAX_HUNK_LINES:
        return text
    return "\n".join(lines[: MAX_HUNK_LINES - 1] + ["..."])
