"""Trees kept in step with edits, and what the context engine reads from them."""

from __future__ import annotations

import random

import pytest

from copilot_server.documents import DocumentStore
from copilot_server.syntax import (
    Outline,
    SyntaxTree,
    find_definitions,
    find_imports,
    scope_chain,
    summarize,
)
from copilot_server.syntax.languages import grammar_for

PYTHON = '''import os
from typing import Any


class Foo(Base):
    """Foo."""

    x: int = 1

    def bar(self, a: int) -> int:
        """Bar it."""

        def inner():
            return 1

        total = a
        for i in range(a):
            total += i
        total *= 2
        return total

    def baz(self):
        return 2


def top(a, b):
    return a + b


LIMIT = 3
'''

SAMPLES = {
    "javascript": (
        'import fs from "fs";\nconst path = require("path");\n\nclass Greeter extends Base {\n'
        '  greet(name) {\n    const msg = "hi " + name;\n    return msg;\n  }\n}\n\n'
        "function helper(a, b) {\n  return a + b;\n}\n\nconst handler = (req) => {\n"
        "  return helper(1, 2);\n};\n"
    ),
    "typescript": (
        'import { x } from "./x";\n\ninterface Shape {\n  area(): number;\n}\n\n'
        "type Id = string;\n\n"
        "export class Circle implements Shape {\n  constructor(private r: number) {}\n"
        "  area(): number {\n    return Math.PI * this.r ** 2;\n  }\n}\n\n"
        "export function make(r: number): Circle {\n  return new Circle(r);\n}\n"
    ),
    "go": (
        'package main\n\nimport (\n\t"fmt"\n)\n\ntype Server struct {\n\tport int\n}\n\n'
        "func (s *Server) Start() error {\n\tfmt.Println(s.port)\n\treturn nil\n}\n\n"
        "func NewServer(port int) *Server {\n\treturn &Server{port: port}\n}\n"
    ),
    "rust": (
        "use std::collections::HashMap;\n\n"
        "pub struct Cache {\n    map: HashMap<String, i32>,\n}\n\n"
        "impl Cache {\n    pub fn get(&self, key: &str) -> Option<i32> {\n"
        "        self.map.get(key).copied()\n    }\n}\n\nfn helper(x: i32) -> i32 {\n    x * 2\n}\n"
    ),
    "java": (
        "package app;\n\nimport java.util.List;\n\npublic class Repo {\n    private int count;\n\n"
        "    public Repo() {}\n\n    public int size(List<String> items) {\n"
        "        return items.size();\n    }\n}\n"
    ),
    "c": (
        '#include <stdio.h>\n#include "util.h"\n\nstruct point {\n    int x;\n    int y;\n};\n\n'
        "int add(int a, int b);\n\nint add(int a, int b) {\n    return a + b;\n}\n\n"
        'static char *name(void) {\n    return "x";\n}\n'
    ),
    "cpp": (
        "#include <vector>\n\nnamespace geo {\n\nclass Shape {\npublic:\n"
        "    virtual double area() const;\n    void scale(double f) { factor *= f; }\nprivate:\n"
        "    double factor;\n};\n\ndouble Shape::area() const {\n    return factor * 2;\n}\n\n"
        "}  // namespace geo\n"
    ),
}

# language → (marker the cursor sits before, definitions, imports, scope headers)
EXPECTED = {
    "javascript": (
        "return msg",
        {"path", "Greeter", "greet", "helper", "handler"},
        ['import fs from "fs";', 'const path = require("path");'],
        ["class Greeter extends Base {", "  greet(name) {"],
    ),
    "typescript": (
        "return Math",
        {"Shape", "area", "Id", "Circle", "make"},
        ['import { x } from "./x";'],
        ["export class Circle implements Shape {", "  area(): number {"],
    ),
    "go": (
        "return nil",
        {"Server", "Start", "NewServer"},
        ["package main", 'import (\n\t"fmt"\n)'],
        ["func (s *Server) Start() error {"],
    ),
    "rust": (
        "self.map.get",
        {"Cache", "get", "helper"},
        ["use std::collections::HashMap;"],
        ["impl Cache {", "    pub fn get(&self, key: &str) -> Option<i32> {"],
    ),
    "java": (
        "return items",
        {"Repo", "count", "size"},
        ["package app;", "import java.util.List;"],
        ["public class Repo {", "    public int size(List<String> items) {"],
    ),
    "c": (
        "return a + b",
        {"point", "add", "name"},
        ["#include <stdio.h>", '#include "util.h"'],
        ["int add(int a, int b) {"],
    ),
    "cpp": (
        "return factor",
        {"Shape", "area", "scale"},
        ["#include <vector>"],
        ["namespace geo {", "double Shape::area() const {"],
    ),
}


