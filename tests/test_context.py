"""The context engine with real tree-sitter grammars and a cheap stand-in tokenizer.

Token counts here come from a regex tokenizer (words, punctuation, runs of spaces): the
engine only needs *a* tokenizer, and the budgets logic is the same. The real model's
tokenizer is used in test_context_model.py.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from copilot_server.completion import CompletionRequest
from copilot_server.config import ContextSettings, Settings
from copilot_server.context import ALIGN_LINES, Context
from copilot_server.context.engine import REGION_LINES, ContextEngine, make_context_builder
from copilot_server.context.index import WorkspaceIndex
from copilot_server.context.windows import line_window_after, line_window_before, plain_context
from copilot_server.documents import DocumentStore


class RegexTokenizer:
    """Words, punctuation and whitespace runs: roughly a BPE's granularity on code."""

    def __init__(self) -> None:
        self.calls = 0

    def tokenize(self, text: str, *, special: bool = False) -> list[str]:
        self.calls += 1
        return re.findall(r"\w+|[^\w\s]|\s+", text)


def count(text: str) -> int:
    return len(RegexTokenizer().tokenize(text))


SETTINGS = Settings()


def big_python(functions: int = 80, body: int = 6) -> str:
    parts = ["import os\nimport json\nfrom pathlib import Path\n\n\n"]
    for i in range(functions):
        lines = "".join(f"    v{j} = x * {j} + {i}\n" for j in range(body))
        parts.append(f"def func_{i}(x):\n{lines}    return v0\n\n\n")
    return "".join(parts)


def request(
    doc_text: str, offset: int, uri: str = "file:///w/app.py", language: str = "python"
) -> CompletionRequest:
    return CompletionRequest(
        uri=uri, path=uri[len("file://") :], language=language, text=doc_text, offset=offset
    )


def type_text(store: DocumentStore, uri: str, offset: int, text: str):
    """Type `text` one character per didChange at `offset`; yield after each keystroke."""
    doc = store.get(uri)
    for ch in text:
        before = doc.text[:offset]
        line = before.count("\n")
        column = len(before) - (before.rfind("\n") + 1)
        store.change(uri, doc.version + 1, [((line, column, line, column), ch)], "utf-32")
        offset += 1
        yield offset


# -- windows -----------------------------------------------------------------------------


def test_prefix_window_is_whole_lines_within_budget_starting_on_an_aligned_line():
    text = big_python()
    cursor_line = 300
    line_start = sum(len(line) + 1 for line in text.split("\n")[:cursor_line])
    first, offset, tokens = line_window_before(
        text, line_start, cursor_line, 384, count, ALIGN_LINES
    )
    assert first % ALIGN_LINES == 0 and first < cursor_line
    window = text[offset:line_start]
    assert offset == 0 or text[offset - 1] == "\n"
    # Per-line counts add up to at least the whole window's count (tokens never merge
    # less across a line break), so the budget holds for the real count too.
    assert count(window) <= tokens <= 384
    # Only alignment shortened it: one aligned block more would not fit.
    unaligned, _off, _tok = line_window_before(text, line_start, cursor_line, 384, count, 1)
    assert first - ALIGN_LINES < unaligned <= first


def test_suffix_window_is_whole_lines_and_prefers_ending_at_a_blank_line():
    text = "x = 1\n" + "a = 1\nb = 2\n\nc = 3\nd = 4\ne = 5\n" * 10
    end, tokens = line_window_after(text, 5, 30, count)
    suffix = text[5:end]
    assert suffix.startswith("\n") and tokens <= 30
    assert text[end] == "\n" and text[end - 1] == "\n"  # stops after a blank line


def test_plain_context_still_works_for_callers_of_the_old_api():
    text = "a = 1\nb = 2\nc = "
    ctx = plain_context("/w/a.py", "python", text, len(text), ContextSettings(), count)
    assert (ctx.prefix, ctx.line_prefix, ctx.suffix) == ("a = 1\nb = 2\n", "c = ", "")


