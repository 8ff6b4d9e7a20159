"""The `Prompt` value: tokens, parts, stop tokens, healing."""

from __future__ import annotations

from dataclasses import dataclass, field

from .healing import NO_HEALING, Healing

# Qwen2.5-Coder's repo-level format starts with a repository name; any stable word works.
REPO_NAME = "workspace"


@dataclass(frozen=True)
class PromptPart:
    name: str
    text: str
    tokens: int


@dataclass(frozen=True)
class Prompt:
    tokens: list[int]
    template: str
    parts: tuple[PromptPart, ...] = field(default_factory=tuple)
    # Text the model's output continues (the typed part of the line), for the trimmer.
    middle_prefix: str = ""
    stop_tokens: frozenset[int] = frozenset()
    # A chat model answering in markdown: the trimmer also strips fences and prose.
    chat: bool = False
    # Token healing: the typed text taken back from the prompt's end, which the engine
    # must have the model write first (generate(..., heal=...)) and the suggestion drops.
    healing: Healing = NO_HEALING

    @property
    def heal(self) -> str:
        return self.healing.text
