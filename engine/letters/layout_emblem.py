"""The regency emblem in the kop surat: its PDF image prepared once per process per emblem
(by SHA-256) and shared by every document, or a neutral placeholder drawn where it goes until
the regency admin uploads one (engine.letters.kop). Used by engine.letters.layout."""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import threading
from dataclasses import dataclass, field

from fpdf import FPDF
from fpdf.image_parsing import get_img_info

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Emblem:
    """The regency emblem as stored (canonical PNG, engine.letters.kop); compared by SHA-256."""

    sha256: str
    png: bytes = field(repr=False, compare=False)

    @classmethod
    def of(cls, png: bytes) -> Emblem:
        return cls(hashlib.sha256(png).hexdigest(), png)


_EMBLEMS: dict[str, dict] = {}  # sha256 -> fpdf2's parsed image (compressed data, smask)
_EMBLEMS_LOCK = threading.Lock()
PLACEHOLDER_RATIO = 1.2  # height / width of the neutral shield


def prepared_emblem(emblem: Emblem) -> dict | None:
    """The emblem parsed and compressed for PDF once per process (fpdf2 decodes a PNG and
    deflates its pixels and alpha for every document otherwise); documents share the bytes.
    None for bytes that are not a picture (engine.letters.kop stores only ones that are; a
    setting written around it must not stop every letter): the placeholder is printed."""
    with _EMBLEMS_LOCK:
        if emblem.sha256 in _EMBLEMS:
            return _EMBLEMS[emblem.sha256]
    try:
        info = get_img_info(f"emblem-{emblem.sha256}.png", io.BytesIO(emblem.png), "AUTO")
    except Exception:  # noqa: BLE001 - whatever the image parser raises: no picture
        logger.warning("regency emblem %s is not a readable image", emblem.sha256[:12])
        info = None
    else:
        info.pop("iccp", None)  # the stored emblem is re-encoded without a profile
    with _EMBLEMS_LOCK:
        if len(_EMBLEMS) >= 4:  # a replaced emblem is not kept forever
            _EMBLEMS.clear()
        _EMBLEMS[emblem.sha256] = info
    return info


def draw_placeholder(pdf: FPDF, x: float, y: float, w: float, h: float) -> None:
    """A neutral shield outline where the regency emblem goes until the admin uploads it: it
    reads as a space for the emblem, never as the real arms."""
    pdf.set_draw_color(120)
    for inset, weight in ((0.0, 0.5), (1.4, 0.25)):
        left, right, top = x + inset, x + w - inset, y + inset
        shoulder, tip = y + h * 0.55, y + h - inset * 1.3
        pdf.set_line_width(weight)
        pdf.polygon(
            [(left, top), (right, top), (right, shoulder), (x + w / 2, tip), (left, shoulder)],
            style="D",
        )
    pdf.set_draw_color(0)


def draw_emblem(
    pdf: FPDF, emblem: Emblem, info: dict, x: float, y: float, w: float, h: float
) -> None:
    """The prepared emblem on the page: the document gets its own copy of fpdf2's image
    record (it numbers it) over the shared compressed bytes."""
    name = f"emblem-{emblem.sha256}.png"
    images = pdf.image_cache.images
    if name not in images:
        mine = copy.copy(info)
        mine.update(i=len(images) + 1, usages=0, iccp_i=None)
        images[name] = mine
    pdf.image(name, x=x, y=y, w=w, h=h)
