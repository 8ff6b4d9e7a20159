"""What the model should see around the cursor, within token budgets.

The cursor's line is split in two (`line_prefix`, `line_suffix`) so the prompt builder
can put the typed part of the line last: typing then only appends to the prompt and the
KV cache keeps everything before it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

TokenCounter = Callable[[str], int]
# The prefix window starts on a multiple of this many lines. A window that starts
# wherever the budget runs out would move by one line on every new line typed and change
# the first tokens of the prefix, forcing the model to re-read everything after them;
# aligned, it moves once every ALIGN_LINES lines (and is never over budget).
ALIGN_LINES = 16


@dataclass(frozen=True)
class Snippet:
    """A piece of other code shown to the model (imports, a definition, a similar chunk)."""

    kind: str  # "imports" | "scope" | "definition" | "similar"
    path: str
    text: str
    tokens: int = 0


@dataclass(frozen=True)
class Context:
    path: str
    language: str
    prefix: str  # whole lines before the cursor's line (window)
    line_prefix: str  # the cursor's line up to the cursor
    line_suffix: str  # the cursor's line after the cursor
    suffix: str  # whole lines after the cursor's line (window), starting with "\n"
    snippets: tuple[Snippet, ...] = field(default_factory=tuple)
    # Parts' token counts, for the preview and the logs.
    token_counts: dict[str, int] = field(default_factory=dict)

    @property
    def indent(self) -> str:
        line = self.line_prefix
        return line[: len(line) - len(line.lstrip(" \t"))]
