"""`Trimmer`: the stream rules run once per token; `finish` gives the text to show."""

from __future__ import annotations

from dataclasses import dataclass, field

from .chat import skip_lead_in
from .cleanup import tidy
from .request import Rule, Seen, TrimRequest
from .rules import STREAM_RULES
from .runner import decide
from .syntax_check import syntax_cut_back


@dataclass
class Trimmer:
    """Streaming stop decisions for one request; `finish` gives the text to show."""

    request: TrimRequest
    rules: tuple[Rule, ...] = STREAM_RULES
    cut_lines: int | None = None
    fired: str | None = None
    # What the final clean-up changed ("cut-back", "dropped" by the syntax check…).
    cleaned: list[str] = field(default_factory=list)
    pieces: int = 0

    def _decide(self, text: str, final: bool) -> bool:
        body = skip_lead_in(self.request, text)
        lines = body.split("\n")
        seen = Seen(lines, len(lines) if final else len(lines) - 1, self.pieces, final)
        verdict = decide(self.rules, self.request, seen)
        if verdict is None:
            return False
        self.cut_lines, self.fired = verdict.cut, verdict.rule
        return True

    def should_stop(self, text: str) -> bool:
        self.pieces += 1
        return self._decide(text, final=False)

    def finish(self, text: str) -> str:
        """The suggestion to show: cut where a rule fired, tidied, syntax-checked."""
        body = skip_lead_in(self.request, text)
        if self.cut_lines is None:
            # The stream ended (EOS or cap) without a rule firing: decide on the whole text.
            self._decide(text, final=True)
        lines = body.split("\n")
        if self.cut_lines is not None:
            lines = lines[: self.cut_lines]
        out = tidy(self.request, "\n".join(lines), body)
        if out and self.request.check_syntax:
            checked = syntax_cut_back(self.request, out)
            if checked != out:
                self.cleaned.append("dropped" if not checked else "syntax-cut-back")
                out = checked
        return out
