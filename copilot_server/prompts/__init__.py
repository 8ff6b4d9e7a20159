"""Prompts for each model family, built as token lists from the model's own special tokens.

Layout (as llama.cpp's /infill): stable material first — other files' snippets, the
lines before the cursor's line, the suffix — and the typed part of the cursor's line
last, after the middle token. Typing within a line then only appends tokens, so the KV
cache keeps the rest of the prompt. Suffix-first families (Codestral) put the suffix
first and the prefix last, which keeps the same property.

Models without FIM tokens get a chat prompt rendered with their own chat template: the
task and the code after the cursor in the user turn, and the assistant's answer already
opened with a code fence, the code before the cursor and the line's typed text, so the
model's first token continues the code. Its output goes through the same trimmer (plus
fence/prose rules).

In every layout the typed text ends the prompt, so every layout is token-healed the same
way (healing.py): its trailing partial token(s) are taken back and the engine constrains
the first tokens to write them again. An engine that says it cannot constrain (remote)
gets the plain FIM layout instead when the cursor is inside a word: the typed line ends
the prefix section, where FIM training cut words at arbitrary characters.
"""

from __future__ import annotations

import logging
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from ..context import Context
from ..engines.base import Engine
from ..templates import (
    CHAT,
    TEMPLATE_NAMES,
    PromptError,
    Template,
    describe_template,
    resolve_template,
)
from .healing import NO_HEALING, Healing, plan, vocabulary_for

__all__ = [
    "Healing",
    "Prompt",
    "PromptError",
    "PromptPart",
    "TEMPLATE_NAMES",
    "build_fim_prompt",
    "describe_template",
    "template_for",
]

log = logging.getLogger(__name__)

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


# -- template choice, once per engine and setting ----------------------------------------

_resolved: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def template_for(engine: Engine, setting: str = "auto") -> Template:
    """The engine's template for `setting`, resolved once and logged when first chosen."""
    try:
        cache = _resolved.setdefault(engine, {})
    except TypeError:  # an engine that cannot be weakly referenced: resolve every time
        cache = {}
    template = cache.get(setting)
    if template is None:
        template = resolve_template(engine, setting)
        cache[setting] = template
        log.info("prompt template for %s: %s", engine.info.name, template.describe())
        for warning in template.warnings:
            log.warning("%s", warning)
    return template


# -- tokenization helpers ----------------------------------------------------------------


# Everything but the typed line is identical between keystrokes: tokenizing the prefix
# and suffix again cost 2.5-8 ms per request (context benchmark); a hit costs ~0.1 ms.
_TOKEN_CACHE: OrderedDict[tuple[int, str, str], tuple[int, ...]] = OrderedDict()
_TOKEN_CACHE_SIZE = 512


def _tok(engine: Engine, text: str) -> list[int]:
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


def _tok_inner(engine: Engine, text: str, template: Template) -> list[int]:
    """Text that continues after a special token: without SentencePiece's leading "▁".

    Reference FIM code for CodeLlama and Mistral encodes the suffix and the middle this
    way (sentencepiece's "☺"-prefix trick); we tokenize "\\n" + text and drop the "\\n".
    """
    if not text or not template.adds_space:
        return _tok(engine, text)
    head = _tok(engine, "\n")
    tokens = _tok(engine, "\n" + text)
    if tokens[: len(head)] == head:
        return tokens[len(head) :]
    return _tok(engine, text)


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


def _inside_word(text: str) -> bool:
    return bool(text) and (text[-1].isalnum() or text[-1] == "_")


# -- builders ----------------------------------------------------------------------------


def build_fim_prompt(engine: Engine, ctx: Context, template: str = "auto") -> Prompt:
    """The prompt for `ctx` in the format `template` names ("auto": from the GGUF)."""
    chosen = template_for(engine, template)
    if chosen.kind == CHAT:
        return build_chat_prompt(engine, ctx, chosen)
    if chosen.order == "spm":
        return _suffix_first(engine, ctx, chosen)
    return _prefix_first(engine, ctx, chosen)


def _with_snippet_preamble(ctx: Context) -> Context:
    """Without file separators, snippets go before the prefix as plain code."""
    if not ctx.snippets:
        return ctx
    pre = "".join(f"{s.text.rstrip()}\n\n" for s in ctx.snippets)
    return replace(ctx, prefix=pre + ctx.prefix, snippets=())


def _repo_context(
    engine: Engine, ctx: Context, t: Template
) -> tuple[list[int], list[PromptPart], str]:
    """Tokens for other files (Qwen/StarCoder2/CodeGemma layouts) and the text that must
    lead the prefix (StarCoder2 names the current file right after <fim_prefix>)."""
    tokens: list[int] = []
    parts: list[PromptPart] = []
    style = t.family.repo_style if t.family else "qwen"
    if t.repo_name is not None:
        name = _tok(engine, REPO_NAME if style == "starcoder2" else REPO_NAME + "\n")
        tokens += [t.repo_name] + name
    for snippet in ctx.snippets:
        chunk = _tok(engine, f"{snippet.path}\n{snippet.text.rstrip()}\n")
        tokens += [t.file_sep] + chunk
        parts.append(PromptPart(snippet.kind, snippet.text, len(chunk)))
    assert t.file_sep is not None
    if style == "starcoder2":
        # <file_sep><fim_prefix>path\nprefix… as in the StarCoder2 paper's repo format.
        tokens.append(t.file_sep)
        return tokens, parts, f"{ctx.path}\n"
    tokens += [t.file_sep] + _tok(engine, f"{ctx.path}\n")
    return tokens, parts, ""


