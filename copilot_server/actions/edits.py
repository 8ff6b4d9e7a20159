"""The smallest edits from an old region to its rewrite."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..sequences import common_prefix_len, common_suffix_len
from .regions import Region, region_span


@dataclass(frozen=True)
class Edit:
    """Replace text[start:end] (Python str offsets) with new_text."""

    start: int
    end: int
    new_text: str


def region_edits(text: str, region: Region, new_region_text: str) -> list[Edit]:
    """The smallest edits turning the region's text into `new_region_text`.

    Lines are matched with difflib; each changed run of lines is then cut down to the
    characters that differ, so a missing colon becomes an insertion of ":".
    """
    begin, end = region_span(text, region)
    old_lines = text[begin:end].splitlines(keepends=True)
    new_lines = new_region_text.splitlines(keepends=True)
    offsets = [begin]
    for line in old_lines:
        offsets.append(offsets[-1] + len(line))
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    edits: list[Edit] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old = "".join(old_lines[i1:i2])
        new = "".join(new_lines[j1:j2])
        start = offsets[i1]
        prefix = common_prefix_len(old, new)
        suffix = common_suffix_len(old[prefix:], new[prefix:])
        edits.append(
            Edit(start + prefix, start + len(old) - suffix, new[prefix : len(new) - suffix])
        )
    return edits


def apply_edits(text: str, edits: list[Edit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.new_text + text[edit.end :]
    return text


def unified_diff(path: str, old: str, new: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=path if path.startswith("/") else f"a/{path}",
            tofile=path if path.startswith("/") else f"b/{path}",
        )
    )