# -- stability: what consecutive keystrokes reuse ------------------------------------------


def test_typing_on_a_line_changes_only_the_line_part_of_the_context():
    text = big_python()
    store = DocumentStore()
    doc = store.open("file:///w/app.py", "python", 1, text)
    engine = RegexTokenizer()
    builder = ContextEngine(store)
    offset = text.index("    return v0\n", text.index("def func_40")) + len("    return v0\n")
    store.change(
        doc.uri,
        2,
        [((text[:offset].count("\n"), 0, text[:offset].count("\n"), 0), "    \n")],
        "utf-16",
    )
    offset += 4
    contexts: list[Context] = []
    for typed_to in type_text(store, doc.uri, offset, "result = func_3(x)"):
        contexts.append(builder(request(doc.text, typed_to, doc.uri), engine, SETTINGS))
    first = contexts[0]
    for ctx in contexts[1:]:
        assert ctx.snippets == first.snippets
        assert (ctx.prefix, ctx.suffix, ctx.line_suffix) == (
            first.prefix,
            first.suffix,
            first.line_suffix,
        )
    assert contexts[-1].line_prefix == "    result = func_3(x)"
    assert builder.stats.region_misses == 1 and builder.stats.region_hits == len(contexts) - 1
    assert builder.stats.fallbacks == 0
    # The tree was edited, never re-parsed from scratch.
    assert doc.syntax.full_parses == 1


def test_prefix_start_moves_at_most_once_per_aligned_block():
    text = big_python()
    builder = make_context_builder()
    engine = RegexTokenizer()
    lines = text.split("\n")
    starts = []
    for line in range(200, 264):
        offset = sum(len(x) + 1 for x in lines[:line])
        ctx = builder(request(text, offset), engine, SETTINGS)
        starts.append(text[:offset].count("\n") - ctx.prefix.count("\n"))
        assert ctx.token_counts["prefix"] <= SETTINGS.context.prefix_tokens
    assert all(start % ALIGN_LINES == 0 for start in starts)
    assert len(set(starts)) <= 64 // ALIGN_LINES + 1


def test_snippets_are_chosen_once_per_region():
    text = big_python()
    builder = ContextEngine()
    engine = RegexTokenizer()
    lines = text.split("\n")
    for line in range(REGION_LINES * 10, REGION_LINES * 12):
        builder(request(text, sum(len(x) + 1 for x in lines[:line])), engine, SETTINGS)
    assert builder.stats.region_misses == 2


# -- parts -------------------------------------------------------------------------------


def test_scope_headers_appear_only_once_the_window_no_longer_shows_them():
    body = "".join(f"        step_{i} = self.compute({i})\n" for i in range(120))
    text = f"import os\n\n\nclass Pipeline(Base):\n    def run(self, path):\n{body}        \n"
    builder = ContextEngine()
    engine = RegexTokenizer()
    deep = builder(request(text, len(text) - 1), engine, SETTINGS)
    scope = [s for s in deep.snippets if s.kind == "scope"]
    assert [s.text for s in scope] == ["class Pipeline(Base):\n    def run(self, path):"]
    assert scope[0].path == "/w/app.py" and deep.snippets[-1] is scope[0]  # last: nearest the code
    near_top = text.index("        step_3 =")
    shallow = builder(request(text, near_top), engine, SETTINGS)
    assert not [s for s in shallow.snippets if s.kind == "scope"]


def test_imports_once_scrolled_out_and_the_used_ones_first_when_over_budget():
    imports = "".join(f"from package.module_{i} import helper_{i}\n" for i in range(40))
    body = "".join(f"x{i} = {i}\n" for i in range(300))
    text = imports + "\n\n" + body + "value = helper_33(x1)\n"
    builder = ContextEngine()
    ctx = builder(request(text, len(text)), RegexTokenizer(), SETTINGS)
    (imports_snippet,) = [s for s in ctx.snippets if s.kind == "imports"]
    assert "from package.module_33 import helper_33" in imports_snippet.text
    assert imports_snippet.tokens <= SETTINGS.context.import_tokens
    assert ctx.snippets[0] is imports_snippet  # the most stable part comes first
    small = "import os\n\nx = os.getcwd()\n"
    assert not [
        s
        for s in builder(request(small, len(small)), RegexTokenizer(), SETTINGS).snippets
        if s.kind == "imports"
    ]


