"""Where two sequences (texts or token lists) agree: the common prefix and suffix, one
implementation for every caller.
"""

from __future__ import annotations

from collections.abc import Sequence

_BLOCK = 4096


def common_prefix_len(a: Sequence, b: Sequence) -> int:
    """Length of the common prefix, comparing blocks at C speed before characters."""
    limit = min(len(a), len(b))
    i = 0
    while i + _BLOCK <= limit and a[i : i + _BLOCK] == b[i : i + _BLOCK]:
        i += _BLOCK
    while i < limit and a[i] == b[i]:
        i += 1
    return i


def common_suffix_len(a: str, b: str, floor: int = 0) -> int:
    """Length of the common suffix that leaves at least `floor` characters in each."""
    limit = min(len(a), len(b)) - floor
    n = 0
    la, lb = len(a), len(b)
    while n + _BLOCK <= limit and a[la - n - _BLOCK : la - n] == b[lb - n - _BLOCK : lb - n]:
        n += _BLOCK
    while n < limit and a[la - n - 1] == b[lb - n - 1]:
        n += 1
    return n
