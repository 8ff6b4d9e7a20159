"""Keeping cached prompt tokens that moved: the KV cache reuse of llama-server's
`--cache-reuse`, for the in-process engine.

`Llama.generate` keeps only the longest common prefix with the previous prompt. When the
prefix window's top lines drop out (every ALIGN_LINES lines once the window is full) or
lines typed after the middle token move into the prefix, everything after the change
shifts toward the start and used to be re-read: 300-500 tokens, 4-7 s on a 2-core CPU,
the slowest suggestions of a typing session (`copilot-server bench typing`). The same
tokens are still in the cache at later positions; removing the cells in between and
shifting the positions of the kept runs (RoPE is re-applied by llama.cpp) costs
milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..sequences import common_prefix_len

# Shortest run of cached tokens worth keeping by a shift: shorter runs are as cheap to
# re-read, and a short run matching by chance would only add a shift.
MIN_MOVED_RUN = 16


@dataclass(frozen=True)
class Move:
    """Cached tokens [cache_at, cache_at + length) become prompt tokens [prompt_at, ...)."""

    cache_at: int
    prompt_at: int
    length: int


@dataclass(frozen=True)
class ReusePlan:
    common_prefix: int  # tokens kept in place
    moves: tuple[Move, ...]  # runs kept by shifting them toward the start, in order
    kept: int  # common_prefix + the moved runs: the prompt tokens not re-read


def plan_reuse(cached: list[int], prompt: list[int], min_run: int = MIN_MOVED_RUN) -> ReusePlan:
    """Which cached tokens the prompt can keep: the common prefix, then, walking both
    forward, every run of at least `min_run` cached tokens that continues the prompt
    where the kept part ends (cached tokens in between are dropped). Only deletions are
    bridged: a prompt token that is not in the cache ends the reuse, since llama.cpp
    evaluates a sequence's new tokens after its last cached one."""
    common = kept = common_prefix_len(cached, prompt)
    head_c = head_p = kept
    moves: list[Move] = []
    while head_c < len(cached) and head_p < len(prompt):
        run = 0
        while (
            head_c + run < len(cached)
            and head_p + run < len(prompt)
            and cached[head_c + run] == prompt[head_p + run]
        ):
            run += 1
        if run >= min_run:
            moves.append(Move(head_c, head_p, run))
            head_c += run
            head_p += run
            kept += run
        else:
            head_c += 1
    return ReusePlan(common, tuple(moves), kept)