def test_definitions_come_from_this_file_other_open_files_and_the_workspace(tmp_path: Path):
    root = tmp_path / "ws"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "storage.py").write_text(
        "class Storage:\n    def save(self, key, value):\n        ...\n"
    )
    (root / "lib" / "storage.ts").write_text("export class Storage {\n  save(): void {}\n}\n")
    index = WorkspaceIndex([root], ContextSettings(), use_process=False)
    index.build()
    store = DocumentStore()
    helpers = "def normalize(text: str) -> str:\n    return text.strip().lower()\n"
    store.open((root / "helpers.py").as_uri(), "python", 1, helpers)
    filler = "".join(f"step_{i} = {i}\n" for i in range(200))
    text = (
        "def local_helper(a, b):\n    return a * b\n\n\n"
        + filler
        + "def visible_helper():\n    return 1\n\n\n"
        + "store = Storage()\nname = normalize(raw)\n"
        + "value = local_helper(2, 3) + visible_helper()\n"
    )
    uri = (root / "app.py").as_uri()
    store.open(uri, "python", 1, text)
    builder = ContextEngine(store, index)
    ctx = builder(
        CompletionRequest(
            uri=uri, path=str(root / "app.py"), language="python", text=text, offset=len(text)
        ),
        RegexTokenizer(),
        SETTINGS,
    )
    definitions = {s.path: s.text for s in ctx.snippets if s.kind == "definition"}
    assert (
        definitions["app.py"] == "def local_helper(a, b):\n    return a * b"
    )  # not visible_helper
    assert definitions["helpers.py"] == helpers.rstrip()
    assert definitions["lib/storage.py"].startswith("class Storage:")
    assert "lib/storage.ts" not in definitions  # another language family
    assert ctx.path == "app.py"
    assert (
        sum(s.tokens for s in ctx.snippets if s.kind == "definition")
        <= SETTINGS.context.definition_tokens
    )


def test_similar_snippets_come_from_the_most_similar_code_of_other_files():
    store = DocumentStore()
    unrelated = "".join(f"def colour_{i}(r, g, b):\n    return (r, g, b)\n\n" for i in range(30))
    related = (
        "".join(f"def pad_{i}():\n    pass\n\n" for i in range(20))
        + "def load_orders(session, customer_id):\n"
        "    orders = session.query(Order).filter(Order.customer_id == customer_id)\n"
        "    totals = [order.amount for order in orders]\n"
        "    return sum(totals)\n"
    )
    store.open("file:///w/colours.py", "python", 1, unrelated)
    store.open("file:///w/orders.py", "python", 1, related)
    store.open("file:///w/.env", "plaintext", 1, related)  # a secret: never shown
    text = (
        "def load_invoices(session, customer_id):\n"
        "    invoices = session.query(Invoice).filter(Invoice.customer_id == customer_id)\n"
        "    totals = [invoice.amount for invoice in invoices]\n"
    )
    store.open("file:///w/app.py", "python", 1, text)
    builder = ContextEngine(store)
    ctx = builder(request(text, len(text)), RegexTokenizer(), SETTINGS)
    similar = [s for s in ctx.snippets if s.kind == "similar"]
    assert similar and similar[-1].path == "/w/orders.py"
    assert "session.query(Order)" in similar[-1].text
    assert all(s.path not in ("/w/.env", "/w/app.py") for s in similar)
    assert sum(s.tokens for s in similar) <= SETTINGS.context.snippet_tokens


