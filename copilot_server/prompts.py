"""Fill-in-the-middle prompts, built as token lists from the model's own FIM tokens.

Layout (as llama.cpp's /infill): stable material first — other files' snippets, the
lines before the cursor's line, the suffix — and the typed part of the cursor's line
last, after the middle token. Typing within a line then only appends tokens, so the KV
cache keeps the rest of the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .context import Context
from .engines.base import Engine, FimTokens


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


class PromptError(RuntimeError):
    """The model cannot be prompted for fill-in-the-middle the requested way."""


def _tok(engine: Engine, text: str) -> list[int]:
    # special=False: code that happens to contain "<|fim_prefix|>" must stay text.
    return engine.tokenize(text, special=False)


def build_fim_prompt(engine: Engine, ctx: Context, template: str = "auto") -> Prompt:
    """PSM layout with repo-level snippets when the model has file separators."""
    fim: FimTokens = engine.info.fim
    if not fim.available:
        raise PromptError(
            f"{engine.info.name} has no fill-in-the-middle tokens; choose a code model with "
            "FIM (Qwen2.5-Coder, StarCoder2, CodeLlama, Codestral, DeepSeek-Coder)."
        )
    assert fim.prefix is not None and fim.suffix is not None and fim.middle is not None
    parts: list[PromptPart] = []
    tokens: list[int] = []
    if ctx.snippets and fim.file_sep is not None:
        if fim.repo_name is not None:
            tokens += [fim.repo_name] + _tok(engine, "workspace\n")
        for snippet in ctx.snippets:
            chunk = _tok(engine, f"{snippet.path}\n{snippet.text.rstrip()}\n")
            tokens += [fim.file_sep] + chunk
            parts.append(PromptPart(snippet.kind, snippet.text, len(chunk)))
        header = _tok(engine, f"{ctx.path}\n")
        tokens += [fim.file_sep] + header
    elif ctx.snippets:
        # No file separators: show snippets as a comment-free preamble before the prefix.
        pre = "".join(f"{s.text.rstrip()}\n\n" for s in ctx.snippets)
        ctx = Context(**{**ctx.__dict__, "prefix": pre + ctx.prefix})
    prefix_tokens = _tok(engine, ctx.prefix)
    suffix_tokens = _tok(engine, ctx.line_suffix + ctx.suffix)
    middle_tokens = _tok(engine, ctx.line_prefix)
    tokens += [fim.prefix] + prefix_tokens + [fim.suffix] + suffix_tokens + [fim.middle] + middle_tokens
    parts += [
        PromptPart("prefix", ctx.prefix, len(prefix_tokens)),
        PromptPart("suffix", ctx.line_suffix + ctx.suffix, len(suffix_tokens)),
        PromptPart("line", ctx.line_prefix, len(middle_tokens)),
    ]
    stop = {t for t in (fim.file_sep, fim.repo_name, fim.prefix, fim.suffix, fim.middle) if t is not None}
    return Prompt(
        tokens=tokens,
        template="fim-psm",
        parts=tuple(parts),
        middle_prefix=ctx.line_prefix,
        stop_tokens=frozenset(stop),
    )