def _prefix_first(engine: Engine, ctx: Context, t: Template) -> Prompt:
    """PSM: [BOS] [other files] PRE prefix SUF suffix MID line-prefix."""
    assert t.prefix is not None and t.suffix is not None and t.middle is not None
    tokens: list[int] = [t.bos] if t.bos is not None else []
    parts: list[PromptPart] = []
    lead = ""
    if ctx.snippets and t.file_sep is not None:
        repo, parts, lead = _repo_context(engine, ctx, t)
        tokens += repo
    else:
        ctx = _with_snippet_preamble(ctx)
    line = ctx.line_prefix
    if getattr(engine, "heals_tokens", None) is False and _inside_word(line):
        # An engine that cannot heal (remote): a word cut by the cursor is finished from the
        # prefix section, as FIM trained. (An engine that does not say keeps the layout.)
        ctx, line = replace(ctx, prefix=ctx.prefix + line, line_prefix=""), ""
    prefix_text = lead + ctx.prefix
    suffix_text = ctx.line_suffix + ctx.suffix
    prefix_tokens = _tok(engine, prefix_text)  # SentencePiece: "<PRE> {prefix}", with space
    suffix_tokens = _tok_inner(engine, suffix_text, t)
    middle_tokens, healing = _healed(engine, _tok_inner(engine, line, t), line)
    tokens += [t.prefix, *prefix_tokens, t.suffix, *suffix_tokens, t.middle, *middle_tokens]
    parts += [
        PromptPart("prefix", prefix_text, len(prefix_tokens)),
        PromptPart("suffix", suffix_text, len(suffix_tokens)),
        PromptPart("line", line, len(middle_tokens)),
    ]
    return Prompt(
        tokens=tokens,
        template=t.name,
        parts=tuple(parts),
        middle_prefix=line,
        stop_tokens=t.stop_tokens,
        healing=healing,
    )


def _suffix_first(engine: Engine, ctx: Context, t: Template) -> Prompt:
    """Mistral/Codestral: [BOS] [SUFFIX] suffix [PREFIX] prefix line-prefix (no middle).

    mistral-common's encode_fim writes "<s>[SUFFIX]suffix[PREFIX] prefix": the suffix
    without SentencePiece's leading space, the prefix with it. The typed part of the
    line ends the prompt, so typing still only appends.
    """
    assert t.prefix is not None and t.suffix is not None
    ctx = _with_snippet_preamble(ctx)
    tokens: list[int] = [t.bos] if t.bos is not None else []
    suffix_text = ctx.line_suffix + ctx.suffix
    suffix_tokens = _tok_inner(engine, suffix_text, t)
    prefix_tokens = _tok(engine, ctx.prefix)
    if prefix_tokens:
        line_tokens = _tok_inner(engine, ctx.line_prefix, t)
    else:
        line_tokens = _tok(engine, ctx.line_prefix)
    healing = NO_HEALING
    if t.middle is None:  # the typed text ends the prompt: it can be healed
        line_tokens, healing = _healed(engine, line_tokens, ctx.line_prefix)
    tokens += [t.suffix, *suffix_tokens, t.prefix, *prefix_tokens, *line_tokens]
    if t.middle is not None:
        tokens.append(t.middle)
    parts = (
        PromptPart("suffix", suffix_text, len(suffix_tokens)),
        PromptPart("prefix", ctx.prefix, len(prefix_tokens)),
        PromptPart("line", ctx.line_prefix, len(line_tokens)),
    )
    return Prompt(
        tokens=tokens,
        template=t.name,
        parts=parts,
        middle_prefix=ctx.line_prefix,
        stop_tokens=t.stop_tokens,
        healing=healing,
    )


# -- chat fallback -----------------------------------------------------------------------

_FENCE_NAMES = {
    "typescriptreact": "tsx",
    "javascriptreact": "jsx",
    "shellscript": "sh",
}


def fence_language(language: str) -> str:
    return _FENCE_NAMES.get(language, language)


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
    from ..chat import chat_prompt_tokens, render_chat

    messages = [{"role": "user", "content": request}]
    template = engine.info.chat_template
    if template is None or engine.tokenize(request, special=True) != _tok(engine, request):
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
    code = _tok_inner(engine, opening + ctx.prefix, inner)
    line, healing = _healed(engine, _tok_inner(engine, ctx.line_prefix, inner), ctx.line_prefix)
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
