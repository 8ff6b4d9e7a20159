"""Explain and fix: code actions that cost tokens only when the user picks one.

Listing actions (`textDocument/codeAction`) parses with tree-sitter and never calls the
model. The work happens on demand: a fix in `codeAction/resolve`, an explanation in
`workspace/executeCommand copilot.explain`. Both run on the one model thread, report
`$/progress` and stop between tokens when cancelled.

A fix asks the model to rewrite a bounded region (the enclosing statement, a header with
its body, capped in lines); the edit is the difference between the old and new region,
cut down to the characters that changed, and the whole file is re-parsed before the
edit is offered.
"""

from .edits import Edit, apply_edits, region_edits, unified_diff
from .explain import Explanation, compute_explanation, context_snippets
from .fix import FixOutcome, check_fix, compute_fix, extract_code, fit_to_region
from .prose import ProseTrimmer
from .regions import MAX_FIX_LINES, Region, explain_region, fix_region, region_span

__all__ = [
    "Edit",
    "Explanation",
    "FixOutcome",
    "MAX_FIX_LINES",
    "ProseTrimmer",
    "Region",
    "apply_edits",
    "check_fix",
    "compute_explanation",
    "compute_fix",
    "context_snippets",
    "explain_region",
    "extract_code",
    "fit_to_region",
    "fix_region",
    "region_edits",
    "region_span",
    "unified_diff",
]
