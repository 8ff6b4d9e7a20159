"""Each open document's recent edits, coalesced into hunks (what was replaced by what, when).

A hunk is kept in the coordinates of the document as it is now: `new` stands at
`[start, start + len(new))` and replaced `old`. Typing coalesces into the last hunk while
each edit touches it on the same line run (a word typed letter by letter, a selection
replaced, two arguments of one call changed); an edit elsewhere starts a new hunk.
Recording costs O(size of the change) for ranged edits: the text before the edit is kept
by reference (Python strings are immutable) and only sliced around the change.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..sequences import common_prefix_len, common_suffix_len

# Hunks kept per document and over all documents: the model prompt shows a handful, and
# propagation only reads the last one; more costs memory for no use.
MAX_HUNKS_PER_DOCUMENT = 16
MAX_HUNKS_TOTAL = 256
# An edit next to the last hunk joins it only this soon after it: a pause this long means
# the user has moved on, even if they come back to the same spot.
COALESCE_S = 60.0
# A replacement this large (a paste, a reformat, a file reloaded) is not an "edit" a user
# would repeat elsewhere; it ends the history around it instead of filling it.
MAX_HUNK_CHARS = 8_000
# Common prefix/suffix of two texts is compared in blocks this large (C-speed memcmp).


@dataclass
class Hunk:
    """`old` was replaced by `new`, which now stands at `start` in the document."""

    start: int
    old: str
    new: str
    started: float
    updated: float
    version: int | None = None

    @property
    def end(self) -> int:
        return self.start + len(self.new)


@dataclass(frozen=True)
class PendingChange:
    """What `EditHistory.begin` saw before a didChange was applied (see `finish`)."""

    uri: str
    before: str
    start: int | None  # a single ranged change: its span in `before`; else None (diff)
    end: int | None
    new_text: str | None


class EditHistory:
    """Recent hunks of every open document, bounded per document and in total."""

    def __init__(
        self,
        per_document: int = MAX_HUNKS_PER_DOCUMENT,
        total: int = MAX_HUNKS_TOTAL,
        coalesce_s: float = COALESCE_S,
        max_hunk_chars: int = MAX_HUNK_CHARS,
    ) -> None:
        self.per_document = per_document
        self.total = total
        self.coalesce_s = coalesce_s
        self.max_hunk_chars = max_hunk_chars
        self._docs: dict[str, deque[Hunk]] = {}

    # -- reading -----------------------------------------------------------------------

    def hunks(self, uri: str) -> list[Hunk]:
        """The document's hunks, oldest first."""
        return list(self._docs.get(uri, ()))

    def last(self, uri: str) -> Hunk | None:
        hunks = self._docs.get(uri)
        return hunks[-1] if hunks else None

    def count(self) -> int:
        return sum(len(h) for h in self._docs.values())

    def forget(self, uri: str) -> None:
        self._docs.pop(uri, None)

    # -- recording from didChange -------------------------------------------------------

    def begin(self, doc: Any, changes: list[tuple[Any, str]], encoding: str) -> PendingChange:
        """Called before a didChange is applied to `doc` (documents.Document or None).

        A single ranged change (what typing sends) is located here, in the text it applies
        to; anything else is recovered by comparing the texts in `finish`."""
        if doc is None:
            return PendingChange("", "", None, None, None)
        before = doc.text
        if len(changes) == 1 and changes[0][0] is not None:
            rng, text = changes[0]
            start = doc.offset_at(rng[0], rng[1], encoding, strict=False)
            end = doc.offset_at(rng[2], rng[3], encoding, strict=False)
            if end < start:
                start, end = end, start
            return PendingChange(doc.uri, before, start, end, text)
        return PendingChange(doc.uri, before, None, None, None)

    def finish(self, pending: PendingChange, doc: Any, version: int | None = None) -> None:
        """Called after the change was applied: records it as (part of) a hunk."""
        if doc is None or not pending.uri:
            return
        before, after = pending.before, doc.text
        if before is after:
            return
        if pending.start is not None and pending.end is not None and pending.new_text is not None:
            start, end, new = pending.start, pending.end, pending.new_text
            consistent = len(after) == len(before) - (end - start) + len(new) and (
                after[start : start + len(new)] == new
            )
            if consistent:
                self.record(pending.uri, before, after, start, end, start + len(new), version)
                return
        start, old_end, new_end = changed_span(before, after)
        self.record(pending.uri, before, after, start, old_end, new_end, version)

    def record(
        self,
        uri: str,
        before: str,
        after: str,
        start: int,
        old_end: int,
        new_end: int,
        version: int | None = None,
        now: float | None = None,
    ) -> None:
        """`before[start:old_end]` became `after[start:new_end]`."""
        # Editors often resend whole lines (undo, redo, formatting): keep what changed.
        while start < old_end and start < new_end and before[start] == after[start]:
            start += 1
        while old_end > start and new_end > start and before[old_end - 1] == after[new_end - 1]:
            old_end -= 1
            new_end -= 1
        if start == old_end and start == new_end:
            return
        now = time.monotonic() if now is None else now
        hunks = self._docs.setdefault(uri, deque())
        delta = (new_end - start) - (old_end - start)
        last = hunks[-1] if hunks else None
        merged = None
        if last is not None and self._joins(last, before, start, old_end, now):
            merged = last
        # Other hunks: shift the ones after the edit, drop the ones it cut into.
        kept: deque[Hunk] = deque()
        for hunk in hunks:
            if hunk is merged:
                kept.append(hunk)
            elif hunk.start >= old_end:
                hunk.start += delta
                kept.append(hunk)
            elif hunk.end <= start:
                kept.append(hunk)
            # else: the edit changed text inside this older hunk: its `new` is stale.
        hunks = kept
        self._docs[uri] = hunks
        too_big = (old_end - start) + (new_end - start) > self.max_hunk_chars
        if merged is not None:
            lo = min(start, merged.start)
            hi = max(old_end, merged.end)  # in `before` coordinates
            old = before[lo : merged.start] + merged.old + before[merged.end : hi]
            new = after[lo : hi + delta]
            if len(old) + len(new) > self.max_hunk_chars:
                hunks.remove(merged)
            else:
                merged.start, merged.old, merged.new = lo, old, new
                merged.updated = now
                merged.version = version
                if old == new:  # typed and taken back: nothing happened
                    hunks.remove(merged)
        elif not too_big:
            hunks.append(
                Hunk(start, before[start:old_end], after[start:new_end], now, now, version)
            )
        while len(hunks) > self.per_document:
            hunks.popleft()
        if not hunks:
            self._docs.pop(uri, None)
        self._bound_total()

    def _joins(self, last: Hunk, before: str, start: int, old_end: int, now: float) -> bool:
        """Whether an edit of `before[start:old_end]` continues the hunk `last`: soon after
        it, touching it or on the same line (no line break between the two)."""
        if now - last.updated > self.coalesce_s:
            return False
        if start <= last.end and old_end >= last.start:
            return True
        if old_end < last.start:
            return "\n" not in before[old_end : last.start]
        return "\n" not in before[last.end : start]

    def _bound_total(self) -> None:
        excess = self.count() - self.total
        while excess > 0:
            # The document whose oldest hunk is the oldest of all gives one up.
            uri = min(self._docs, key=lambda u: self._docs[u][0].updated)
            self._docs[uri].popleft()
            if not self._docs[uri]:
                del self._docs[uri]
            excess -= 1


def changed_span(before: str, after: str) -> tuple[int, int, int]:
    """(start, end in `before`, end in `after`) of the one region that differs."""
    start = common_prefix_len(before, after)
    tail = common_suffix_len(before, after, start)
    return start, len(before) - tail, len(after) - tail
