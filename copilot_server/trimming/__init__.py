"""Decide, while the model streams, when a suggestion is whole; then clean it up.

Each stream rule is a small named function over what was generated so far. It answers
None (go on) or the number of lines to keep: the engine stops, and the suggestion is
cut back to those lines. Rules only look at complete lines (plus a partial last line
where its start already decides), so a decision never depends on how the model split
its tokens. When several rules fire, the shortest cut wins (trimming/runner.py, which
also runs the explanation's prose rules).

`finish` then tidies the text (trailing blanks, closers the suffix already has) and
re-parses the window — prefix + suggestion + suffix — with tree-sitter: a suggestion
that adds syntax errors is cut back to its longest clean prefix, or dropped.
"""

from .chat import looks_like_prose
from .cleanup import tidy
from .request import Seen, TrimRequest
from .rules import STREAM_RULES
from .syntax_check import syntax_cut_back
from .trimmer import Trimmer

__all__ = [
    "STREAM_RULES",
    "Seen",
    "TrimRequest",
    "Trimmer",
    "looks_like_prose",
    "syntax_cut_back",
    "tidy",
]
