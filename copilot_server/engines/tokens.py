"""One token cache per model: texts -> token counts, and prompt parts -> tokens."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

# Longer texts are counted but not remembered: a line that long is rare, and typing in it
# makes a new key per keystroke.
MAX_CACHED_CHARS = 4_096

# Everything but the typed line is identical between keystrokes: tokenizing the prefix
# and suffix again cost 2.5-8 ms per request (context benchmark); a hit costs ~0.1 ms.
MAX_CACHED_PARTS = 512


def _owner_ref(owner: object) -> Callable[[], object | None]:
    """A reference to `owner` that does not keep it alive where it can be weakly referenced:
    the cache hangs off the engine and must not hold a freed model in memory."""
    try:
        return weakref.ref(owner)
    except TypeError:  # plain stand-ins (object()) in tests
        return lambda: owner


def _no_owner() -> None:
    return None


class CachedTokenCounter:
    """Token counts with the model's tokenizer, cached per string (LRU).

    Windows are counted line by line, and the same lines are counted again on every
    keystroke: the cache turns ~60 tokenizer calls into ~60 dict look-ups. Prompt parts
    keep their tokens too (`tokens`). Safe to share between threads: the context engine,
    the count-ahead thread and explain/fix workers read the one cache of their engine.
    """

    def __init__(self, max_entries: int = 65_536, max_chars: int = 8_000_000) -> None:
        self.max_entries = max_entries
        # Keys are texts: a bound on their total size too (a few long lines must not
        # hold hundreds of MB), and texts longer than MAX_CACHED_CHARS are not kept.
        self.max_chars = max_chars
        self._chars = 0
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._parts: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._tokenize: Callable[..., Any] | None = None
        self._owner: Callable[[], object | None] = _no_owner
        # Held for dict updates only, never across a tokenizer call (one can be HTTP).
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def bind(self, owner: object, tokenize: Callable[..., Any]) -> CachedTokenCounter:
        """Count with `tokenize` (of `owner`, an engine); another owner empties the cache."""
        with self._lock:
            if owner is not self._owner():
                self._cache.clear()
                self._parts.clear()
                self._chars = 0
                self._owner = _owner_ref(owner)
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
        with self._lock:
            if owner is not self._owner():
                return set()
            return {text for text in texts if text in self._cache}

    def add(self, owner: object, counts: dict[str, int]) -> None:
        """Counts taken ahead with `owner`'s tokenizer (dropped if another owner has
        taken over); the oldest entries make room."""
        with self._lock:
            current = self._owner()
            if owner is not current and current is not None:
                return
            self._owner = _owner_ref(owner)
            for text, cost in counts.items():
                self._store(text, cost)

    def __call__(self, text: str) -> int:
        if not text:
            return 0
        with self._lock:
            cost = self._cache.get(text)
            if cost is not None:
                self.hits += 1
                self._cache.move_to_end(text)
                return cost
            self.misses += 1
            tokenize = self._tokenize
            part = self._parts.get(text)
        if part is not None:
            cost = len(part)
        else:
            assert tokenize is not None, "bind() the counter to a tokenizer first"
            cost = len(tokenize(text))
        with self._lock:
            self._store(text, cost)
        return cost

    def tokens(self, text: str) -> tuple[int, ...]:
        """`text`'s tokens as a prompt part: special=False, so code that happens to contain
        "<|fim_prefix|>" stays text. The last MAX_CACHED_PARTS parts are kept."""
        if not text:
            return ()
        with self._lock:
            cached = self._parts.get(text)
            if cached is not None:
                self._parts.move_to_end(text)
                return cached
            tokenize = self._tokenize
        assert tokenize is not None, "bind() the counter to a tokenizer first"
        cached = tuple(tokenize(text, special=False))
        with self._lock:
            self._parts[text] = cached
            while len(self._parts) > MAX_CACHED_PARTS:
                self._parts.popitem(last=False)
        return cached


_caches: weakref.WeakKeyDictionary[Any, CachedTokenCounter] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def token_cache(engine: Any) -> CachedTokenCounter:
    """The one token cache of `engine`, made on first use and dropped with the engine.
    A stand-in that cannot be weakly referenced gets a fresh cache each call."""
    try:
        with _caches_lock:
            cache = _caches.get(engine)
            if cache is None:
                cache = _caches[engine] = CachedTokenCounter()
                cache.bind(engine, _tokenizer_of(engine))
    except TypeError:
        return CachedTokenCounter().bind(engine, engine.tokenize)
    return cache


def _tokenizer_of(engine: Any) -> Callable[..., Any]:
    """`engine.tokenize` without holding the engine: the cache is a value of `_caches`,
    keyed weakly by the engine, and a strong reference back would keep it forever."""
    engine_ref = weakref.ref(engine)

    def tokenize(text: str, **options: Any) -> Any:
        live = engine_ref()
        assert live is not None, "the engine's cache outlived it"
        return live.tokenize(text, **options)

    return tokenize
