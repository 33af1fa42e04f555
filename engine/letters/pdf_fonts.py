"""The embedded fonts of a letter: which characters they print, and each font loaded, subset and
attached to a PDF once per process."""

from __future__ import annotations

import copy
import io
import threading
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from fontTools import subset as ftsubset
from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

FONT_DIR = Path(__file__).resolve().parent / "fonts"
_FONT_FILES: dict[tuple[str, str], str] = {
    ("serif", ""): "LiberationSerif-Regular.ttf",
    ("serif", "B"): "LiberationSerif-Bold.ttf",
    ("serif", "I"): "LiberationSerif-Italic.ttf",
    ("serif", "BI"): "LiberationSerif-BoldItalic.ttf",
    ("sans", ""): "LiberationSans-Regular.ttf",
    ("sans", "B"): "LiberationSans-Bold.ttf",
    ("sans", "I"): "LiberationSans-Regular.ttf",  # no sans italic shipped: upright
    ("sans", "BI"): "LiberationSans-Bold.ttf",
}
# Latin-1, Latin Extended-A, typographic punctuation: every name the civil registry holds.
_CHARSET = [
    *range(0x20, 0x7F),
    *range(0xA0, 0x180),
    *range(0x2010, 0x2028),
    0x2030,
    0x2039,
    0x203A,
    0x20AC,
    0x2122,
]
_PT = 25.4 / 72  # mm per point


# --------------------------------------------------------------------------- fonts


class _FontProto(NamedTuple):
    raw: bytes  # the font reduced to _CHARSET, as a TrueType file
    proto: TTFFont  # parsed metrics, shared read-only by every document
    widths: dict[int, int]  # codepoint -> advance in 1/1000 em
    missing_width: int
    ascent: float  # fraction of the em


_font_lock = threading.Lock()
_fonts: dict[tuple[str, str], _FontProto] = {}


@lru_cache(maxsize=1)
def printable_codepoints() -> frozenset[int]:
    """Every code point every embedded font face prints: the intersection of the faces' actual
    cmaps with the _CHARSET they are reduced to. A character outside it would silently vanish
    from the PDF, so input is checked against this (engine.text.unprintable_problem)."""
    covered: set[int] | None = None
    for name in sorted(set(_FONT_FILES.values())):
        font = ttLib.TTFont(FONT_DIR / name, lazy=True)
        try:
            cmap = set(font.getBestCmap())
        finally:
            font.close()
        covered = cmap if covered is None else covered & cmap
    return frozenset((covered or set()) & set(_CHARSET))


def unprintable(text: str) -> list[str]:
    """The distinct characters of `text` the letter's fonts cannot print, in order of first
    appearance. Whitespace (space, line break, tab) is layout, not a glyph, and never listed."""
    allowed = printable_codepoints()
    seen: list[str] = []
    for ch in text:
        if ord(ch) not in allowed and ch not in " \n\r\t" and ch not in seen:
            seen.append(ch)
    return seen


def _load_font(key: tuple[str, str]) -> _FontProto:
    found = _fonts.get(key)
    if found is not None:
        return found
    with _font_lock:
        found = _fonts.get(key)
        if found is not None:
            return found
        font = ttLib.TTFont(FONT_DIR / _FONT_FILES[key], recalcTimestamp=False)
        # No layout tables (fpdf2 does not shape Latin text) and no TrueType hinting (the
        # PDF rasteriser hints itself): fewer tables make the per-document subset cheaper.
        options = ftsubset.Options(notdef_outline=True, recommended_glyphs=True, hinting=False)
        options.layout_features = []
        options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "FFTM", "hdmx", "meta", "DSIG"]
        subsetter = ftsubset.Subsetter(options)
        subsetter.populate(unicodes=_CHARSET)
        subsetter.subset(font)
        buf = io.BytesIO()
        font.save(buf)
        raw = buf.getvalue()
        # TTFFont wants an FPDF and a file; this one parse is the cost the cache saves.
        holder = FPDF()
        path = FONT_DIR / _FONT_FILES[key]
        proto = TTFFont(holder, path, f"{key[0]}{key[1]}", key[1])
        proto.ttfont = ttLib.TTFont(io.BytesIO(raw), recalcTimestamp=False, lazy=True)
        reduced = _parse_metrics(raw)
        proto.cmap, proto.glyph_ids, widths = reduced
        proto.cw = _widths_default(widths, proto.desc.missing_width)
        entry = _FontProto(
            raw=raw,
            proto=proto,
            widths=widths,
            missing_width=proto.desc.missing_width,
            ascent=proto.desc.ascent / 1000,
        )
        _fonts[key] = entry
        return entry


def _parse_metrics(raw: bytes) -> tuple[dict[int, str], dict[int, int], dict[int, int]]:
    font = ttLib.TTFont(io.BytesIO(raw), lazy=True)
    scale = 1000 / font["head"].unitsPerEm
    cmap: dict[int, str] = dict(font.getBestCmap())
    hmtx = font["hmtx"].metrics
    glyph_ids = {cp: font.getGlyphID(name) for cp, name in cmap.items()}
    widths = {cp: round(scale * hmtx[name][0] + 0.001) for cp, name in cmap.items()}
    return cmap, glyph_ids, widths


def _widths_default(widths: dict[int, int], missing: int) -> dict[int, float]:
    cw: dict[int, float] = defaultdict(lambda: missing)
    cw.update(widths)
    return cw


def _attach_font(pdf: FPDF, key: tuple[str, str], cached: bool) -> None:
    fontkey = f"{key[0]}{key[1]}"
    if fontkey in pdf.fonts:
        return
    if not cached:  # baseline for bench/render_compare.py: fpdf2 parses the file itself
        pdf.add_font(key[0], key[1], str(FONT_DIR / _FONT_FILES[key]))
        return
    entry = _load_font(key)
    proto = entry.proto
    font = TTFFont.__new__(TTFFont)
    for name in TTFFont.__slots__:
        if hasattr(proto, name):
            setattr(font, name, getattr(proto, name))
    # Per document: everything fpdf2 mutates while writing (subset map, font tables, descriptor).
    font.i = len(pdf.fonts) + 1
    font.fontkey = fontkey
    font.ttfont = ttLib.TTFont(
        io.BytesIO(entry.raw), recalcTimestamp=False, recalcBBoxes=False, lazy=True
    )
    font.cw = _widths_default(entry.widths, entry.missing_width)
    font.desc = copy.copy(proto.desc)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font._hbfont = None
    font.color_font = None
    font.subset = SubsetMap(font)
    pdf.fonts[fontkey] = font
