"""Tree-sitter: languages and their facts, the incremental tree, and the readers (definitions,
scopes, imports, problems).
"""

from .definitions import find_definitions, summarize
from .imports import find_imports
from .outline import Outline
from .scopes import scope_chain
from .tree import SyntaxTree

__all__ = ["Outline", "SyntaxTree", "find_definitions", "find_imports", "scope_chain", "summarize"]
