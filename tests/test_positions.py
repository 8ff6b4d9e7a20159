"""UTF-16 / UTF-8 / UTF-32 columns map to the same characters on non-ASCII lines."""

import pytest

from copilot_server.documents import DocumentStore
from copilot_server.documents.positions import (
    PositionError,
    column_to_index,
    index_to_column,
    offset_at,
)

LINE = 'msg = "héllo 😀 世界" + name'


@pytest.mark.parametrize(
    ("encoding", "column_after_emoji"),
    [("utf-16", 15), ("utf-8", 18), ("utf-32", 14)],
)
def test_column_after_emoji_maps_to_same_index(encoding, column_after_emoji):
    index = LINE.index("😀") + 1
    assert column_to_index(LINE, column_after_emoji, encoding) == index
    assert index_to_column(LINE, index, encoding) == column_after_emoji


def test_column_inside_surrogate_pair_snaps_to_character_start():
    start = LINE.index("😀")
    assert column_to_index(LINE, index_to_column(LINE, start, "utf-16") + 1, "utf-16") == start


def test_line_past_end_is_an_error_when_strict():
    with pytest.raises(PositionError):
        offset_at("a\nb", 5, 0, "utf-16")
    assert offset_at("a\nb", 5, 0, "utf-16", strict=False) == 3


def test_crlf_lines_count_once():
    text = "one\r\ntwo\r\nthree"
    assert text[offset_at(text, 2, 2, "utf-16") :] == "ree"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8"])
def test_incremental_change_after_emoji_lands_at_the_right_place(encoding):
    store = DocumentStore()
    store.open("file:///x.py", "python", 1, LINE + "\n")
    column = index_to_column(LINE, LINE.index("😀") + 1, encoding)
    store.change("file:///x.py", 2, [((0, column, 0, column), "!")], encoding)
    assert store.get("file:///x.py").text.startswith('msg = "héllo 😀! 世界"')


def test_line_index_stays_equal_to_a_fresh_scan_across_edits():
    import random

    from copilot_server.documents import Document
    from copilot_server.documents.positions import line_starts

    rng = random.Random(7)
    doc = Document("file:///a.py", "python", 1, "a = 1\nb = 2\n\nc = 3\n")
    for _ in range(300):
        doc.offset_at(0, 0, "utf-16")  # builds / uses the cached index
        start = rng.randrange(len(doc.text) + 1)
        end = min(len(doc.text), start + rng.randrange(4))
        doc.replace(start, end, rng.choice(["", "x", "\n", "yy\nz", "\n\n", "é😀"]))
        assert doc.__dict__["_starts_cache"][1] == line_starts(doc.text)
