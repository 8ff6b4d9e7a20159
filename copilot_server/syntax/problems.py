"""Syntax problems (ERROR/MISSING nodes) of a tree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .tree import parse, parse_view


@dataclass(frozen=True)
class SyntaxProblem:
    line: int  # 0-based row of the problem's first token
    end_line: int
    message: str


def syntax_problems(language: str, text: str, tree: Any | None = None) -> list[SyntaxProblem]:
    """Innermost ERROR and MISSING nodes, one problem each, in document order."""
    tree = tree if tree is not None else parse(language, text)
    if tree is None or not tree.root_node.has_error:
        return []
    problems: list[SyntaxProblem] = []
    lines = parse_view(text).split("\n")

    def visit(node: Any) -> None:
        if node.is_missing:
            row = node.start_point[0]
            problems.append(SyntaxProblem(row, row, f"syntax error: missing '{node.type}'"))
            return
        if not node.has_error:
            return
        inner_before = len(problems)
        for child in node.children:
            visit(child)
        if node.is_error and len(problems) == inner_before:
            row = first_leaf(node).start_point[0]
            line = lines[row].strip() if row < len(lines) else ""
            snippet = line if len(line) <= 60 else line[:57] + "..."
            problems.append(SyntaxProblem(row, node.end_point[0], f"syntax error in `{snippet}`"))

    visit(tree.root_node)
    problems.sort(key=lambda p: (p.line, p.end_line))
    return problems


def error_count(node: Any) -> int:
    """ERROR and MISSING nodes under `node`: how broken a parse is, to compare two parses
    (subtrees without errors are skipped; an ERROR node counts once, not its insides)."""
    if not node.has_error:
        return 0
    count = 0
    stack = [node]
    while stack:
        current = stack.pop()
        if current.is_error or current.is_missing:
            count += 1
        elif current.has_error:
            stack.extend(current.children)
    return count


def first_leaf(node: Any) -> Any:
    while node.child_count:
        node = node.children[0]
    return node


def node_text(node: Any) -> str:
    raw = node.text
    return raw.decode("utf-8", errors="replace") if raw is not None else ""
