"""Token counts reported while an action generates."""

from __future__ import annotations

from collections.abc import Callable

TokenCallback = Callable[[int], None]


def counting(check: Callable[[str], bool], on_token: TokenCallback | None) -> Callable[[str], bool]:
    count = 0

    def should_stop(text: str) -> bool:
        nonlocal count
        count += 1
        if on_token is not None:
            on_token(count)
        return check(text)

    return should_stop
