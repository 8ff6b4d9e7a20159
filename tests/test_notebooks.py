"""A notebook cell's other cells as context (copilot/notebookContext): no model needed, the
token counts come from a word counter. The end-to-end path (VS Code extension, real server,
real model) is editors/vscode/test/activation.test.ts."""

from __future__ import annotations

from collections import namedtuple

from copilot_server.config import Settings
from copilot_server.context import Context
from copilot_server.context.notebooks import NotebookContexts, with_cells

CELL = "vscode-notebook-cell:/home/u/analysis.ipynb#W2sZmlsZQ%3D%3D"


def _context(**kwargs) -> Context:
    return Context(
        path=CELL,
        language="python",
        prefix="",
        line_prefix="x = ",
        line_suffix="",
        suffix="",
        **kwargs,
    )


def _words(text: str) -> int:
    return len(text.split())


def test_cells_above_and_below_become_the_first_snippets_cells_above_nearest():
    contexts = NotebookContexts()
    assert contexts.update(
        {
            "uri": CELL,
            "notebook": "file:///home/u/analysis.ipynb",
            "before": ["import pandas as pd", "df = pd.read_csv('x.csv')"],
            "after": ["df.plot()"],
        }
    )
    cells = contexts.get(CELL)
    assert cells is not None and cells.notebook == "analysis.ipynb"
    context = with_cells(_context(), cells, _words, Settings())
    kinds = [(s.kind, s.path, s.text) for s in context.snippets]
    assert kinds == [
        ("notebook", "analysis.ipynb", "df.plot()"),
        ("notebook", "analysis.ipynb", "import pandas as pd\n\ndf = pd.read_csv('x.csv')"),
    ]
    assert context.token_counts["notebook_before"] == 7


def test_cells_above_are_cut_from_the_top_to_the_snippet_budget():
    contexts = NotebookContexts()
    far = "\n".join(f"old_{i} = {i}" for i in range(100))
    contexts.update({"uri": CELL, "before": [far, "near = 1"], "after": []})
    settings = Settings().merged({"context": {"snippet_tokens": 12}})
    context = with_cells(_context(), contexts.get(CELL), _words, settings)
    (snippet,) = context.snippets
    assert snippet.text.endswith("near = 1") and "old_0 " not in snippet.text
    assert snippet.tokens <= 12


def test_the_builder_adds_cells_only_to_the_cell_they_were_sent_for():
    contexts = NotebookContexts()
    contexts.update({"uri": CELL, "before": ["a = 1"], "after": []})

    def inner(request, engine, settings):  # noqa: ANN001
        return _context()

    class Engine:
        def tokenize(self, text: str) -> list[int]:
            return list(range(_words(text)))

    Request = namedtuple("Request", "uri")
    build = contexts.wrap(inner)
    assert build(Request(CELL), Engine(), Settings()).snippets[0].text == "a = 1"
    assert build(Request("file:///other.py"), Engine(), Settings()).snippets == ()
    contexts.forget(CELL)
    assert build(Request(CELL), Engine(), Settings()).snippets == ()


def test_malformed_or_oversized_cells_are_ignored():
    contexts = NotebookContexts()
    assert not contexts.update(None)
    assert not contexts.update({"uri": 3})
    assert not contexts.update({"uri": CELL, "before": "not a list"})
    assert not contexts.update({"uri": CELL, "before": [1, 2]})
    assert not contexts.update({"uri": CELL, "before": ["x" * 300_000]})
    assert contexts.get(CELL) is None
    # pygls hands params of an unknown notification over as namedtuples.
    Params = namedtuple("Params", "uri before after")
    assert contexts.update(Params(CELL, ["b = 2"], []))
    assert contexts.get(CELL).before == "b = 2"
