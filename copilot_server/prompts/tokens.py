"""Tokenizing prompt parts (special tokens stay text) and taking back a cut word for healing."""

from __future__ import annotations

from collections import OrderedDict

from ..engines.base import Engine
from .healing import NO_HEALING, Healing, plan, vocabulary_for
from .templates import Template

# Everything but the typed line is identical between keystrokes: tokenizing the prefix
# and suffix again cost 2.5-8 ms per request (context benchmark); a hit costs ~0.1 ms.
_TOKEN_CACHE: OrderedDict[tuple[int, str, str], tuple[int, ...]] = OrderedDict()
_TOKEN_CACHE_SIZE = 512


def tok(engine: Engine, text: str) -> list[int]:
    # special=False: code that happens to contain "<|fim_prefix|>" must stay text.
    if not text:
        return []
    # The model path guards against a reloaded engine reusing a freed object's id.
    key = (id(engine), engine.info.path, text)
    cached = _TOKEN_CACHE.get(key)
    if cached is None:
        cached = tuple(engine.tokenize(text, special=False))
        _TOKEN_CACHE[key] = cached
        if len(_TOKEN_CACHE) > _TOKEN_CACHE_SIZE:
            _TOKEN_CACHE.popitem(last=False)
    else:
        _TOKEN_CACHE.move_to_end(key)
    return list(cached)


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
