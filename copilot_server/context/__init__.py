"""What the model sees around the cursor: windows, scopes, imports, definitions, similar
snippets, the workspace index.
"""

from .types import ALIGN_LINES, Context, Snippet, TokenCounter

__all__ = ["ALIGN_LINES", "Context", "Snippet", "TokenCounter"]
