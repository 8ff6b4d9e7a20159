"""An explanation: the region, the helpers it uses, a prose answer."""

from __future__ import annotations

import logging
import textwrap
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import Settings
from ..engines.base import Engine
from ..engines.tokens import token_cache
from ..prompts.chat import chat_prompt_tokens
from ..syntax.languages import DECLARATION_WORDS, GO_METHOD_PREFIX, IDENTIFIER, IMPORT_WORDS
from ..syntax.tree import parse_view
from .progress import TokenCallback, counting
from .prose import ProseTrimmer
from .regions import MAX_EXPLAIN_LINES, Region, region_span

if TYPE_CHECKING:
    from ..completion.types import ContextBuilder

log = logging.getLogger(__name__)


EXPLAIN_SENTENCES = 3


@dataclass
class Explanation:
    region: Region
    markdown: str
    tokens: int
    prompt_tokens: int
    latency_ms: float
    stop_reason: str
    rule: str | None = None


def context_snippets(
    builder: ContextBuilder | None,
    engine: Engine,
    settings: Settings,
    *,
    uri: str,
    path: str,
    language: str,
    text: str,
    region: Region,
) -> str:
    """Imports and definitions the context engine finds for the names the region uses.

    The engine leaves out definitions its prefix window already shows; an explanation
    shows only the region, so it asks with the smallest window (and no similar chunks)."""
    if builder is None:
        return ""
    from ..completion import CompletionRequest

    begin, end = region_span(text, region)
    # The cursor at the end of the region's last line: inside the function explained, whose
    # own definition is then not offered as a helper.
    cursor = len(text[:end].rstrip("\r\n")) if end > begin else end
    request = CompletionRequest(uri=uri, path=path, language=language, text=text, offset=cursor)
    narrow = settings.model_copy(
        update={
            "context": settings.context.model_copy(
                update={"prefix_tokens": 16, "suffix_tokens": 0, "snippet_tokens": 0}
            )
        }
    )
    try:
        context = builder(request, engine, narrow)
    except Exception:  # context is a help, never a reason to fail the explanation
        log.exception("context builder failed")
        return ""
    budget = settings.context.import_tokens + settings.context.definition_tokens
    used = set(IDENTIFIER.findall(text[begin:end]))
    # Only definitions the region uses: the engine also looks at the lines below it
    # (callers), which explain nothing about the region.
    pieces = [
        piece.strip()
        for snippet in context.snippets
        if snippet.kind == "definition"
        for piece in snippet.text.split("\n\n")
        if _defined_name(piece) in used
    ]
    # Imports only when the region or those helpers use one of their names.
    used |= {w for piece in pieces for w in IDENTIFIER.findall(piece)}
    imports = [
        s.text.strip()
        for s in context.snippets
        if s.kind == "imports" and _import_names(s.text) & used
    ]
    parts: list[str] = []
    for piece in imports + pieces:
        cost = token_cache(engine)(piece)
        if cost <= budget:
            budget -= cost
            parts.append(piece)
    return "\n\n".join(parts)


def _import_names(imports: str) -> set[str]:
    from ..syntax.languages import KEYWORDS

    return {w for w in IDENTIFIER.findall(imports) if w not in KEYWORDS and w not in IMPORT_WORDS}


def _defined_name(definition: str) -> str | None:
    """The name a definition introduces: the last word before its parameters (`def f(`,
    `static int f(`), else the first word that is not a keyword (`struct S {`)."""
    from ..syntax.languages import KEYWORDS

    lines = [ln.strip() for ln in definition.strip().split("\n")]
    first = next((ln for ln in lines if ln and not ln.startswith(("@", "#["))), "")
    if first.startswith(GO_METHOD_PREFIX):  # a Go method: skip the receiver
        first = "func " + first.split(")", 1)[-1]
    head = first.split("(", 1)[0]
    words = [
        w for w in IDENTIFIER.findall(head) if w not in KEYWORDS and w not in DECLARATION_WORDS
    ]
    if not words:
        return None
    return words[-1] if "(" in first else words[0]


def compute_explanation(
    engine: Engine,
    settings: Settings,
    *,
    language: str,
    text: str,
    region: Region,
    selection: str | None = None,
    name: str | None = None,
    helpers: str = "",
    cancel: threading.Event,
    on_token: TokenCallback | None = None,
) -> Explanation:
    started = time.perf_counter()
    if selection is None:
        begin, end = region_span(text, region)
        lines = parse_view(text)[begin:end].replace("\r\n", "\n").split("\n")
        if len(lines) > MAX_EXPLAIN_LINES:
            lines = lines[:MAX_EXPLAIN_LINES] + ["... (truncated)"]
        selection = "\n".join(lines)
    code = textwrap.dedent(selection).strip("\n")
    lang = language or "text"
    # The code first and the helpers after it, labelled: a 0.5B model given the helpers
    # first explained them as part of the code (measured on a two-function file).
    subject = f"`{name}`" if name else f"this {lang} code"
    reference = (
        f"\n\nFor reference only, the helpers it calls:\n```{lang}\n{helpers}\n```"
        if helpers
        else ""
    )
    messages = [
        {
            "role": "system",
            "content": "You explain code to a programmer in one short paragraph. Say what "
            "the code is for and what it returns; do not walk through it line by line "
            "and never repeat, quote or rewrite the code.",
        },
        {
            "role": "user",
            "content": f"In at most {EXPLAIN_SENTENCES} sentences, explain what {subject} "
            f"does: its purpose, inputs and result.\n```{lang}\n{code}\n```{reference}",
        },
    ]
    prompt = chat_prompt_tokens(engine, messages)
    trimmer = ProseTrimmer(code, EXPLAIN_SENTENCES)
    generation = engine.generate(
        prompt,
        max_tokens=settings.explain_max_tokens,
        should_stop=counting(trimmer.should_stop, on_token),
        cancel=cancel,
        temperature=0.0,
    )
    markdown = trimmer.finish(generation.text, truncated=generation.stop_reason == "max_tokens")
    result = Explanation(
        region=region,
        markdown=markdown,
        tokens=generation.tokens_generated,
        prompt_tokens=generation.prompt_tokens,
        latency_ms=(time.perf_counter() - started) * 1000,
        stop_reason=generation.stop_reason,
        rule=trimmer.fired,
    )
    log.info(
        "explain lines %d-%d (0-based): %d prompt tokens, %d generated, stop=%s rule=%s, %.0f ms",
        region.start,
        region.end,
        result.prompt_tokens,
        result.tokens,
        result.stop_reason,
        result.rule,
        result.latency_ms,
    )
    return result
