"""The embedded fonts of a letter: which characters they print, and each font loaded, subset and
attached to a PDF once per process.

Embedding is prepared once per process too. fpdf2 subsets every font again for every document
(fontTools subsetting, a 128 KiB CIDToGIDMap, zlib), about half of a letter's render time. Each
face is instead reduced once to a fixed set of characters (_FIXED: printable ASCII and the
typographic marks letters use), and its PDF objects (font file, widths, ToUnicode, CIDToGIDMap)
are built and compressed once; every document's code map starts as that set's, so a letter
whose text stays inside it reuses those bytes (:class:`LetterOutput`). A letter that uses any
other character the fonts print (an accented name, say) is embedded by fpdf2's own per-document
subsetting, exactly as before: correct, just slower.
"""

from __future__ import annotations

import copy
import io
import threading
import zlib
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from fontTools import subset as ftsubset
from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont
from fpdf.output import (
    CIDSystemInfo,
    OutputProducer,
    PDFFont,
    PDFFontStream,
    _build_cmap_blocks,
    _tt_font_widths,
)
from fpdf.syntax import Name, PDFArray, PDFContentStream

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
# Embedded from bytes prepared once per process: what nearly every letter prints.
_FIXED = [*range(0x20, 0x7F), 0xA0, 0x2013, 0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2026]
_PT = 25.4 / 72  # mm per point


# --------------------------------------------------------------------------- fonts


class _Prepared(NamedTuple):
    """A face's PDF objects for the _FIXED characters, built and compressed once."""

    char_ids: dict  # fpdf2 Glyph -> code in the document's text, as a fresh SubsetMap gives
    next_id: int  # the SubsetMap state after picking them
    reserved: list[int]
    font_file: bytes  # zlib-compressed TrueType
    font_length: int  # uncompressed size (/Length1)
    widths: str  # the CIDFont's /W array
    to_unicode: bytes  # zlib-compressed ToUnicode CMap
    cid_to_gid: bytes  # zlib-compressed CIDToGIDMap


class _FontProto(NamedTuple):
    raw: bytes  # the font reduced to _CHARSET, as a TrueType file
    proto: TTFFont  # parsed metrics, shared read-only by every document
    widths: dict[int, int]  # codepoint -> advance in 1/1000 em
    missing_width: int
    ascent: float  # fraction of the em
    prepared: _Prepared


_FONT_KEYS = {f"{family}{style}": (family, style) for family, style in _FONT_FILES}
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


def prepare_fonts() -> None:
    """Load, reduce and prepare every face now (a worker calls it before its first letter)."""
    for key in _FONT_FILES:
        _load_font(key)


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
            prepared=None,  # type: ignore[arg-type]  # set just below
        )
        entry = entry._replace(prepared=_prepare(entry))
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


def _document_font(entry: _FontProto, fontkey: str, index: int) -> TTFFont:
    """A font object for one document: shares the parsed metrics, owns what fpdf2 mutates
    while writing (code map, font tables, descriptor); its code map starts as _FIXED's."""
    proto = entry.proto
    font = TTFFont.__new__(TTFFont)
    for name in TTFFont.__slots__:
        if hasattr(proto, name):
            setattr(font, name, getattr(proto, name))
    font.i = index
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
    if entry.prepared is not None:
        prepared = entry.prepared
        font.subset._char_id_per_glyph = dict(prepared.char_ids)
        font.subset._next = prepared.next_id
        font.subset._reserved = list(prepared.reserved)
    return font


