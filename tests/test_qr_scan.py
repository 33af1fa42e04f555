"""The cheaper QR mask rule (engine.letters.qr: one fixed mask, the full search only for a
pathological penalty) against scoring all eight masks: letters rendered both ways, rasterised
as a scanner or phone would see paper (150-300 dpi), a stamp's ring drawn across the QR's
corner, and blurred up to and past the point where scans start to fail."""

from __future__ import annotations

import base64
import random
from dataclasses import replace

import pypdfium2
import zxingcpp
from PIL import Image, ImageDraw, ImageFilter

from engine.letters.render import markup_to_pdf, render_markup
from tests.test_render import LETTERS, TEMPLATES, URL

LETTER = replace(LETTERS["umum"], number="474/001/33.11.01.2001/XI/2026")
# (dpi, Gaussian blur radius in pixels): all readable, then the edge where reading fails.
READABLE = [(150, 0.9), (200, 1.2), (300, 1.9)]
EDGE = [(150, 1.0), (200, 1.4), (300, 2.2)]


def qr_texts(count: int) -> list[str]:
    """Letter QR texts as issuing makes them (URL, 160-bit code, seal), from a fixed seed."""
    rng = random.Random(13)
    texts = []
    for _ in range(count):
        code = base64.b32encode(rng.randbytes(20)).decode().rstrip("=")
        seal = base64.b32encode(rng.randbytes(220)).decode().rstrip("=")  # a seal's length
        texts.append(f"HTTPS://VERIFIKASI.SUKOHARJOKAB.GO.ID/V/{code}/{seal}")
    return texts


def printed(pdf: bytes, dpi: int) -> Image.Image:
    """The page in grey at ``dpi``, with a stamp's ring over the QR's lower right corner."""
    image = pypdfium2.PdfDocument(pdf)[0].render(scale=dpi / 72).to_pil().convert("L")
    (found,) = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    p = found.position
    right, bottom = max(p.top_right.x, p.bottom_right.x), max(p.bottom_left.y, p.bottom_right.y)
    width = right - min(p.top_left.x, p.bottom_left.x)
    r = width * 0.45
    draw = ImageDraw.Draw(image)
    draw.ellipse((right - r, bottom - r, right + r, bottom + r), outline=110, width=int(r / 7))
    draw.text((right - r * 0.7, bottom - r * 0.2), "KEPALA DESA GROGOL", fill=110)
    return image


def reads(image: Image.Image, blur: float, text: str) -> bool:
    blurred = image.filter(ImageFilter.GaussianBlur(blur))
    found = zxingcpp.read_barcodes(blurred, formats=zxingcpp.BarcodeFormat.QRCode)
    return [f.text for f in found] == [text]


def test_fixed_mask_scans_as_reliably_as_the_eight_mask_search() -> None:
    markup = render_markup(TEMPLATES / "umum.html.j2", LETTER, verify_url=URL, draft=False)
    texts = qr_texts(12)
    read = {mask: {c: 0 for c in READABLE + EDGE} for mask in ("fast", "best")}
    for text in texts:
        for mask in read:
            pdf = markup_to_pdf(
                markup, title="x", verify_url=URL, base_dir=TEMPLATES, qr_text=text, qr_mask=mask
            )
            pages = {dpi: printed(pdf, dpi) for dpi in {d for d, _ in READABLE + EDGE}}
            for dpi, blur in READABLE + EDGE:
                read[mask][(dpi, blur)] += reads(pages[dpi], blur, text)
    for condition in READABLE:
        assert read["fast"][condition] == len(texts), (condition, read)
    # Where scans start to fail, which texts fail depends on the exact pixels with either rule;
    # measured: 20 of 36 edge scans read with the fixed mask, 23 with the eight-mask search
    # (docs/performance.md). Below the edge both read every one (above).
    edge_fast = sum(read["fast"][c] for c in EDGE)
    edge_best = sum(read["best"][c] for c in EDGE)
    assert edge_fast >= 0.8 * edge_best, read
    assert edge_best < len(EDGE) * len(texts)  # the edge is really an edge
