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
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..context import Context
from ..engines.base import Engine
from ..syntax.languages import fence_name
from .prompt import Prompt, PromptPart
from .templates import Template
from .tokens import _healed, tok, tok_inner

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


# -- chat fallback -----------------------------------------------------------------------


def fence_language(language: str) -> str:
    return fence_name(language)


def chat_request_text(ctx: Context) -> str:
    """The user turn: related code, the code after the insertion point, the task.

    The code before the cursor is not here: it opens the assistant's answer, so the model
    continues it as it would a file (small chat models follow that far better than an
    instruction to fill a gap, and nothing is said twice).
    """
    lang = fence_language(ctx.language)
    pieces = []
    for snippet in ctx.snippets:
        code = snippet.text.rstrip()
        pieces.append(f"Related code from {snippet.path}:\n```{lang}\n{code}\n```\n")
    # With nothing after the cursor on its line, the code after it starts on the next line.
    after = (ctx.line_suffix + ctx.suffix if ctx.line_suffix else ctx.suffix[1:]).rstrip("\n")
    task = f"Complete the {lang} code in {ctx.path}. Continue my code from where it stops"
    if after.strip():
        pieces.append(
            f"{task}, up to this code, which comes right after the part you write:\n"
            f"```{lang}\n{after}\n```\nReply with the code only, no explanations."
        )
    else:
        pieces.append(f"{task}. Reply with the code only, no explanations.")
    return "\n".join(pieces)


def chat_head_tokens(engine: Engine, t: Template, request: str) -> list[int]:
    """The chat template rendered for one user turn plus the assistant's generation prompt.

    Tokenized in one piece with special tokens on when the request holds no special-token
    text (so SentencePiece spaces come out as for the whole string); otherwise piece by
    piece, the request as plain text, so code cannot close the turn.
    """
    from .chat import chat_prompt_tokens, render_chat

    messages = [{"role": "user", "content": request}]
    template = engine.info.chat_template
    if template is None or engine.tokenize(request, special=True) != tok(engine, request):
        return chat_prompt_tokens(engine, messages)
    rendered = render_chat(
        template, messages, bos_token=t.texts.get("bos", ""), eos_token=t.texts.get("eos", "")
    )
    tokens = engine.tokenize(rendered, special=True)
    if t.bos is not None and (not tokens or tokens[0] != t.bos):
        tokens = [t.bos, *tokens]
    return tokens


def build_chat_prompt(engine: Engine, ctx: Context, t: Template) -> Prompt:
    """The model's own chat template; the answer opened with "```lang\\n", the code before
    the cursor and the typed part of its line, for the model to continue."""
    request = chat_request_text(ctx)
    head = chat_head_tokens(engine, t, request)
    # The answer continues right after the template's generation prompt: no extra "▁".
    inner = replace(t, adds_space=True)
    opening = f"```{fence_language(ctx.language)}\n"
    code = tok_inner(engine, opening + ctx.prefix, inner)
    line, healing = _healed(engine, tok_inner(engine, ctx.line_prefix, inner), ctx.line_prefix)
    return Prompt(
        tokens=head + code + line,
        template=t.name,
        parts=(
            PromptPart("chat", request, len(head)),
            PromptPart("prefix", opening + ctx.prefix, len(code)),
            PromptPart("line", ctx.line_prefix, len(line)),
        ),
        middle_prefix=ctx.line_prefix,
        stop_tokens=t.stop_tokens,
        chat=True,
        healing=healing,
    )
