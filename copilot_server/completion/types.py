"""Request and result of one completion, and the context builder the service takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..config import Settings
from ..context import Context
from ..engines.base import Engine


class Superseded(Exception):
    """A newer request for the same document took over; this one has no answer."""


@dataclass(frozen=True)
class CompletionRequest:
    uri: str
    path: str
    language: str
    text: str
    offset: int  # Python str offset of the cursor in `text`
    invoked: bool = False  # the user asked explicitly (vs automatic while typing)
    # LSP selectedCompletionInfo: the suggestion must start with this text (which the
    # editor's completion widget would insert over [replace_start, offset)).
    selected_text: str | None = None
    replace_start: int | None = None
    # Suggestions wanted: more than one only for an explicit request from an editor that
    # cycles (lsp_edges); the CLI and the benchmarks ask for one.
    alternatives: int = 1


@dataclass
class CompletionResult:
    text: str
    source: str  # "model" | "typed-through" | "lru" | "none"
    latency_ms: float
    tokens_generated: int = 0
    tokens_shown: int = 0
    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0
    stop_reason: str = ""
    server_ms: float = 0.0  # time spent outside the model (context, prompt, trimming)
    id: str = ""
    message: str = ""
    alternatives: list[str] = field(default_factory=list)  # more suggestions, to cycle

    def as_dict(self) -> dict:
        return asdict(self)


ContextBuilder = Callable[[CompletionRequest, Engine, Settings], Context]
