"""Fill-in-the-middle prompts (PSM and SPM): stable parts first, the typed line last."""

from __future__ import annotations

from dataclasses import replace

from ..context import Context
from ..engines.base import Engine, FimLayout, FimTokens, LaidOutTokens, capabilities_of
from .chat import build_chat_prompt
from .healing import NO_HEALING
from .prompt import REPO_NAME, Prompt, PromptPart
from .templates import (
    CHAT,
    Template,
    template_for,
)
from .tokens import _healed, inside_word, tok, tok_inner


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
) -> tuple[list[int], list[PromptPart], str, tuple[tuple[str, str], ...]]:
    """Tokens for other files (Qwen/StarCoder2/CodeGemma layouts), the text that must lead
    the prefix (StarCoder2 names the current file right after <fim_prefix>), and the
    other files as (path, text)."""
    tokens: list[int] = []
    parts: list[PromptPart] = []
    files: list[tuple[str, str]] = []
    style = t.family.repo_style if t.family else "qwen"
    if t.repo_name is not None:
        name = tok(engine, REPO_NAME if style == "starcoder2" else REPO_NAME + "\n")
        tokens += [t.repo_name] + name
    for snippet in ctx.snippets:
        text = f"{snippet.text.rstrip()}\n"
        chunk = tok(engine, f"{snippet.path}\n{text}")
        tokens += [t.file_sep] + chunk
        parts.append(PromptPart(snippet.kind, snippet.text, len(chunk)))
        files.append((snippet.path, text))
    assert t.file_sep is not None
    if style == "starcoder2":
        # <file_sep><fim_prefix>path\nprefix… as in the StarCoder2 paper's repo format.
        tokens.append(t.file_sep)
        return tokens, parts, f"{ctx.path}\n", tuple(files)
    tokens += [t.file_sep] + tok(engine, f"{ctx.path}\n")
    return tokens, parts, "", tuple(files)


def _prefix_first(engine: Engine, ctx: Context, t: Template) -> Prompt:
    """PSM: [BOS] [other files] PRE prefix SUF suffix MID line-prefix."""
    assert t.prefix is not None and t.suffix is not None and t.middle is not None
    tokens: list[int] = [t.bos] if t.bos is not None else []
    parts: list[PromptPart] = []
    lead = ""
    files: tuple[tuple[str, str], ...] = ()
    markers = FimTokens(t.prefix, t.suffix, t.middle)
    if ctx.snippets and t.file_sep is not None:
        repo, parts, lead, files = _repo_context(engine, ctx, t)
        tokens += repo
        markers = FimTokens(t.prefix, t.suffix, t.middle, t.repo_name, t.file_sep)
    else:
        ctx = _with_snippet_preamble(ctx)
    line = ctx.line_prefix
    if capabilities_of(engine).heals_tokens is False and inside_word(line):
        # An engine that cannot heal (remote): a word cut by the cursor is finished from the
        # prefix section, as FIM trained. (An engine that does not say keeps the layout.)
        ctx, line = replace(ctx, prefix=ctx.prefix + line, line_prefix=""), ""
    prefix_text = lead + ctx.prefix
    suffix_text = ctx.line_suffix + ctx.suffix
    prefix_tokens = tok(engine, prefix_text)  # SentencePiece: "<PRE> {prefix}", with space
    suffix_tokens = tok_inner(engine, suffix_text, t)
    middle_tokens, healing = _healed(engine, tok_inner(engine, line, t), line)
    tokens += [t.prefix, *prefix_tokens, t.suffix, *suffix_tokens, t.middle, *middle_tokens]
    parts += [
        PromptPart("prefix", prefix_text, len(prefix_tokens)),
        PromptPart("suffix", suffix_text, len(suffix_tokens)),
        PromptPart("line", line, len(middle_tokens)),
    ]
    # The texts go along for servers that lay the prompt out themselves (llama-server's
    # /infill). Not when the prefix names the file (StarCoder2: /infill cannot say that)
    # or when healing took typed text back (the model must write it: tokens only).
    if not lead and not healing.tokens:
        tokens = LaidOutTokens(tokens, FimLayout(prefix_text, suffix_text, line, files, markers))
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
    suffix_tokens = tok_inner(engine, suffix_text, t)
    prefix_tokens = tok(engine, ctx.prefix)
    if prefix_tokens:
        line_tokens = tok_inner(engine, ctx.line_prefix, t)
    else:
        line_tokens = tok(engine, ctx.line_prefix)
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
