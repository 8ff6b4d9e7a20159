"""One token cache per model: texts -> token counts."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

# Longer texts are counted but not remembered: a line that long is rare, and typing in it
# makes a new key per keystroke.
MAX_CACHED_CHARS = 4_096


class CachedTokenCounter:
    """Token counts with the model's tokenizer, cached per string (LRU).

    Windows are counted line by line, and the same lines are counted again on every
    keystroke: the cache turns ~60 tokenizer calls into ~60 dict look-ups.
    """

    def __init__(self, max_entries: int = 65_536, max_chars: int = 8_000_000) -> None:
        self.max_entries = max_entries
        # Keys are texts: a bound on their total size too (a few long lines must not
        # hold hundreds of MB), and texts longer than MAX_CACHED_CHARS are not kept.
        self.max_chars = max_chars
        self._chars = 0
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._tokenize: Callable[[str], Any] | None = None
        self._owner: object | None = None
        self.hits = 0
        self.misses = 0

    def bind(self, owner: object, tokenize: Callable[[str], Any]) -> CachedTokenCounter:
        """Count with `tokenize` (of `owner`, an engine); another owner empties the cache."""
        if owner is not self._owner:
            self._cache.clear()
            self._chars = 0
            self._owner = owner
        self._tokenize = tokenize
        return self

    def _store(self, text: str, cost: int) -> None:
        if len(text) > MAX_CACHED_CHARS:
            return
        cache = self._cache
        old = cache.pop(text, None)
        if old is not None:
            self._chars -= len(text)
        cache[text] = cost
        self._chars += len(text)
        while cache and (len(cache) > self.max_entries or self._chars > self.max_chars):
            dropped, _ = cache.popitem(last=False)
            self._chars -= len(dropped)

    def known(self, owner: object, texts: set[str]) -> set[str]:
        """Those of `texts` already counted with `owner`'s tokenizer."""
        if owner is not self._owner:
            return set()
        return {text for text in texts if text in self._cache}

    def add(self, owner: object, counts: dict[str, int]) -> None:
        """Counts taken ahead with `owner`'s tokenizer (dropped if another owner has
        taken over); the oldest entries make room."""
        if owner is not self._owner and self._owner is not None:
            return
        self._owner = owner
        for text, cost in counts.items():
            self._store(text, cost)

    def __call__(self, text: str) -> int:
        if not text:
            return 0
        cache = self._cache
        cost = cache.get(text)
        if cost is not None:
            self.hits += 1
            cache.move_to_end(text)
            return cost
        self.misses += 1
        assert self._tokenize is not None, "bind() the counter to a tokenizer first"
        cost = len(self._tokenize(text))
        self._store(text, cost)
        return cost