def test_a_language_without_grammar_gets_plain_windows_and_similar_snippets():
    store = DocumentStore()
    notes = "# Orders\n\nLoad the orders of a customer and sum their totals.\n" * 3
    store.open("file:///w/other.md", "markdown", 1, notes)
    text = "# Invoices\n\nLoad the invoices of a customer and sum their totals.\n"
    store.open("file:///w/notes.md", "markdown", 1, text)
    ctx = ContextEngine(store)(
        request(text, len(text), "file:///w/notes.md", "markdown"), RegexTokenizer(), SETTINGS
    )
    assert ctx.prefix == text and ctx.suffix == ""
    assert {s.kind for s in ctx.snippets} <= {"similar"}


@pytest.mark.parametrize("budget", [16, 40])
def test_every_part_stays_within_its_own_budget(budget):
    settings = Settings(
        context=ContextSettings(
            prefix_tokens=budget * 4,
            suffix_tokens=budget,
            scope_tokens=budget,
            import_tokens=budget,
            definition_tokens=budget * 2,
            snippet_tokens=budget * 2,
        )
    )
    text = big_python(functions=60, body=30)
    offset = text.index("    v20 =", text.index("def func_50"))
    ctx = ContextEngine()(request(text, offset), RegexTokenizer(), settings)
    cs = settings.context
    assert count(ctx.prefix) <= cs.prefix_tokens and count(ctx.suffix) <= cs.suffix_tokens
    limits = {
        "imports": cs.import_tokens,
        "definition": cs.definition_tokens,
        "similar": cs.snippet_tokens,
        "scope": cs.scope_tokens,
    }
    for kind, limit in limits.items():
        assert sum(count(s.text) for s in ctx.snippets if s.kind == kind) <= limit, kind


def test_a_call_from_another_thread_leaves_the_open_trees_alone():
    text = big_python()
    store = DocumentStore()
    doc = store.open("file:///w/app.py", "python", 1, text)
    builder = ContextEngine(store)
    engine = RegexTokenizer()
    on_loop = builder(request(doc.text, len(text) - 10), engine, SETTINGS)
    parses = doc.syntax.incremental_parses
    result: list[Context] = []
    worker = threading.Thread(
        target=lambda: result.append(builder(request(doc.text, len(text) - 10), engine, SETTINGS))
    )
    worker.start()
    worker.join()
    assert doc.syntax.incremental_parses == parses
    assert result[0].prefix == on_loop.prefix and result[0].snippets == on_loop.snippets


def test_a_failing_part_falls_back_to_plain_windows():
    class BrokenIndex:
        def lookup(self, name):
            raise OSError("disk gone")

        def display_path(self, path):
            return path

        def recent_files(self, limit=8):
            return []

    text = big_python() + "result = elsewhere_helper(1)\n"
    builder = ContextEngine(None, BrokenIndex())  # type: ignore[arg-type]
    ctx = builder(request(text, len(text)), RegexTokenizer(), SETTINGS)
    assert builder.stats.fallbacks == 1 and ctx.snippets == () and ctx.prefix


async def test_under_the_server_loop_requests_never_parse_and_the_tree_catches_up_when_idle():
    import asyncio

    from copilot_server.context.engine import IDLE_REPARSE_S

    text = big_python()
    store = DocumentStore()
    doc = store.open("file:///w/app.py", "python", 1, text)
    builder = ContextEngine(store)
    engine = RegexTokenizer()
    offset = text.index("    return v0\n", text.index("def func_70")) + len("    return v0\n")
    # Far from the first request's region, so the second request computes a new region.
    builder(request(doc.text, 200), engine, SETTINGS)
    for typed_to in type_text(store, doc.uri, offset, "    extra = func_2(x)\n"):
        offset = typed_to
    parses = doc.syntax.incremental_parses
    builder(request(doc.text, offset), engine, SETTINGS)
    assert builder.stats.region_misses == 2 and builder.stats.fallbacks == 0
    assert doc.syntax.stale and doc.syntax.incremental_parses == parses  # no parse on the request
    await asyncio.sleep(IDLE_REPARSE_S + 0.3)
    assert not doc.syntax.stale and builder.stats.idle_reparses == 1
    fresh = doc.syntax.grammar.new_parser().parse(doc.text.encode())
    assert str(doc.syntax.tree.root_node) == str(fresh.root_node)


