"""LSP languageId / file extension → language name (grammar mapping lives here too)."""

from __future__ import annotations

from pathlib import Path

EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascriptreact",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "typescriptreact",
    ".go": "go", ".rs": "rust", ".java": "java",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp",
    ".lua": "lua", ".rb": "ruby", ".sh": "shellscript", ".md": "markdown",
}


def language_id_for_path(path: str) -> str | None:
    return EXTENSIONS.get(Path(path).suffix.lower())


def parser_for(language_id: str):  # -> tree_sitter.Parser | None
    """A tree-sitter parser for an LSP languageId, or None (plain-text fallback)."""
    import importlib

    from tree_sitter import Language, Parser

    modules = {
        "python": ("tree_sitter_python", "language"),
        "javascript": ("tree_sitter_javascript", "language"),
        "javascriptreact": ("tree_sitter_javascript", "language"),
        "typescript": ("tree_sitter_typescript", "language_typescript"),
        "typescriptreact": ("tree_sitter_typescript", "language_tsx"),
        "go": ("tree_sitter_go", "language"),
        "rust": ("tree_sitter_rust", "language"),
        "java": ("tree_sitter_java", "language"),
        "c": ("tree_sitter_c", "language"),
        "cpp": ("tree_sitter_cpp", "language"),
    }
    entry = modules.get(language_id)
    if entry is None:
        return None
    module = importlib.import_module(entry[0])
    return Parser(Language(getattr(module, entry[1])()))
