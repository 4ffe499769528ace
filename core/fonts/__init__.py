"""Fonts of the PDF reports: DejaVu Sans for every script it covers, Droid Sans
Fallback for CJK, both parsed once per process.

DejaVu Sans (regular, bold, oblique) ships inside matplotlib; the CJK fallback
is committed next to this file with its licence (see NOTICE.md).

Parsing a font costs about 0.1 s for DejaVu and 0.3 s for the 4 MB fallback,
which is most of a report's budget, so each file is parsed once into a
template and every document gets a light copy of it (`attach`). The copy
shares the parsed metrics and gets its own font program and subset, because
fpdf2 subsets the font program in place when it writes a document.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path

import fpdf
import matplotlib
from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

logger = logging.getLogger(__name__)

FONT_DIR = Path(__file__).resolve().parent
DEJAVU_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"

FAMILY = "dejavu"
FALLBACK_FAMILY = "droidfallback"
# Style letters as fpdf2 spells them -> file. Bold italic is never used by the
# reports, so it is not loaded.
PRIMARY_FILES: dict[str, Path] = {
    "": DEJAVU_DIR / "DejaVuSans.ttf",
    "B": DEJAVU_DIR / "DejaVuSans-Bold.ttf",
    "I": DEJAVU_DIR / "DejaVuSans-Oblique.ttf",
}
FALLBACK_FILE = FONT_DIR / "DroidSansFallbackFull.ttf"
# Shown, with a logged warning, for a character no font can draw: a visible
# mark a reader can question, where a missing glyph would print an empty box.
REPLACEMENT = "\ufffd"
# The fpdf2 release whose TTFFont internals `attach` copies.
TEMPLATE_FPDF_VERSION = "2.8.9"


@dataclass(frozen=True)
class _Template:
    font: TTFFont
    program: bytes
    glyph_order: tuple[str, ...]


@cache
def _template(path: Path, fontkey: str, style: str) -> _Template:
    # A throwaway document to parse with; it is never written.
    font = TTFFont(FPDF(), path, fontkey, style)
    return _Template(
        font=font,
        program=path.read_bytes(),
        glyph_order=tuple(font.ttfont.getGlyphOrder()),
    )


def attach(pdf: FPDF, family: str, style: str, path: Path) -> None:
    """Add a font to a document from the per-process template.

    Equivalent to `pdf.add_font(family, style, path)`, without parsing again.
    The copy relies on fpdf2's internals, so any other fpdf2 version than the
    one it was written against gets the plain, slower `add_font`.
    """
    if fpdf.FPDF_VERSION != TEMPLATE_FPDF_VERSION:
        pdf.add_font(family, style, path)
        return
    fontkey = f"{family.lower()}{style}"
    template = _template(path, fontkey, style)
    font = copy.copy(template.font)
    font.i = len(pdf.fonts) + 1
    font.ttfont = ttLib.TTFont(
        BytesIO(template.program), recalcTimestamp=False, lazy=True
    )
    # Deriving glyph names from the cmap again is a third of the fallback's cost.
    font.ttfont.setGlyphOrder(list(template.glyph_order))
    # Written into while the document is output: one of its own per document.
    font.desc = copy.copy(template.font.desc)
    font.subset = SubsetMap(font)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    pdf.fonts[fontkey] = font


@cache
def primary_cmap(style: str = "") -> frozenset[int]:
    return frozenset(_template(PRIMARY_FILES[style], FAMILY + style, style).font.cmap)


@cache
def fallback_cmap() -> frozenset[int]:
    return frozenset(_template(FALLBACK_FILE, FALLBACK_FAMILY, "").font.cmap)


def _drawn_as_is(char: str) -> bool:
    # Line breaks and spaces are layout, not glyphs.
    return char in "\n " or not char.isprintable()


def needs_fallback(text: str, style: str = "") -> bool:
    """True when some character of the text is only in the fallback font."""
    if text.isascii():
        return False
    cmap = primary_cmap(style)
    return any(ord(c) not in cmap and not _drawn_as_is(c) for c in text)


def missing_characters(text: str, styles: Iterable[str] = ("",)) -> list[str]:
    """Characters of the text that neither font can draw in one of the styles."""
    fallback = fallback_cmap()
    missing: dict[str, None] = {}
    for style in styles:
        cmap = primary_cmap(style)
        for char in text:
            code = ord(char)
            if not _drawn_as_is(char) and code not in cmap and code not in fallback:
                missing[char] = None
    return list(missing)


def drawable(text: str, style: str = "") -> str:
    """The text with every character no font covers replaced by a visible mark.

    Control characters other than line breaks become spaces.
    """
    if text.isascii() and text.isprintable():
        # Most of a report: DejaVu covers every printable ASCII character.
        return text
    missing = set(missing_characters(text, (style,)))
    cleaned = "".join(
        " " if c != "\n" and not c.isprintable() else c for c in text if c != "\r"
    )
    if not missing:
        return cleaned
    logger.warning(
        "no font covers %s; printed as %s",
        ", ".join(f"U+{ord(c):04X}" for c in sorted(missing)),
        REPLACEMENT,
    )
    return "".join(REPLACEMENT if c in missing else c for c in cleaned)
