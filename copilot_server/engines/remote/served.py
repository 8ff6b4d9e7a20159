"""What a backend builds its request bodies from: the served model, and one generation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..base import FimTokens, GenerateOptions
from .tokenizers import Tokenizer


@dataclass
class Served:
    """What the probe learned about the server and its model."""

    model_id: str | None
    models: list[str]
    tokenizer: Tokenizer
    fim: FimTokens
    n_ctx: int
    n_ctx_from_server: bool
    n_ctx_train: int
    chat_template: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    server_api: str = ""  # the tokenize API that answered: tells the server's make

    @property
    def llama_cpp(self) -> bool:
        """llama-server or llama-cpp-python's server (they take llama.cpp's sampling)."""
        return self.server_api.startswith("llama")

    @property
    def vllm(self) -> bool:
        return self.server_api.startswith("vLLM")


@dataclass(frozen=True)
class Request:
    """One generation, as each backend's `bodies(request)` turns it into request bodies."""

    served: Served
    prompt: list[int]
    options: GenerateOptions  # max_tokens already fitted to the server's context
    stop_texts: list[str]  # the stop tokens' texts: servers match stops on text
    spell: Callable[[list[int]], str]  # token ids as text, special tokens written out


def sampling(served: Served, temperature: float) -> dict[str, Any]:
    greedy = temperature == 0
    fields: dict[str, Any] = {"temperature": temperature, "top_p": 1.0 if greedy else 0.95}
    if served.llama_cpp:
        # The in-process engine's sampling: llama.cpp servers would otherwise add their
        # default repeat penalty (1.1) and min-p. Others get only standard fields.
        fields.update(top_k=1 if greedy else 40, min_p=0.0, repeat_penalty=1.0)
    return fields
