"""LSP languageId / file extension → language, and each language's tree-sitter grammar.

A grammar comes from its own wheel (tree-sitter-python, …); the queries the context
engine runs are data in `grammars/<language>/`:

- `definitions.scm`: `@definition.<kind>` nodes with their `@name` (what a name means).
  A first line `; inherit-tags: tree_sitter_x …` prepends the definition patterns of
  those wheels' own `queries/tags.scm` (their `@reference.*` patterns are dropped).
- `scopes.scm`: `@scope` nodes (classes, functions) whose header is shown when the
  prefix window no longer shows it; `@body` marks where the header ends.
- `imports.scm`: `@import` statements.

A language without a grammar (or whose wheel is missing) gets `None` everywhere and the
context engine falls back to plain text windows.
"""

from __future__ import annotations

import importlib
import keyword
import logging
import re
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


DEFINITION_NODE_TYPE = re.compile(
    r"(function|method|class|struct|enum|interface|trait|impl|constructor|type)_"
    r"(definition|declaration|item|specifier)$"
)
DECLARATION_WORDS = frozenset(
    "type pub async export default abstract final interface trait impl extern inline "
    "virtual override sealed data object module namespace unsafe const mut".split()
)
IMPORT_WORDS = frozenset("import from as use require include using package mod".split())
IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# A name is worth looking up when it is called, or is a type/class (capitalised).
LANGUAGE_FAMILY = {
    "python": "python",
    "javascript": "js",
    "typescript": "js",
    "tsx": "js",
    "go": "go",
    "rust": "rust",
    "java": "java",
    "c": "c",
    "cpp": "c",
}
# File extension → LSP languageId (what an editor would send for that file).
EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascriptreact",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "typescriptreact",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".c++": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".ipp": "cpp",
    ".inl": "cpp",
    ".lua": "lua",
    ".rb": "ruby",
    ".sh": "shellscript",
    ".md": "markdown",
}


@dataclass(frozen=True)
class LanguageSpec:
    """How to load one grammar and what its code looks like."""

    name: str  # grammar name; also the folder under grammars/ unless `queries` says otherwise
    module: str  # the grammar wheel's module
    function: str  # the module's function returning the language pointer
    language_ids: tuple[str, ...]  # LSP languageIds served by this grammar
    queries: str = ""  # grammars/ folder holding the queries ("" = `name`)
    # Blocks are delimited by indentation (Python) rather than braces: a header ends with
    # ":" and an elided body is written "...".
    indented: bool = False
    line_comment: str = "//"


SPECS: tuple[LanguageSpec, ...] = (
    LanguageSpec(
        "python", "tree_sitter_python", "language", ("python",), indented=True, line_comment="#"
    ),
    LanguageSpec(
        "javascript", "tree_sitter_javascript", "language", ("javascript", "javascriptreact", "jsx")
    ),
    LanguageSpec("typescript", "tree_sitter_typescript", "language_typescript", ("typescript",)),
    LanguageSpec(
        "tsx",
        "tree_sitter_typescript",
        "language_tsx",
        ("typescriptreact", "tsx"),
        queries="typescript",
    ),
    LanguageSpec("go", "tree_sitter_go", "language", ("go",)),
    LanguageSpec("rust", "tree_sitter_rust", "language", ("rust",)),
    LanguageSpec("java", "tree_sitter_java", "language", ("java",)),
    LanguageSpec("c", "tree_sitter_c", "language", ("c",)),
    LanguageSpec("cpp", "tree_sitter_cpp", "language", ("cpp", "c++", "cuda-cpp")),
)
_BY_LANGUAGE_ID: dict[str, LanguageSpec] = {
    lid: spec for spec in SPECS for lid in spec.language_ids
}
_BY_NAME: dict[str, LanguageSpec] = {spec.name: spec for spec in SPECS}


def language_id_for_path(path: str) -> str | None:
    return EXTENSIONS.get(Path(path).suffix.lower())


def spec_for(language_id: str, path: str | None = None) -> LanguageSpec | None:
    """The grammar spec for an LSP languageId, else for the file's extension."""
    spec = _BY_LANGUAGE_ID.get(language_id) or _BY_NAME.get(language_id)
    if spec is None and path:
        by_ext = language_id_for_path(path)
        spec = _BY_LANGUAGE_ID.get(by_ext) if by_ext else None
    return spec


