"""The layout engine: letter markup (the XML a template renders to) laid out on pages with fpdf2
primitives, the vector QR code in the signature block, the regency emblem of the kop (its PDF
image prepared once per process per emblem) and the footer repeated on every page."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from fpdf import FPDF
from PIL import Image

from engine.errors import SuratDesaError
from engine.letters.layout_emblem import (
    PLACEHOLDER_RATIO,
    Emblem,
    draw_emblem,
    draw_placeholder,
    prepared_emblem,
)
from engine.letters.layout_qr import (  # QR_MAX_MM, qr_print_size: also imported from here
    QR_MAX_MM,
    QR_MODULE_MIN_MM,
    _draw_qr,
    qr_print_size,
)
from engine.letters.pdf_fonts import _PT, _attach_font, _load_font

__all__ = ["QR_MAX_MM", "QR_MODULE_MIN_MM", "Emblem", "TemplateMarkupError", "qr_print_size"]


class TemplateMarkupError(SuratDesaError, ValueError):
    """The template rendered to markup this renderer cannot lay out."""


# --------------------------------------------------------------------------- layout


class _Style(NamedTuple):
    family: str
    bold: bool
    italic: bool
    underline: bool
    size: float  # pt

    @property
    def key(self) -> tuple[str, str]:
        return (self.family, ("B" if self.bold else "") + ("I" if self.italic else ""))


class _Atom(NamedTuple):
    text: str
    style: _Style
    width: float  # mm


_DRAFT_NOTICE = "DRAFT \u2013 PRATINJAU, BELUM DITANDATANGANI, TIDAK BERLAKU SEBAGAI SURAT RESMI"
_SPACE = object()
_BREAK = object()
_WS = re.compile(r"[ \t\r\n]+")


def _num(el: ET.Element, name: str, default: float) -> float:
    value = el.get(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise TemplateMarkupError(f"<{el.tag} {name}={value!r}>: not a number") from None


class _Layout:
    def __init__(
        self,
        pdf: FPDF,
        paper: tuple[float, float],
        root: ET.Element,
        *,
        cached: bool,
        draft: bool,
        verify_url: str | None,
        base_dir: Path,
        qr_text: str | None = None,
        qr_mask: str = "fast",
        emblem: Emblem | None = None,
    ) -> None:
        self.pdf = pdf
        self.emblem = emblem
        self.footers = root.findall("footer")
        self.footer_h: float | None = None
        self.qr_mask = qr_mask
        self.qr_text = qr_text or verify_url  # the QR may carry more than the printed URL
        self.page_w, self.page_h = paper
        self.cached = cached
        self.draft = draft
        self.verify_url = verify_url
        self.base_dir = base_dir
        self.top = _num(root, "margin-top", 15)
        self.bottom = self.page_h - _num(root, "margin-bottom", 20)
        self.left = _num(root, "margin-left", 25)
        self.right = self.page_w - _num(root, "margin-right", 20)
        family = root.get("font", "serif")
        if family not in ("serif", "sans"):
            raise TemplateMarkupError(f"<letter font={family!r}>: use serif or sans")
        self.base = _Style(family, False, False, False, _num(root, "size", 12))
        self.leading = _num(root, "leading", 1.2)
        self.y = self.top
        self.breakable = True
        self.qr_count = 0
        self.current: tuple[tuple[str, str], float, bool] | None = None

    # --- pages

    def new_page(self) -> None:
        self.pdf.add_page()
        self.current = None
        self.y = self.top
        if self.draft:
            self._watermark()
        for footer in self.footers:
            self._footer(footer)

    def _footer(self, el: ET.Element) -> None:
        """The footer's blocks at the foot of the page, inside the bottom margin."""
        was, self.breakable = self.breakable, False
        x, w = self.left, self.right - self.left
        try:
            if self.footer_h is None:
                self.y = 0.0
                self.blocks(el, x, w, False)
                self.footer_h = self.y
            self.y = self.page_h - _num(el, "bottom", 7) - self.footer_h
            self.blocks(el, x, w, True)
        finally:
            self.breakable = was
            self.y = self.top

    def _watermark(self) -> None:
        pdf = self.pdf
        style = _Style("serif", True, False, False, 150)  # the body's bold: no extra font
        self._set_font(style)
        w = self._width("DRAFT", style)
        cx, cy = self.page_w / 2, self.page_h / 2
        pdf.set_text_color(218)
        with pdf.rotation(angle=55, x=cx, y=cy):
            pdf.text(cx - w / 2, cy + 150 * _PT * 0.35, "DRAFT")
        # Text extractors skip diagonal text: say it once more, horizontally, in the margin.
        notice = _Style("serif", True, False, False, 8)
        self._set_font(notice)
        pdf.set_text_color(110)
        nw = self._width(_DRAFT_NOTICE, notice)
        pdf.text((self.page_w - nw) / 2, 6.5, _DRAFT_NOTICE)
        pdf.set_text_color(0)

    def ensure(self, h: float) -> None:
        if self.breakable and self.y + h > self.bottom + 0.01 and self.y > self.top + 0.01:
            self.new_page()

    # --- text measuring and drawing

    def _width(self, text: str, style: _Style) -> float:
        return _text_width(text, style.key, style.size)

    def _set_font(self, style: _Style) -> None:
        key = style.key
        state = (key, style.size, style.underline)
        if state == self.current:
            return
        _attach_font(self.pdf, key, self.cached)
        self.pdf.set_font(key[0], key[1] + ("U" if style.underline else ""), style.size)
        self.current = state

    def _inline(self, el: ET.Element, style: _Style, out: list[object]) -> None:
        def text(s: str | None, st: _Style) -> None:
            if not s:
                return
            parts = _WS.split(s)
            for i, part in enumerate(parts):
                if i > 0:
                    out.append(_SPACE)
                if part:
                    out.append(_Atom(part, st, self._width(part, st)))

        text(el.text, style)
        for child in el:
            tag = child.tag
            if tag == "br":
                out.append(_BREAK)
            elif tag in ("b", "strong"):
                self._inline(child, style._replace(bold=True), out)
            elif tag in ("i", "em"):
                self._inline(child, style._replace(italic=True), out)
            elif tag == "u":
                self._inline(child, style._replace(underline=True), out)
            elif tag == "span":
                self._inline(child, style._replace(size=_num(child, "size", style.size)), out)
            else:
                raise TemplateMarkupError(f"<{tag}> is not allowed inside text")
            text(child.tail, style)

    def _lines(self, pieces: list[object], avail: float, indent: float) -> list[tuple[list, bool]]:
        """Greedy line breaking. Returns (words, hard_end); a word is a list of atoms."""
        words: list[list[_Atom] | object] = []
        word: list[_Atom] = []
        for piece in pieces:
            if isinstance(piece, _Atom):
                word.append(piece)
                continue
            if word:
                words.append(word)
                word = []
            if piece is _BREAK:
                words.append(_BREAK)
        if word:
            words.append(word)

        lines: list[tuple[list, bool]] = []
        line: list[list[_Atom]] = []
        used = 0.0
        width = avail - indent
        for w in words:
            if w is _BREAK:
                lines.append((line, True))
                line, used, width = [], 0.0, avail
                continue
            ww = sum(a.width for a in w)
            gap = self._width(" ", w[0].style) if line else 0.0
            if line and used + gap + ww > width:
                lines.append((line, False))
                line, used, width, gap = [], 0.0, avail, 0.0
            if not line and ww > width:  # a word longer than the line: cut it
                for chunk in self._cut(w, width):
                    if line:
                        lines.append((line, False))
                    line, width = [chunk], avail
                    used = sum(a.width for a in chunk)
                continue
            line.append(w)
            used += gap + ww
        if line or not lines:
            lines.append((line, True))
        return lines

    def _cut(self, word: list[_Atom], width: float) -> list[list[_Atom]]:
        chunks: list[list[_Atom]] = []
        cur: list[_Atom] = []
        used = 0.0
        for atom in word:
            start = 0
            for i, ch in enumerate(atom.text):
                cw = self._width(ch, atom.style)
                if used + cw > width and (cur or i > start):
                    if i > start:
                        cur.append(self._atom(atom.text[start:i], atom.style))
                    chunks.append(cur)
                    cur, used, start = [], 0.0, i
                used += cw
            if start < len(atom.text):
                cur.append(self._atom(atom.text[start:], atom.style))
        if cur:
            chunks.append(cur)
        return chunks

    def _atom(self, text: str, style: _Style) -> _Atom:
        return _Atom(text, style, self._width(text, style))

    def _draw_line(
        self,
        words: list[list[_Atom]],
        x: float,
        avail: float,
        align: str,
        justify: bool,
        top: float,
        line_h: float,
        size: float,
    ) -> None:
        if not words:
            return
        gaps = [self._width(" ", w[0].style) for w in words[1:]]
        natural = sum(a.width for w in words for a in w) + sum(gaps)
        extra = 0.0
        if align == "center":
            x += (avail - natural) / 2
        elif align == "right":
            x += avail - natural
        elif justify and len(words) > 1:
            extra = max(0.0, (avail - natural) / (len(words) - 1))
        ascent = _load_font(words[0][0].style.key).ascent
        baseline = top + (line_h - size * _PT) / 2 + ascent * size * _PT
        if extra:
            for i, w in enumerate(words):
                for atom in w:
                    self._set_font(atom.style)
                    self.pdf.text(x, baseline, atom.text)
                    x += atom.width
                if i < len(gaps):
                    x += gaps[i] + extra
            return
        # Same-style atoms and their spaces go out as one string: fewer operators, and an
        # underline runs unbroken under "BUDI SANTOSO".
        run_text, run_style, run_x, run_w = "", None, x, 0.0
        for i, w in enumerate(words):
            for j, atom in enumerate(w):
                lead = " " if (i > 0 and j == 0) else ""
                if atom.style == run_style:
                    run_text += lead + atom.text
                    run_w += (gaps[i - 1] if lead else 0.0) + atom.width
                    continue
                if run_style is not None:
                    self._set_font(run_style)
                    self.pdf.text(run_x, baseline, run_text)
                    run_x += run_w
                if lead:
                    run_x += gaps[i - 1]
                run_text, run_style, run_w = atom.text, atom.style, atom.width
        if run_style is not None:
            self._set_font(run_style)
            self.pdf.text(run_x, baseline, run_text)

    # --- blocks

    def blocks(self, parent: ET.Element, x: float, w: float, draw: bool) -> None:
        for el in parent:
            handler = _BLOCKS.get(el.tag)
            if handler is None:
                raise TemplateMarkupError(
                    f"<{el.tag}> is not a known block (inside <{parent.tag}>)"
                )
            handler(self, el, x, w, draw)

    def _text_style(self, el: ET.Element) -> tuple[_Style, float]:
        family = el.get("font", self.base.family)
        if family not in ("serif", "sans"):
            raise TemplateMarkupError(f"<{el.tag} font={family!r}>: use serif or sans")
        style = self.base._replace(family=family, size=_num(el, "size", self.base.size))
        return style, _num(el, "leading", self.leading)

    def p(self, el: ET.Element, x: float, w: float, draw: bool) -> None:
        style, leading = self._text_style(el)
        align = el.get("align", "left")
        if align not in ("left", "center", "right", "justify"):
            raise TemplateMarkupError(f"<p align={align!r}>: use left, center, right or justify")
        self.y += _num(el, "before", 0)
        left = _num(el, "left", 0)
        indent = _num(el, "indent", 0)
        pieces: list[object] = []
        self._inline(el, style, pieces)
        line_h = style.size * _PT * leading
        avail = w - left
        lines = self._lines(pieces, avail, indent)
        for i, (words, hard_end) in enumerate(lines):
            if draw:
                self.ensure(line_h)
                first = indent if i == 0 else 0.0
                self._draw_line(
                    words,
                    x + left + first,
                    avail - first,
                    align,
                    align == "justify" and not hard_end,
                    self.y,
                    line_h,
                    style.size,
                )
            self.y += line_h
        self.y += _num(el, "after", 0)

    def hr(self, el: ET.Element, x: float, w: float, draw: bool) -> None:
        kind = el.get("style", "single")
        weight = _num(el, "weight", 0.3)
        gap = _num(el, "gap", 0.8)
        self.y += _num(el, "before", 1)
        height = weight + (gap + weight if kind == "double" else 0)
        if draw:
            self.ensure(height)
            pdf = self.pdf
            if kind == "double":  # kop surat: thick rule over a thin one
                pdf.set_line_width(weight * 2.5)
                pdf.line(x, self.y, x + w, self.y)
                pdf.set_line_width(weight)
                pdf.line(x, self.y + weight * 1.25 + gap, x + w, self.y + weight * 1.25 + gap)
            else:
                pdf.set_line_width(weight)
                pdf.line(x, self.y, x + w, self.y)
        self.y += height + (weight * 1.25 if kind == "double" else 0) + _num(el, "after", 1)

    def space(self, el: ET.Element, x: float, w: float, draw: bool) -> None:
        self.y += _num(el, "h", 5)

    def pagebreak(self, el: ET.Element, x: float, w: float, draw: bool) -> None:
        if draw and self.breakable:
            self.new_page()

    def table(self, el: ET.Element, x: float, w: float, draw: bool) -> None:
        style, leading = self._text_style(el)
        left = _num(el, "left", 0)
        x += left
        w -= left
        spec = (el.get("widths") or "").split()
        if not spec:
            raise TemplateMarkupError('<table> needs widths="..." (mm, * for the rest)')
        try:
            fixed = sum(float(s) for s in spec if s != "*")
        except ValueError:
            raise TemplateMarkupError(
                f"<table widths={el.get('widths')!r}>: numbers or *"
            ) from None
        stars = spec.count("*")
        rest = max(0.0, w - fixed) / stars if stars else 0.0
        widths = [rest if s == "*" else float(s) for s in spec]
        line_h = style.size * _PT * leading
        self.y += _num(el, "before", 0)
        for tr in el:
            if tr.tag != "tr":
                raise TemplateMarkupError(f"<{tr.tag}> inside <table>: only <tr>")
            cells = list(tr)
            if len(cells) > len(widths):
                raise TemplateMarkupError(
                    f"a <tr> has {len(cells)} cells, widths has {len(widths)}"
                )
            laid = []
            for td, cw in zip(cells, widths, strict=False):
                if td.tag != "td":
                    raise TemplateMarkupError(f"<{td.tag}> inside <tr>: only <td>")
                pieces: list[object] = []
                self._inline(td, style, pieces)
                laid.append((td.get("align", "left"), self._lines(pieces, cw - 1.0, 0.0)))
            count = max((len(lines) for _, lines in laid), default=1)
            if not draw:
                self.y += count * line_h
                continue
            if count * line_h <= self.bottom - self.top:
                self.ensure(count * line_h)  # a row that fits on a page is not split
            for i in range(count):
                self.ensure(line_h)
                cx = x
                for (align, lines), cw in zip(laid, widths, strict=False):
                    if i < len(lines):
                        self._draw_line(
                            lines[i][0], cx, cw - 1.0, align, False, self.y, line_h, style.size
                        )
                    cx += cw
                self.y += line_h
        self.y += _num(el, "after", 0)

    def row(self, el: ET.Element, x: float, w: float, draw: bool) -> None:
        self.y += _num(el, "before", 0)
        cols = list(el)
        for col in cols:
            if col.tag != "col":
                raise TemplateMarkupError(f"<{col.tag}> inside <row>: only <col>")
        given = [None if c.get("width", "*") == "*" else _num(c, "width", 0) for c in cols]
        stars = given.count(None)
        rest = max(0.0, w - sum(g for g in given if g is not None)) / stars if stars else 0.0
        widths = [rest if g is None else g for g in given]
        start = self.y
        was = self.breakable
        self.breakable = False
        try:
            height = 0.0
            for col, cw in zip(cols, widths, strict=False):  # measure: a row stays on one page
                self.y = start
                self.blocks(col, 0.0, cw, False)
                height = max(height, self.y - start)
            self.y = start
            if draw:
                self.breakable = was
                self.ensure(height)
                self.breakable = False
                start = self.y
                cx = x
                for col, cw in zip(cols, widths, strict=False):
                    self.y = start
                    self.blocks(col, cx, cw, True)
                    cx += cw
            self.y = start + height
        finally:
            self.breakable = was
        self.y += _num(el, "after", 0)

    def qr(self, el: ET.Element, x: float, w: float, draw: bool) -> None:
        size = _num(el, "size", 27)
        if not self.draft and self.verify_url is not None:
            size = qr_print_size(self.qr_text or self.verify_url, size, self.qr_mask)
        if draw:
            self.ensure(size)
            self.qr_count += 1
            if not self.draft:  # never a QR on anything unsigned
                assert self.verify_url is not None
                _draw_qr(self.pdf, self.qr_text or self.verify_url, x, self.y, size, self.qr_mask)
        self.y += size

    def img(self, el: ET.Element, x: float, w: float, draw: bool) -> None:
        src = el.get("src") or ""
        path = (self.base_dir / src).resolve()
        if not src or self.base_dir not in path.parents or not path.is_file():
            raise TemplateMarkupError(f"<img src={src!r}>: no such file beside the template")
        width = _num(el, "width", 20)
        with Image.open(path) as im:
            height = width * im.height / im.width
        if draw:
            self.ensure(height)
            self.pdf.image(str(path), x=x, y=self.y, w=width, h=height)
        self.y += height

    def emblem_block(self, el: ET.Element, x: float, w: float, draw: bool) -> None:
        width = _num(el, "width", 22)
        tallest = _num(el, "max-height", width * 1.5)
        info = None if self.emblem is None else prepared_emblem(self.emblem)
        if info is None:
            height = min(width * PLACEHOLDER_RATIO, tallest)
            if draw:
                self.ensure(height)
                draw_placeholder(self.pdf, x, self.y, width, height)
        else:
            height = width * info["h"] / info["w"]
            if height > tallest:  # a tall emblem keeps its shape, narrower and centred
                x += (width - width * tallest / height) / 2
                width, height = width * tallest / height, tallest
            if draw:
                self.ensure(height)
                draw_emblem(self.pdf, self.emblem, info, x, self.y, width, height)
        self.y += height

    def footer_block(self, el: ET.Element, x: float, w: float, draw: bool) -> None:
        if not any(el is f for f in self.footers):
            raise TemplateMarkupError("<footer> belongs directly inside <letter>")


_BLOCKS = {
    "p": _Layout.p,
    "hr": _Layout.hr,
    "space": _Layout.space,
    "pagebreak": _Layout.pagebreak,
    "table": _Layout.table,
    "row": _Layout.row,
    "qr": _Layout.qr,
    "img": _Layout.img,
    "emblem": _Layout.emblem_block,
    "footer": _Layout.footer_block,
}


@lru_cache(maxsize=16384)
def _text_width(text: str, key: tuple[str, str], size: float) -> float:
    """A word's width in mm. Memoised: a template's fixed words are measured once per process,
    and the text a letter varies in (names, dates, numbers) repeats across letters."""
    entry = _load_font(key)
    w, miss = entry.widths, entry.missing_width
    return sum(w.get(ord(c), miss) for c in text) * size / 1000 * _PT