def _fresh(grammar, text: str) -> str:
    return str(grammar.new_parser().parse(text.encode("utf-8")).root_node)


def _points_agree_with_bytes(tree: SyntaxTree) -> None:
    """Every node's (row, column) is where its byte offset lies in the current text."""
    source = tree.source
    cursor = tree.tree.walk()
    visited = 0
    while True:
        node = cursor.node
        start = node.start_byte
        row = source.count(b"\n", 0, start)
        column = start - (source.rfind(b"\n", 0, start) + 1)
        assert (node.start_point.row, node.start_point.column) == (row, column), node
        visited += 1
        if cursor.goto_first_child() or cursor.goto_next_sibling():
            continue
        while cursor.goto_parent():
            if cursor.goto_next_sibling():
                break
        else:
            break
    assert visited > 10


@pytest.mark.parametrize("language", ["python", *SAMPLES])
def test_random_edits_then_undo_give_the_tree_a_fresh_parse_gives(language):
    """Tree-sitter's own check: random edits (positions stay exact, valid states equal a
    fresh parse), then the edits undone in reverse give the original tree again.
    Broken intermediate states may recover from errors differently, so those are not
    compared node for node."""
    grammar = grammar_for(language)
    original = PYTHON if language == "python" else SAMPLES[language]
    text = original
    tree = SyntaxTree(grammar, text)
    rnd = random.Random(language)
    pieces = [
        "x",
        "é",
        "日本",
        "\n",
        "  ",
        "(",
        "}",
        "",
        "def q():\n    pass\n",
        "{ a; }\n",
        "\r\n",
    ]
    undo: list[tuple[int, int, str]] = []
    for step in range(60):
        start = rnd.randrange(len(text) + 1)
        end = min(len(text), start + rnd.randrange(5))
        piece = rnd.choice(pieces)
        new = text[:start] + piece + text[end:]
        undo.append((start, start + len(piece), text[start:end]))
        tree.edit(text, new, start, end, start + len(piece))
        text = new
        if step % 10 == 9:
            _points_agree_with_bytes(tree)
            fresh = grammar.new_parser().parse(text.encode("utf-8"))
            if not fresh.root_node.has_error:
                assert str(tree.tree.root_node) == str(fresh.root_node)
    for start, end, old in reversed(undo):
        new = text[:start] + old + text[end:]
        tree.edit(text, new, start, end, start + len(old))
        text = new
    assert text == original
    assert str(tree.tree.root_node) == _fresh(grammar, original)
    assert tree.full_parses == 1 and tree.incremental_parses == 7


def test_document_store_keeps_one_tree_edited_on_every_change():
    store = DocumentStore()
    doc = store.open("file:///w/a.py", "python", 1, PYTHON)
    syntax = doc.syntax
    assert isinstance(syntax, SyntaxTree)
    # Type "        total -= 1\n" after "total *= 2", one character per didChange.
    line = PYTHON.split("\n").index("        total *= 2") + 1
    for i, ch in enumerate("        total -= 1\n"):
        store.change(doc.uri, 2 + i, [((line, i, line, i), ch)], "utf-16")
    assert doc.syntax is syntax and syntax.edits == len("        total -= 1\n")
    assert syntax.full_parses == 1  # never re-parsed from scratch
    assert str(syntax.tree.root_node) == _fresh(syntax.grammar, doc.text)
    assert "total -= 1" in doc.text and syntax.incremental_parses == 1


