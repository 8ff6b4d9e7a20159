"""Builds media/copilot-server-icons.woff: the status bar icon `$(copilot-server-logo)`.

A text box with a caret and a dashed ghost suggestion after it, drawn on a 1000-unit em
(package.json `contributes.icons` maps U+E000 to it). Run with any Python that has
fontTools (the project's .venv has it): `.venv/bin/python editors/vscode/media/make_icons.py`.
The output is committed; it is the same on every run (fixed timestamps).
"""

from __future__ import annotations

from pathlib import Path

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen

CODEPOINT = 0xE000
OUT = Path(__file__).with_name("copilot-server-icons.woff")
# 2024-01-01 in the font's epoch (seconds since 1904-01-01): reproducible bytes.
TIMESTAMP = 3786825600


def rect(pen: TTGlyphPen, x0: int, y0: int, x1: int, y1: int, hole: bool = False) -> None:
    """A rectangle; TrueType fills clockwise contours and cuts counter-clockwise ones."""
    points = [(x0, y0), (x0, y1), (x1, y1), (x1, y0)]
    if hole:
        points.reverse()
    pen.moveTo(points[0])
    for point in points[1:]:
        pen.lineTo(point)
    pen.closePath()


def logo() -> object:
    pen = TTGlyphPen(None)
    rect(pen, 50, -125, 950, 775)  # the box
    rect(pen, 140, -35, 860, 685, hole=True)
    rect(pen, 250, 95, 330, 555)  # the caret
    rect(pen, 400, 290, 560, 360)  # the ghost suggestion after it
    rect(pen, 620, 290, 760, 360)
    return pen.glyph()


def main() -> None:
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder([".notdef", "logo"])
    builder.setupCharacterMap({CODEPOINT: "logo"})
    builder.setupGlyf({".notdef": TTGlyphPen(None).glyph(), "logo": logo()})
    builder.setupHorizontalMetrics({".notdef": (1000, 0), "logo": (1000, 50)})
    builder.setupHorizontalHeader(ascent=875, descent=-125)
    builder.setupNameTable({"familyName": "copilot-server-icons", "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=875, sTypoDescender=-125, usWinAscent=875, usWinDescent=125)
    builder.setupPost()
    builder.updateHead(created=TIMESTAMP, modified=TIMESTAMP)
    builder.font.flavor = "woff"
    builder.save(str(OUT))


if __name__ == "__main__":
    main()