def _prepare(entry: _FontProto) -> _Prepared:
    """What fpdf2's writer would embed for a document using every _FIXED character, built once
    (same subsetting options, code map, widths, ToUnicode and CIDToGIDMap as fpdf2 2.8)."""
    font = _document_font(entry, "prepare", 0)
    for cp in _FIXED:
        if cp in font.glyph_ids:
            font.subset.pick(cp)
    options = ftsubset.Options(notdef_outline=True, recommended_glyphs=True)
    options.drop_tables += ["FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "meta"]
    subsetter = ftsubset.Subsetter(options)
    subsetter.populate(glyphs=font.subset.get_all_glyph_names())
    ttfont = ttLib.TTFont(io.BytesIO(entry.raw), recalcTimestamp=False)
    subsetter.subset(ttfont)
    buf = io.BytesIO()
    ttfont.save(buf)
    raw = buf.getvalue()
    bf_chars = []
    gid_map = bytearray(256 * 256 * 2)
    for glyph, code in font.subset.items():
        if glyph is None:
            continue
        gid = ttfont.getGlyphID(glyph.glyph_name)
        gid_map[code * 2], gid_map[code * 2 + 1] = gid >> 8, gid & 0xFF
        if isinstance(glyph.unicode, tuple) and glyph.unicode:
            bf_chars.append(f"<{code:04X}> <{''.join(f'{u:04X}' for u in glyph.unicode)}>\n")
    to_unicode = (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo\n"
        "<</Registry (Adobe)\n/Ordering (UCS)\n/Supplement 0\n>> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        f"{_build_cmap_blocks(bf_chars, 'bfchar')}"
        "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
    )
    prepared = _Prepared(
        char_ids=dict(font.subset._char_id_per_glyph),
        next_id=font.subset._next,
        reserved=list(font.subset._reserved),
        font_file=zlib.compress(raw),
        font_length=len(raw),
        widths=_tt_font_widths(font),
        to_unicode=zlib.compress(to_unicode.encode("latin-1")),
        cid_to_gid=zlib.compress(bytes(gid_map)),
    )
    font.subset.pick.cache_clear()  # fpdf2's caches are per class: drop this map's entries
    font.subset.get_glyph.cache_clear()
    return prepared


def _compressed_stream(data: bytes, cls: type = PDFContentStream) -> PDFContentStream:
    stream = cls(b"") if cls is PDFFontStream else cls(b"", compress=True)
    stream._contents, stream.length = data, len(data)
    stream.filter = Name("FlateDecode")
    return stream


class LetterOutput(OutputProducer):
    """fpdf2's writer, embedding a cached face from its prepared objects when the document's
    text stayed inside _FIXED (its code map is then exactly the prepared one)."""

    def _add_fonts(self, *args, **kwargs):
        fonts = self.fpdf.fonts
        fast = {}
        for fontkey, font in fonts.items():
            entry = _fonts.get(_FONT_KEYS.get(fontkey))
            if (
                entry is not None
                and isinstance(font, TTFFont)
                and font.glyph_ids is entry.proto.glyph_ids  # attached from the cache
                and len(font.subset) == len(entry.prepared.char_ids)
                and not font.missing_glyphs
            ):
                fast[fontkey] = entry
        if not fast:
            return super()._add_fonts(*args, **kwargs)
        aside = {fontkey: fonts.pop(fontkey) for fontkey in fast}  # fpdf2 writes the rest
        try:
            objects = super()._add_fonts(*args, **kwargs)
        finally:
            fonts.update(aside)
        for fontkey, entry in fast.items():
            font = fonts[fontkey]
            objects[font.i] = self._add_prepared(font, entry.prepared)
        return objects

    def _add_prepared(self, font: TTFFont, prepared: _Prepared) -> PDFFont:
        fontname = f"MPDFAA+{font.name}"
        composite = PDFFont(subtype="Type0", base_font=fontname, encoding="Identity-H")
        self._add_pdf_obj(composite, "fonts")
        cid_font = PDFFont(
            subtype="CIDFontType2",
            base_font=fontname,
            d_w=font.desc.missing_width,
            w=prepared.widths,
        )
        self._add_pdf_obj(cid_font, "fonts")
        composite.descendant_fonts = PDFArray([cid_font])
        to_unicode = _compressed_stream(prepared.to_unicode)
        self._add_pdf_obj(to_unicode, "fonts")
        composite.to_unicode = to_unicode
        system_info = CIDSystemInfo()
        self._add_pdf_obj(system_info, "fonts")
        cid_font.c_i_d_system_info = system_info
        descriptor = font.desc
        descriptor.font_name = Name(fontname)
        self._add_pdf_obj(descriptor, "fonts")
        cid_font.font_descriptor = descriptor
        gid_map = _compressed_stream(prepared.cid_to_gid)
        self._add_pdf_obj(gid_map, "fonts")
        cid_font.c_i_d_to_g_i_d_map = gid_map
        font_file = _compressed_stream(prepared.font_file, PDFFontStream)
        font_file.length1 = prepared.font_length
        self._add_pdf_obj(font_file, "fonts")
        descriptor.font_file2 = font_file
        font.subset.pick.cache_clear()
        font.subset.get_glyph.cache_clear()
        font.close()
        return composite


def _attach_font(pdf: FPDF, key: tuple[str, str], cached: bool) -> None:
    fontkey = f"{key[0]}{key[1]}"
    if fontkey in pdf.fonts:
        return
    if not cached:  # baseline for bench/render_compare.py: fpdf2 parses the file itself
        pdf.add_font(key[0], key[1], str(FONT_DIR / _FONT_FILES[key]))
        return
    pdf.fonts[fontkey] = _document_font(_load_font(key), fontkey, len(pdf.fonts) + 1)