def test_full_text_sync_is_applied_as_a_small_edit():
    store = DocumentStore()
    doc = store.open("file:///w/a.py", "python", 1, PYTHON)
    syntax = doc.syntax
    syntax.tree  # noqa: B018 - parse now
    changed = PYTHON.replace("return 2", "return 3")
    store.change(doc.uri, 2, [(None, changed)], "utf-16")
    assert syntax.full_parses == 1
    assert str(syntax.tree.root_node) == _fresh(syntax.grammar, changed)
    changed_ranges = syntax.tree.changed_ranges(syntax.grammar.new_parser().parse(PYTHON.encode()))
    assert len(changed_ranges) <= 1


def test_documents_without_grammar_or_too_large_have_no_tree():
    store = DocumentStore()
    assert store.open("file:///w/notes.md", "markdown", 1, "# hi\n").syntax is None
    assert store.open("file:///w/big.py", "python", 1, "x = 1\n" * 400_000).syntax is None


def test_update_by_diff_matches_a_fresh_parse():
    grammar = grammar_for("python")
    tree = SyntaxTree(grammar, PYTHON)
    for new in (
        PYTHON.replace("baz", "qux"),
        PYTHON + "\ndef end():\n    pass\n",
        "x = 1\n",
        PYTHON,
    ):
        tree.update(new)
        assert str(tree.tree.root_node) == _fresh(grammar, new)


def test_byte_offsets_follow_non_ascii_text():
    grammar = grammar_for("python")
    text = 'name = "日本"\nvalue = 1\n'
    tree = SyntaxTree(grammar, text)
    offset = text.index("value")
    assert tree.byte_offset(offset) == len(text[:offset].encode("utf-8"))
    node = tree.tree.root_node.descendant_for_byte_range(
        tree.byte_offset(offset), tree.byte_offset(offset)
    )
    assert node.text == b"value"


def test_python_definitions_leave_out_local_helpers():
    grammar = grammar_for("python")
    tree = SyntaxTree(grammar, PYTHON)
    found = [(d.name, d.kind) for d in find_definitions(grammar, tree.tree)]
    assert found == [
        ("Foo", "class"),
        ("bar", "function"),
        ("baz", "function"),
        ("top", "function"),
        ("LIMIT", "constant"),
    ]
    nested = [d.name for d in find_definitions(grammar, tree.tree, nested=True)]
    assert "inner" in nested


def test_long_definitions_are_summarised_short_ones_shown_whole():
    grammar = grammar_for("python")
    tree = SyntaxTree(grammar, PYTHON)
    by_name = {d.name: d for d in find_definitions(grammar, tree.tree)}
    foo = summarize(by_name["Foo"].node, tree.source, grammar, "class")
    assert foo == (
        "class Foo(Base):\n    x: int = 1\n"
        "    def bar(self, a: int) -> int: ...\n    def baz(self): ..."
    )
    bar = summarize(by_name["bar"].node, tree.source, grammar, "function")
    assert bar == 'def bar(self, a: int) -> int:\n    """Bar it."""\n    ...'
    assert (
        summarize(by_name["top"].node, tree.source, grammar, "function")
        == "def top(a, b):\n    return a + b"
    )


def test_brace_language_summary_elides_the_body():
    grammar = grammar_for("go")
    body = "\n".join(f"\tx{i} := {i}" for i in range(20))
    text = f"package p\n\nfunc Long(a int, b string) (int, error) {{\n{body}\n\treturn 0, nil\n}}\n"
    tree = SyntaxTree(grammar, text)
    (found,) = find_definitions(grammar, tree.tree)
    assert summarize(found.node, tree.source, grammar, found.kind) == (
        "func Long(a int, b string) (int, error) { ... }"
    )


@pytest.mark.parametrize("language", list(SAMPLES))
def test_definitions_imports_and_scopes_per_language(language):
    grammar = grammar_for(language)
    text = SAMPLES[language]
    marker, names, imports, scopes = EXPECTED[language]
    tree = SyntaxTree(grammar, text)
    assert {d.name for d in find_definitions(grammar, tree.tree)} >= names
    assert [b.text for b in find_imports(grammar, tree.tree, tree.source)] == imports
    cursor = tree.byte_offset(text.index(marker))
    chain = scope_chain(grammar, tree.tree, tree.source, cursor, 8)
    assert [s.header for s in chain] == scopes


