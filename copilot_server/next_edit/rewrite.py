"""Next edits from the model: it rewrites a window of ~20 lines around the cursor.

The prompt shows the user's recent hunks as original/updated blocks (Sweep found this
plain form beats unified diffs for small models), definitions the window uses, and the
window; the model writes the window again with the next edit made. Two formats:

- next-edit models (sweep-next-edit, detected from the GGUF's name) get the format they
  were trained on, Qwen2.5-Coder's repository layout: `<|file_sep|>{path}.diff` blocks,
  then `original/`, `current/` and `updated/` sections of the window;
- other code models (the default Qwen2.5-Coder-0.5B-Instruct) get a short instruction in
  their own chat template, with the answer's code fence already opened.

Generation stops the moment the window is complete (the closing fence or section marker,
or the window's last lines written again) and is decoded with prompt-lookup drafts from
the window's own tokens (engines/prompt_lookup.py) where the engine offers it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..engines.base import Engine, Generation, capabilities_of
from ..prompts.next_edit import EXTRA_LINES, RewritePrompt, closing_fence


@dataclass
class RewriteResult:
    updated: str | None
    generation: Generation
    prompt: RewritePrompt
    decode_calls: int = 0
    drafted: int = 0
    accepted: int = 0


def window_complete(generated: str, prompt: RewritePrompt) -> bool:
    """Stop rule: the rewritten window is whole. The closing fence (chat), or the window's
    last lines written again where they are unique, or far more lines than the window."""
    if prompt.format == "chat" and closing_fence(generated) is not None:
        return True
    if not generated.endswith("\n"):
        return False
    tail = prompt.window_tail
    if tail and generated.endswith(tail):
        return True
    return generated.count("\n") > prompt.window.line_count + EXTRA_LINES


def run_rewrite(
    engine: Engine,
    prompt: RewritePrompt,
    cancel: threading.Event,
    *,
    speculate: bool = True,
    draft_tokens: int = 16,
) -> RewriteResult:
    """Generate the rewritten window (on the model thread)."""
    finished = False

    def should_stop(text: str) -> bool:
        nonlocal finished
        finished = window_complete(text, prompt)
        return finished

    if capabilities_of(engine).prompt_lookup:
        generation, stats = engine.generate_with_lookup(  # type: ignore[attr-defined]
            prompt.tokens,
            source=prompt.lookup,
            max_tokens=prompt.max_tokens,
            should_stop=should_stop,
            cancel=cancel,
            stop_tokens=prompt.stop_tokens,
            draft_tokens=draft_tokens if speculate else 0,
        )
        counts = (stats.decode_calls, stats.drafted, stats.accepted)
    else:
        generation = engine.generate(
            prompt.tokens,
            max_tokens=prompt.max_tokens,
            should_stop=should_stop,
            cancel=cancel,
            temperature=0.0,
            stop_tokens=prompt.stop_tokens,
        )
        counts = (generation.tokens_generated, 0, 0)
    complete = finished or (prompt.format == "sweep" and generation.stop_reason == "eos")
    # Stopped on the window's own last lines (no fence yet): the whole output is the body.
    updated = prompt.updated_window(generation.text, complete)
    return RewriteResult(updated, generation, prompt, *counts)
