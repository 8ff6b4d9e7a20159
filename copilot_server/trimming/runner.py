"""The one rule runner: the completion trimmer's stream rules and the explanation's prose
rules both ask it where to stop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """Where to cut (the rule's own unit: lines kept, or characters kept) and who said so."""

    cut: int
    rule: str


def decide(rules: Sequence[Callable[..., int | None]], *args: Any) -> Verdict | None:
    """Every rule sees `args`; the smallest cut wins, ties by order (the order is the
    priority). None: no rule fired, go on.

    Each rule says "nothing from here on belongs in the answer", so the earliest such
    point is the one every rule agrees with."""
    best: Verdict | None = None
    for rule in rules:
        cut = rule(*args)
        if cut is not None and (best is None or cut < best.cut):
            best = Verdict(cut, rule.__name__)
    return best
