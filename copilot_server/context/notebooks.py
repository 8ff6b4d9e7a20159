"""A notebook's other cells as context for the cell being edited.

An editor syncs each notebook cell as its own text document (VS Code: a
`vscode-notebook-cell:` URI per cell), so the server alone cannot tell which cells belong
together or in what order. Before asking for a suggestion in a cell, the client sends
`copilot/notebookContext` `{uri, notebook, before: [cell text...], after: [...]}`: the
code cells above and below, in notebook order. They become two snippets, the cells above
nearest to the cursor (they define what the cell uses), the cells below within a quarter
of that budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from ..config import Settings
from ..engines.tokens import token_cache
from ..plain import plain
from .types import Context, Snippet
from .windows import window_after, window_before

if TYPE_CHECKING:
    from ..completion import CompletionRequest
    from ..completion.types import ContextBuilder
    from ..engines.base import Engine

log = logging.getLogger(__name__)

NOTEBOOK_CONTEXT = "copilot/notebookContext"

# Cells kept per notebook cell URI; an editor has few notebooks open.
MAX_CELLS_KEPT = 256
# Text accepted per message; the client sends the nearest cells first within about this.
MAX_CHARS = 200_000


@dataclass(frozen=True)
class NotebookCells:
    notebook: str  # the notebook's name, shown to the model as the snippets' path
    before: str  # code cells above the cell, in order, joined by blank lines
    after: str  # code cells below


def _cells(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    text = "\n\n".join(v.strip("\n") for v in value if v.strip())
    return text if len(text) <= MAX_CHARS else None


def _notebook_name(uri: str) -> str:
    path = unquote(urlparse(uri).path) or uri
    return PurePosixPath(path).name or path


class NotebookContexts:
    """The last `copilot/notebookContext` per cell, and the context builder that uses it."""

    def __init__(self) -> None:
        self._by_cell: dict[str, NotebookCells] = {}

    def update(self, params: Any) -> bool:
        """Keep the cells sent for one cell; malformed params are ignored (it is a hint)."""
        raw = plain(params)
        if not isinstance(raw, dict) or not isinstance(raw.get("uri"), str):
            log.debug("ignoring malformed %s", NOTEBOOK_CONTEXT)
            return False
        before, after = _cells(raw.get("before", [])), _cells(raw.get("after", []))
        if before is None or after is None:
            log.debug("ignoring %s with bad or oversized cells", NOTEBOOK_CONTEXT)
            return False
        notebook = raw.get("notebook") if isinstance(raw.get("notebook"), str) else raw["uri"]
        self._by_cell.pop(raw["uri"], None)
        self._by_cell[raw["uri"]] = NotebookCells(_notebook_name(notebook), before, after)
        while len(self._by_cell) > MAX_CELLS_KEPT:
            self._by_cell.pop(next(iter(self._by_cell)))
        return True

    def forget(self, uri: str) -> None:
        self._by_cell.pop(uri, None)

    def get(self, uri: str) -> NotebookCells | None:
        return self._by_cell.get(uri)

    def wrap(self, builder: ContextBuilder) -> ContextBuilder:
        """`builder`, plus the notebook's other cells for a cell that has them."""

        def build(request: CompletionRequest, engine: Engine, settings: Settings) -> Context:
            context = builder(request, engine, settings)
            cells = self._by_cell.get(request.uri)
            if cells is None:
                return context
            return with_cells(context, cells, token_cache(engine), settings)

        return build


def with_cells(
    context: Context, cells: NotebookCells, count: Callable[[str], int], settings: Settings
) -> Context:
    """The cells as the first snippets (stable while the cell is edited: KV reuse)."""
    budget = settings.context.snippet_tokens
    snippets: list[Snippet] = []
    counts = dict(context.token_counts)
    after = window_after(cells.after + "\n", budget // 4, count).rstrip("\n")
    if after.strip():
        snippets.append(Snippet("notebook", cells.notebook, after, count(after)))
        counts["notebook_after"] = snippets[-1].tokens
    before = window_before(cells.before + "\n", budget, count).rstrip("\n")
    if before.strip():
        snippets.append(Snippet("notebook", cells.notebook, before, count(before)))
        counts["notebook_before"] = snippets[-1].tokens
    if not snippets:
        return context
    return replace(context, snippets=(*snippets, *context.snippets), token_counts=counts)
