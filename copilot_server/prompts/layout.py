"""Lead lines: lines typed since the last aligned line go after the middle token, so typing
only appends.
"""

from __future__ import annotations

from dataclasses import replace

from ..context import ALIGN_LINES, Context

# Lines typed since the last multiple of LEAD_LINES go after the middle token, with the
# cursor's line (see with_lead_lines); aligned like the context engine's windows.
LEAD_LINES = ALIGN_LINES


def with_lead_lines(context: Context, cursor_line: int, align: int = LEAD_LINES) -> Context:
    """The lines typed since the last multiple of `align` moved from the prefix to the front
    of the cursor's line, so the prompt builder puts them after the middle token.

    With the cursor's line alone after the middle token, pressing Enter moved a finished
    line into the prefix, before the suffix, and the model re-read the suffix and
    everything after it: 100-200 tokens, 1-2 s on a 2-core CPU, for every new line
    (`copilot-server bench typing`). A FIM middle may start lines earlier than the cursor
    (training spans are arbitrary), so this costs no quality, and typing down a block
    only appends to the prompt; the layout changes once every `align` lines.
    """
    lead = cursor_line % align
    if not lead or not context.prefix:
        return context
    lines = context.prefix.splitlines(keepends=True)
    lead = min(lead, len(lines))
    return replace(
        context,
        prefix="".join(lines[:-lead]),
        line_prefix="".join(lines[-lead:]) + context.line_prefix,
    )
