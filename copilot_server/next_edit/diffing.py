"""The smallest edit that turns one text into another, and how far apart edits lie."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..sequences import common_prefix_len, common_suffix_len

# Changed lines closer than this are one edit: two fixes two lines apart read as one
# change to a reader; further apart they are two suggestions, and we show the nearer.
JOIN_LINES = 2


@dataclass(frozen=True)
class Edit:
    """Replace `[start, end)` of a document (Python str offsets) with `text`."""

    start: int
    end: int
    text: str
    source: str = ""

    def apply(self, document: str) -> str:
        return document[: self.start] + self.text + document[self.end :]

    def changes(self, document: str) -> bool:
        return document[self.start : self.end] != self.text

    def shifted(self, by: int) -> Edit:
        return Edit(self.start + by, self.end + by, self.text, self.source)


def smallest_edit(old: str, new: str, base: int = 0) -> Edit | None:
    """The one replacement covering every difference (common prefix and suffix trimmed);
    None when the texts are equal. Offsets are into `old`, plus `base`."""
    if old == new:
        return None
    start = common_prefix_len(old, new)
    tail = common_suffix_len(old, new, start)
    return Edit(base + start, base + len(old) - tail, new[start : len(new) - tail])


def line_edits(old: str, new: str, base: int = 0) -> list[Edit]:
    """The differences as separate edits, one per group of nearby changed lines, each
    trimmed to its smallest form; in document order."""
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    groups: list[list[int]] = []  # [a0, a1, b0, b1] line ranges
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if groups and i1 - groups[-1][1] <= JOIN_LINES:
            groups[-1][1], groups[-1][3] = i2, j2
        else:
            groups.append([i1, i2, j1, j2])
    starts_a = _line_offsets(a)
    starts_b = _line_offsets(b)
    edits = []
    for i1, i2, j1, j2 in groups:
        part_a = old[starts_a[i1] : starts_a[i2]]
        part_b = new[starts_b[j1] : starts_b[j2]]
        edit = smallest_edit(part_a, part_b, base + starts_a[i1])
        if edit is not None:
            edits.append(edit)
    return edits


def nearest_edit(edits: list[Edit], cursor: int) -> Edit | None:
    """The edit closest to the cursor (ties: the one after it, where the eye goes next)."""
    if not edits:
        return None

    def distance(edit: Edit) -> tuple[int, int]:
        if edit.start <= cursor <= edit.end:
            return (0, 0)
        if edit.start > cursor:
            return (edit.start - cursor, 0)
        return (cursor - edit.end, 1)

    return min(edits, key=distance)


def _line_offsets(lines: list[str]) -> list[int]:
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    return offsets
