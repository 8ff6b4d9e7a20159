"""A fix: prompt, generation, the rewrite fitted to the region, checked by re-parsing."""

from __future__ import annotations

import logging
import re
import textwrap
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..engines.base import Engine
from ..prompts.chat import chat_prompt_tokens
from ..sequences import common_prefix_len
from ..syntax.problems import syntax_problems
from ..syntax.tree import parse, parse_view
from .edits import Edit, apply_edits, region_edits
from .progress import TokenCallback, counting
from .regions import Region, fix_region, region_span

log = logging.getLogger(__name__)


_FENCE_RE = re.compile(r"```[^\n]*\n(.*?)(?:\n```|\Z)", re.DOTALL)


def extract_code(reply: str) -> str:
    """The code of the first fenced block (or the whole reply when it has no fence)."""
    match = _FENCE_RE.search(reply)
    code = match.group(1) if match else reply
    return code.strip("\n")


def fit_to_region(code: str, old_region_text: str) -> str:
    """The model's rewrite with the region's indentation and line endings restored."""
    old_lines = old_region_text.splitlines(keepends=True)
    eol = "\r\n" if old_lines and old_lines[0].endswith("\r\n") else "\n"
    indent = _common_indent(old_region_text)
    body = textwrap.indent(textwrap.dedent(code.replace("\r\n", "\n").strip("\n")), indent)
    new_lines = body.split("\n")
    out = eol.join(line.rstrip() for line in new_lines)
    if old_region_text.endswith(("\n", "\r")):
        out += eol
    return out


def _common_indent(text: str) -> str:
    indents = [ln[: len(ln) - len(ln.lstrip())] for ln in text.splitlines() if ln.strip()]
    if not indents:
        return ""
    common = indents[0]
    for ind in indents[1:]:
        common = common[: common_prefix_len(common, ind)]
    return common


def _cut_off(reply: str, stop_reason: str) -> bool:
    """The reply ended before its code did: a fence left open, or no fence and no EOS."""
    opened = reply.find("```")
    if opened >= 0:
        return reply.find("\n```", opened + 3) < 0
    return stop_reason != "eos"


def fix_stream_done(text: str, max_lines: int) -> bool:
    """Stop once the fenced block closes, or when the reply outgrows any plausible rewrite."""
    opened = text.find("```")
    if opened >= 0 and text.find("\n```", opened + 3) >= 0:
        return True
    return text.count("\n") > 2 * max_lines + 4


@dataclass
class FixOutcome:
    region: Region
    edits: list[Edit] = field(default_factory=list)
    new_text: str = ""
    reason: str | None = None  # why no fix is offered (None = a fix)
    tokens: int = 0
    prompt_tokens: int = 0
    latency_ms: float = 0.0
    stop_reason: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None and bool(self.edits)


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_fix(
    language: str,
    old_text: str,
    new_text: str,
    old: Region,
    new: Region,
    old_tree: Any | None = None,
) -> str | None:
    """Why the rewritten file is not acceptable, or None: no syntax error may remain in the
    rewritten region and none may appear outside it. `old_tree`: the old text's tree where
    the caller has it."""
    tree = parse(language, new_text)
    if tree is None:
        return None  # no grammar: nothing to check against
    after = syntax_problems(language, new_text, tree)
    for problem in after:
        if new.overlaps(problem.line, problem.line):
            return f"the suggested fix still has a syntax error at line {problem.line + 1}"
    before_outside = [
        p for p in syntax_problems(language, old_text, old_tree) if not old.overlaps(p.line, p.line)
    ]
    after_outside = [p for p in after if not new.overlaps(p.line, p.line)]
    if len(after_outside) > len(before_outside):
        first = after_outside[0]
        return f"the suggested fix adds a syntax error at line {first.line + 1}"
    return None


def compute_fix(
    engine: Engine,
    settings: Settings,
    *,
    language: str,
    text: str,
    first_line: int,
    last_line: int,
    message: str,
    cancel: threading.Event,
    on_token: TokenCallback | None = None,
    tree: Any | None = None,
) -> FixOutcome:
    """`tree`: the text's tree, a copy the model thread may read (parsed here without one)."""
    started = time.perf_counter()
    # Regions and diffs are read in the parse view (a lone CR is a line end there, as in
    # LSP); its offsets are the text's, so the edits apply to the text as it is.
    view = parse_view(text)
    region = fix_region(language, view, first_line, last_line, tree=tree)
    begin, end = region_span(view, region)
    old_region_text = view[begin:end]
    code = textwrap.dedent(old_region_text.replace("\r\n", "\n")).strip("\n")
    lang = language or "text"
    messages = [
        {
            "role": "system",
            "content": "You fix code. Reply with only the corrected code in one fenced block.",
        },
        {
            "role": "user",
            "content": f"Fix this problem: {_short(message, 300)}\nChange as little as "
            f"possible and rewrite exactly these lines:\n```{lang}\n{code}\n```",
        },
    ]
    prompt = chat_prompt_tokens(engine, messages)
    generation = engine.generate(
        prompt,
        max_tokens=settings.fix_max_tokens,
        should_stop=counting(lambda t: fix_stream_done(t, region.lines), on_token),
        cancel=cancel,
        temperature=0.0,
    )
    outcome = FixOutcome(
        region=region,
        tokens=generation.tokens_generated,
        prompt_tokens=generation.prompt_tokens,
        stop_reason=generation.stop_reason,
    )
    if generation.stop_reason == "cancelled":
        outcome.reason = "cancelled"
    elif _cut_off(generation.text, generation.stop_reason):
        # Half a rewrite would delete the region's last lines: never offer it.
        outcome.reason = "the model's rewrite was cut off (fix_max_tokens or too long)"
    elif not extract_code(generation.text).strip():
        outcome.reason = "the model suggested no code"
    else:
        new_region_text = fit_to_region(extract_code(generation.text), old_region_text)
        edits = region_edits(view, region, new_region_text)
        new_text = apply_edits(text, edits)
        new_region = Region(
            region.start, region.start + max(0, len(new_region_text.splitlines()) - 1)
        )
        if not edits:
            outcome.reason = "the model suggested no change"
        else:
            outcome.reason = check_fix(language, text, new_text, region, new_region, tree)
            outcome.edits, outcome.new_text = edits, new_text
    outcome.latency_ms = (time.perf_counter() - started) * 1000
    log.info(
        "fix lines %d-%d (0-based): %d prompt tokens, %d generated, %d edits, %s, %.0f ms",
        region.start,
        region.end,
        outcome.prompt_tokens,
        outcome.tokens,
        len(outcome.edits),
        outcome.reason or "ok",
        outcome.latency_ms,
    )
    return outcome
