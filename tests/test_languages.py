"""languageId / extension → grammar, and the grammars' query files, with the real wheels."""

from __future__ import annotations

import pytest

from copilot_server.syntax.languages import (
    QUERY_KINDS,
    SPECS,
    definition_patterns,
    grammar_for,
    language_id_for_path,
    parser_for,
    query_source,
    spec_for,
    top_level_forms,
    wheel_tags,
)


@pytest.mark.parametrize(
    ("language_id", "path", "grammar"),
    [
        ("python", None, "python"),
        ("javascript", None, "javascript"),
        ("javascriptreact", None, "javascript"),
        ("typescript", None, "typescript"),
        ("typescriptreact", None, "tsx"),
        ("go", None, "go"),
        ("rust", None, "rust"),
        ("java", None, "java"),
        ("c", None, "c"),
        ("cpp", None, "cpp"),
        # An editor that sends an unknown languageId still gets the file's grammar.
        ("plaintext", "/w/src/app.tsx", "tsx"),
        ("", "/w/lib/vec.hpp", "cpp"),
        ("", "/w/main.PY", "python"),
    ],
)
def test_language_ids_and_extensions_map_to_grammars(language_id, path, grammar):
    loaded = grammar_for(language_id, path)
    assert loaded is not None and loaded.name == grammar


def test_languages_without_grammar_get_none():
    assert grammar_for("markdown") is None
    assert grammar_for("plaintext", "/w/notes.txt") is None
    assert spec_for("lua", "/w/init.lua") is None
    assert parser_for("markdown") is None
    assert language_id_for_path("/w/x.rs") == "rust"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_query_file_compiles_for_its_grammar(spec):
    grammar = grammar_for(spec.language_ids[0])
    assert grammar is not None
    for kind in QUERY_KINDS:
        query = grammar.query(kind)
        assert query is not None, f"{spec.name}/{kind}.scm missing or broken"
        assert query.pattern_count > 0
    names = {
        grammar.query("definitions").capture_name(i)
        for i in range(grammar.query("definitions").capture_count)
    }
    assert "name" in names and any(n.startswith("definition.") for n in names)


def test_inherited_wheel_tags_keep_definitions_and_drop_references():
    source = query_source(spec_for("python"), "definitions")
    assert "@definition.function" in source and "@definition.class" in source
    assert "@reference" not in source
    ts_source = query_source(spec_for("typescript"), "definitions")
    # JavaScript's tags (functions, classes) plus TypeScript's (interfaces).
    assert "function_declaration" in ts_source and "interface_declaration" in ts_source


def test_top_level_forms_split_patterns_with_their_captures_and_predicates():
    text = wheel_tags("tree_sitter_javascript")
    forms = top_level_forms(text)
    assert len(forms) >= 10
    assert all(form[0] in "([" for form in forms)
    kept = definition_patterns(text)
    assert "@reference.call" not in kept and '"^(require)$"' not in kept
    # Strings with brackets and escaped quotes do not confuse the splitter.
    tricky = '(a (#match? @x "[(]\\"")) @definition.x\n; comment (\n(b) @reference.y'
    assert top_level_forms(tricky) == [
        '(a (#match? @x "[(]\\"")) @definition.x',
        "(b) @reference.y",
    ]
