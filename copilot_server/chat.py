"""Chat prompts rendered with the model's own template (the GGUF's tokenizer.chat_template).

Rendered with jinja2 the way llama_cpp.llama_chat_format.Jinja2ChatFormatter does (a
sandboxed environment, trim_blocks/lstrip_blocks, a `tojson` filter, `raise_exception`).
The template's scaffolding is tokenized with special tokens on; the message contents are
tokenized as plain text, so code containing "<|im_end|>" cannot end a turn early.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime
from typing import Any

from .engines.base import Engine

Message = dict[str, str]

# Used only when a model has no template (base models): ChatML, which most instruct
# builds understand even without a template of their own.
_FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_SENTINEL = "\x00msg{}\x00"
_SENTINEL_RE = re.compile("\x00msg(\\d+)\x00")


def chat_prompt_tokens(engine: Engine, messages: list[Message]) -> list[int]:
    """Token ids for `messages` followed by the assistant's turn, ready for engine.generate."""
    info = engine.info
    template = info.chat_template or _FALLBACK_TEMPLATE
    bos_id = _int_or_none(info.metadata.get("tokenizer.ggml.bos_token_id"))
    bos = engine.detokenize([bos_id]) if bos_id is not None else ""
    eos = engine.detokenize([info.eos_token]) if info.eos_token is not None else ""
    # Render with placeholders where the contents go, then tokenize the pieces apart.
    placeholders = [{**m, "content": _SENTINEL.format(i)} for i, m in enumerate(messages)]
    rendered = render_chat(template, placeholders, bos_token=bos, eos_token=eos)
    pieces = _SENTINEL_RE.split(rendered)
    if len(pieces) != 2 * len(messages) + 1:
        # The template transformed the contents (trim, slicing…): render them for real.
        text = render_chat(template, messages, bos_token=bos, eos_token=eos)
        tokens = engine.tokenize(text, special=True)
    else:
        tokens = []
        for index, piece in enumerate(pieces):
            if index % 2 == 0:
                tokens += engine.tokenize(piece, special=True)
            else:
                tokens += engine.tokenize(messages[int(piece)]["content"], special=False)
    add_bos = info.metadata.get("tokenizer.ggml.add_bos_token", "false").lower() == "true"
    if add_bos and bos_id is not None and (not tokens or tokens[0] != bos_id):
        tokens = [bos_id, *tokens]
    return tokens


def render_chat(
    template: str, messages: list[Message], *, bos_token: str = "", eos_token: str = ""
) -> str:
    """The template's text for `messages` plus the generation prompt."""

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    return _compiled(template).render(
        messages=messages,
        bos_token=bos_token,
        eos_token=eos_token,
        add_generation_prompt=True,
        raise_exception=raise_exception,
        strftime_now=lambda fmt: datetime.now().strftime(fmt),
    )


@functools.lru_cache(maxsize=4)
def _compiled(template: str) -> Any:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        loader=jinja2.BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[jinja2.ext.loopcontrols],
    )
    env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(
        x, ensure_ascii=False, indent=indent
    )
    return env.from_string(template)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