class Grammar:
    """A loaded tree-sitter language with its compiled queries (shared, thread-safe).

    `Language` and `Query` objects are immutable and may be shared between threads;
    parsers and query cursors are not, so `new_parser()` hands out a fresh parser
    (`syntax.tree.parser` keeps one per thread).
    """

    def __init__(self, spec: LanguageSpec, language: Any) -> None:
        self.spec = spec
        self.name = spec.name
        self.language = language
        self._queries: dict[str, Any] = {}
        self._lock = threading.Lock()

    def new_parser(self) -> Any:
        from tree_sitter import Parser

        return Parser(self.language)

    def warm(self) -> None:
        """Compile every query now (~10 ms each), e.g. when a document opens, so the
        first completion does not pay for it."""
        for kind in QUERY_KINDS:
            self.query(kind)

    def query(self, kind: str) -> Any | None:
        """The compiled `definitions` / `scopes` / `imports` query, or None."""
        with self._lock:
            if kind not in self._queries:
                self._queries[kind] = self._compile(kind)
            return self._queries[kind]

    def _compile(self, kind: str) -> Any | None:
        from tree_sitter import Query

        source = query_source(self.spec, kind)
        if not source.strip():
            return None
        try:
            return Query(self.language, source)
        except Exception as exc:  # a broken query file must not take the server down
            log.error(
                "grammars/%s/%s.scm does not compile: %s", self.spec.queries or self.name, kind, exc
            )
            return None


QUERY_KINDS = ("definitions", "scopes", "imports")
_GRAMMARS: dict[str, Grammar | None] = {}
_GRAMMARS_LOCK = threading.Lock()


def grammar_for(language_id: str, path: str | None = None) -> Grammar | None:
    """The grammar for an LSP languageId (or the path's extension); None = plain text."""
    spec = spec_for(language_id, path)
    if spec is None:
        return None
    with _GRAMMARS_LOCK:
        if spec.name not in _GRAMMARS:
            _GRAMMARS[spec.name] = _load(spec)
        return _GRAMMARS[spec.name]


def _load(spec: LanguageSpec) -> Grammar | None:
    from tree_sitter import Language

    try:
        module = importlib.import_module(spec.module)
        return Grammar(spec, Language(getattr(module, spec.function)()))
    except (ImportError, AttributeError, ValueError) as exc:
        log.warning("no tree-sitter grammar for %s (%s): plain text context only", spec.name, exc)
        return None


def parser_for(language_id: str):  # -> tree_sitter.Parser | None
    """A tree-sitter parser for an LSP languageId, or None (plain-text fallback)."""
    grammar = grammar_for(language_id)
    return grammar.new_parser() if grammar is not None else None


# -- query files ---------------------------------------------------------------------------

_INHERIT = "; inherit-tags:"
# A language whose grammar extends another's (TypeScript JavaScript's, C++ C's) takes that
# language's query of the same kind first and adds its own patterns, instead of a copy.
_INHERIT_QUERIES = "; inherits:"


def query_source(spec: LanguageSpec, kind: str) -> str:
    """The text of grammars/<language>/<kind>.scm with inherited queries and wheel tags
    expanded."""
    return _query_text(spec.queries or spec.name, kind)


def _query_text(folder_name: str, kind: str) -> str:
    path = resources.files("copilot_server.syntax") / "grammars" / folder_name / f"{kind}.scm"
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    inherited: list[str] = []
    for line in text.splitlines():
        if line.startswith(_INHERIT_QUERIES):
            for language in line[len(_INHERIT_QUERIES) :].split():
                inherited.append(_query_text(language, kind))
        elif line.startswith(_INHERIT):
            for module in line[len(_INHERIT) :].split():
                inherited.append(definition_patterns(wheel_tags(module)))
    return "\n".join([*inherited, text])


def wheel_tags(module: str) -> str:
    """A grammar wheel's own queries/tags.scm ("" when the wheel ships none)."""
    try:
        path = resources.files(module) / "queries" / "tags.scm"
        return path.read_text(encoding="utf-8") if path.is_file() else ""
    except (ModuleNotFoundError, FileNotFoundError):
        return ""


def definition_patterns(source: str) -> str:
    """The top-level patterns of a tags.scm that capture a `@definition.*`."""
    return "\n\n".join(form for form in top_level_forms(source) if "@definition." in form)