# -- getting a newly opened document ready -----------------------------------------------


def test_a_newly_opened_document_is_read_ahead_so_its_first_request_counts_no_lines():
    text = big_python()
    store = DocumentStore()
    doc = store.open("file:///w/app.py", "python", 1, text)
    offset = text.index("def func_50")
    cold, cold_engine = ContextEngine(store), RegexTokenizer()
    cold_context = cold(request(doc.text, offset), cold_engine, SETTINGS)

    warm, warm_engine = ContextEngine(store), RegexTokenizer()
    warm.prepare(doc.uri, warm_engine)
    warm._count_ahead().shutdown(wait=True)  # the counts are taken on a background thread
    assert warm.stats.prepared == 1 and warm.stats.counted_ahead > 0
    chunks_read = warm._outlines[doc.uri].chunks_read
    calls = warm_engine.calls
    warm_context = warm(request(doc.text, offset), warm_engine, SETTINGS)
    # Same context; the definitions were not read again and the windows' lines were
    # all counted ahead (what is left is the snippets' own counts).
    assert warm_context == cold_context
    assert warm._outlines[doc.uri].chunks_read == chunks_read
    assert warm_engine.calls - calls <= cold_engine.calls // 10, (warm_engine.calls, calls)


async def test_under_the_server_loop_a_document_is_prepared_after_did_open_returns():
    import asyncio

    store = DocumentStore()
    doc = store.open("file:///w/app.py", "python", 1, big_python())
    builder, engine = ContextEngine(store), RegexTokenizer()
    builder.prepare_soon(doc.uri, engine)
    assert builder.stats.prepared == 0  # not inside the didOpen handler
    await asyncio.sleep(0)
    assert builder.stats.prepared == 1
    builder._count_ahead().shutdown(wait=True)
    assert builder.stats.counted_ahead > 0


def test_a_remote_model_s_tokenizer_is_not_called_ahead():
    from copilot_server.engines.remote import RemoteEngine

    class CountingRemote(RemoteEngine):
        def __init__(self) -> None:  # no server: only `tokenize` is looked at
            self.calls = 0

        def tokenize(self, text: str, *, special: bool = False) -> list[int]:
            self.calls += 1
            return [0]

    store = DocumentStore()
    doc = store.open("file:///w/app.py", "python", 1, big_python())
    builder, remote = ContextEngine(store), CountingRemote()
    builder.prepare(doc.uri, remote)
    assert builder.stats.prepared == 1 and builder._counting is None and remote.calls == 0


def test_counts_taken_ahead_are_kept_only_for_the_tokenizer_that_took_them():
    from copilot_server.engines.tokens import CachedTokenCounter

    first, second = RegexTokenizer(), RegexTokenizer()
    counter = CachedTokenCounter()
    counter.add(first, {"alpha beta\n": 4})
    assert counter.known(first, {"alpha beta\n", "gamma\n"}) == {"alpha beta\n"}
    counter.bind(first, first.tokenize)
    assert counter("alpha beta\n") == 4 and first.calls == 0
    counter.bind(second, second.tokenize)  # another model: its own counts
    assert counter.known(second, {"alpha beta\n"}) == set()
    counter.add(first, {"stale\n": 9})  # late counts of the previous model are dropped
    assert counter.known(second, {"stale\n"}) == set()


def test_chunks_cut_again_after_an_edit_match_chunks_cut_from_scratch():
    text = big_python()
    builder = ContextEngine()
    builder._chunks_of(("doc", 1), text)
    edited = text.replace("def func_40(x):", "def func_40(x, scale):", 1)
    again = builder._chunks_of(("doc", 2), edited)
    assert again == ContextEngine()._chunks_of(("doc", 2), edited)
