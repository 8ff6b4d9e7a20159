"""Next edit suggestions: the edit after the one the user just made, anywhere in the file.

history.py records each document's recent hunks from didChange; propagation.py repeats
the last hunk where its pattern still stands (no model); rewrite.py has the model rewrite
a window around the cursor (prompt-lookup speculation); diffing.py turns a rewrite into
the smallest edit; service.py tries the sources cheapest first and filters what they
offer; lsp.py speaks Copilot's `textDocument/copilotInlineEdit`.
"""

from ..documents.history import EditHistory, Hunk
from .diffing import Edit
from .service import NextEditRequest, NextEditResult, NextEditService

__all__ = ["Edit", "EditHistory", "Hunk", "NextEditRequest", "NextEditResult", "NextEditService"]