def test_python_scope_chain_follows_indentation_on_blank_lines():
    grammar = grammar_for("python")
    tree = SyntaxTree(grammar, PYTHON)
    # A blank line after `return total`: still inside bar when indented, else not.
    after = PYTHON.index("        return total\n") + len("        return total\n")

    def headers(indent: int) -> list[str]:
        return [s.header for s in scope_chain(grammar, tree.tree, tree.source, after, indent)]

    assert headers(8) == ["class Foo(Base):", "    def bar(self, a: int) -> int:"]
    assert headers(4) == ["class Foo(Base):"]
    assert headers(0) == []
    assert scope_chain(grammar, tree.tree, tree.source, 0, 0) == []


def test_scope_chain_at_the_end_of_unclosed_blocks():
    grammar = grammar_for("javascript")
    text = "function outer(a) {\n  if (a) {\n    const b = 1;\n    "
    tree = SyntaxTree(grammar, text)
    chain = scope_chain(grammar, tree.tree, tree.source, len(text), 4)
    assert [s.header for s in chain] == ["function outer(a) {"]
    closed = text + "\n  }\n}\n"
    tree.update(closed)
    chain = scope_chain(grammar, tree.tree, tree.source, len(text), 4)
    assert [s.header for s in chain] == ["function outer(a) {"]
    # After the closing brace the cursor is outside again.
    assert scope_chain(grammar, tree.tree, tree.source, len(closed), 0) == []


def _outline_rows(by_name) -> dict[str, list[int]]:
    return {name: [row for row, _entry in entries] for name, entries in by_name.items()}


def test_outline_rereads_only_the_chunk_that_changed_and_matches_a_fresh_read():
    grammar = grammar_for("python")
    text = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(300))
    store = DocumentStore()
    doc = store.open("file:///w/a.py", "python", 1, text)
    outline = Outline(grammar)
    first = outline.refresh(doc.syntax.tree, doc.syntax.source)
    assert outline.chunks_read == 300 and first["f7"][0][0] == 28
    # A new function typed at the top shifts every row; only the new chunk is read.
    store.change(doc.uri, 2, [((0, 0, 0, 0), "def added(y):\n    return y\n\n\n")], "utf-16")
    second = outline.refresh(doc.syntax.tree, doc.syntax.source)
    assert outline.chunks_read == 301
    fresh = Outline(grammar).refresh(
        grammar.new_parser().parse(doc.text.encode()), doc.text.encode()
    )
    assert _outline_rows(second) == _outline_rows(fresh)
    assert second["f7"][0][0] == 32 and second["added"][0][1].text == "def added(y):\n    return y"


def test_outline_splits_a_large_class_into_members_but_never_a_function():
    grammar = grammar_for("java")
    methods = "".join(
        f"    public int m{i}(int x) {{\n        int y = x + {i};\n        return y;\n    }}\n\n"
        for i in range(60)
    )
    text = f"package p;\n\npublic class Big {{\n{methods}}}\n"
    tree = SyntaxTree(grammar, text)
    outline = Outline(grammar)
    by_name = outline.refresh(tree.tree, tree.source)
    assert outline.chunks_read == 62  # package, the class header, 60 methods
    assert by_name["Big"][0][1].text.startswith(
        "public class Big {\n    public int m0(int x) { ... }"
    )
    edited = text.replace("int y = x + 30;", "int y = x * 30;")
    tree.update(edited)
    outline.refresh(tree.tree, tree.source)
    assert outline.chunks_read == 64  # the edited method and the class header
    py = grammar_for("python")
    body = "".join(f"    def local_{i}():\n        return {i}\n" for i in range(80))
    long_function = f"def outer():\n{body}    return 0\n"
    names = Outline(py).refresh(
        py.new_parser().parse(long_function.encode()), long_function.encode()
    )
    assert set(names) == {"outer"}  # its local helpers are not definitions to look up
