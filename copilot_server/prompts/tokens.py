"""Tokenizing prompt parts (special tokens stay text) and taking back a cut word for healing."""

from __future__ import annotations

from ..engines.base import Engine
from ..engines.tokens import token_cache
from .healing import NO_HEALING, Healing, plan, vocabulary_for
from .templates import Template


def tok(engine: Engine, text: str) -> list[int]:
    # special=False: code that happens to contain "<|fim_prefix|>" must stay text.
    return list(token_cache(engine).tokens(text))


def tok_inner(engine: Engine, text: str, template: Template) -> list[int]:
    """Text that continues after a special token: without SentencePiece's leading "▁".

    Reference FIM code for CodeLlama and Mistral encodes the suffix and the middle this
    way (sentencepiece's "☺"-prefix trick); we tokenize "\\n" + text and drop the "\\n".
    """
    if not text or not template.adds_space:
        return tok(engine, text)
    head = tok(engine, "\n")
    tokens = tok(engine, "\n" + text)
    if tokens[: len(head)] == head:
        return tokens[len(head) :]
    return tok(engine, text)


def _healed(engine: Engine, tokens: list[int], text: str) -> tuple[list[int], Healing]:
    """`tokens` (spelling `text`, the end of the prompt) less the trailing ones that token
    healing takes back, and the healing; unchanged for an engine that cannot constrain."""
    vocab = vocabulary_for(engine)
    if vocab is None or not tokens:
        return tokens, NO_HEALING
    healing = plan(vocab, tokens, text)
    if not healing.tokens:
        return tokens, NO_HEALING
    return tokens[: len(tokens) - healing.tokens], healing


def inside_word(text: str) -> bool:
    return bool(text) and (text[-1].isalnum() or text[-1] == "_")