def top_level_forms(source: str) -> list[str]:
    """Split a query file into its top-level patterns (with their trailing captures)."""
    forms: list[str] = []
    current: list[str] = []
    depth = 0
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch == ";":  # comment to end of line
            end = source.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch == '"':  # string literal with escapes
            j = i + 1
            while j < n and source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            current.append(source[i : j + 1])
            i = j + 1
            continue
        if ch in "([":
            if depth == 0 and "".join(current).strip():
                forms.append("".join(current).strip())
                current = []
            depth += 1
        elif ch in ")]":
            depth -= 1
        current.append(ch)
        i += 1
    if "".join(current).strip():
        forms.append("".join(current).strip())
    return forms


# Words never worth a definition look-up or a similarity match (keywords of the supported
# languages and the most common builtins): they match everything and mean nothing.
KEYWORDS: frozenset[str] = frozenset(
    """
    if else for while return break continue true false null none nil self this new delete
    class struct enum import from as in is not and or def fn func function var let const
    static public private protected void int float double char bool string str list dict
    set tuple len range print println printf super try catch except finally raise throw
    throws with yield async await lambda pass match case switch default do goto package use
    mod impl trait pub mut type interface extends implements namespace template typename
    typedef sizeof auto unsigned signed long short byte final abstract override virtual
    inline extern include define ifdef ifndef endif elif undefined typeof instanceof export
    require module go chan map select defer where loop ref move crate unsafe dyn box vec
    some ok err option result
    """.split()
)
# Markdown fence names where they differ from the LSP languageId.
FENCE_NAMES = {"typescriptreact": "tsx", "javascriptreact": "jsx", "shellscript": "sh"}


def fence_name(language_id: str) -> str:
    """The name a Markdown code fence gives the language (the id itself by default)."""
    return FENCE_NAMES.get(language_id, language_id)


# Node types of the grammars, as the readers of syntax/ and actions/ use them:
# a definition the grammar wraps (Python's decorators);
DECORATED_DEFINITION = "decorated_definition"
# declarations that wrap a definition (`const f = () => …`, `type T struct`, templates);
WRAPPER_NODES = frozenset(
    {"lexical_declaration", "variable_declaration", "type_declaration", "template_declaration"}
)
# node types that hold members (a body whose children end so is a container);
MEMBER_NODE_SUFFIXES = ("_definition", "_declaration", "_item", "_signature", "_specifier")
# a Python docstring: an expression statement holding just a string.
DOCSTRING_STATEMENT, DOCSTRING_NODE = "expression_statement", "string"
# Definition kinds of the queries' captures (`@definition.function`, …).
FUNCTION_KINDS = frozenset({"function", "method"})
CLASS_KINDS = frozenset({"class", "interface", "struct", "enum", "trait", "module", "type"})
# A Go method's header starts with its receiver: `func (s *S) Name(`.
GO_METHOD_PREFIX = "func ("
# Words that say nothing about *where* a change belongs (next-edit propagation: `True` →
# `False` must not flip every boolean in the file): Python's keywords plus the common ones
# of the other languages. Not KEYWORDS, on purpose: literals and type names are here too.
KEYWORDS_AND_LITERALS = frozenset(keyword.kwlist) | frozenset(
    """true false null nil undefined self this super new return const let var function fn
    func def int str bool float string void char long double auto static public private
    protected final class struct enum impl pub mut use import from package type interface
    if else for while do switch case break continue try catch throw throws async await
    yield in of is not and or err ok none some""".split()
)
# Words that open a definition, in the languages propagation reads.
DEFINITION_WORDS = ("def", "function", "fn", "func", "class", "struct")
LINE_COMMENTS = {
    "python": "#",
    "ruby": "#",
    "shellscript": "#",
    "lua": "--",
}
DEFAULT_LINE_COMMENT = "//"
COMMENT_STARTS = ("#", "//", "/*", "*", "--")
DEFINITION_LINE = re.compile(
    r"^(@|(export\s+)?(default\s+)?(async\s+)?(def|class|function|func|fn|impl|struct|enum|"
    r"trait|interface|type|mod)\b|pub(\(\w+\))?\s+(async\s+)?(fn|struct|enum|trait|mod|type)\b)"
)
