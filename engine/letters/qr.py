"""QR codes for letters: error correction M (survives a fold or a stamp over ~15% of it)."""

from __future__ import annotations

import io

import qrcode
from qrcode.constants import ERROR_CORRECT_M

QUIET_ZONE = 4  # modules of white around the code, as the QR standard asks


def _make(data: str) -> qrcode.QRCode:
    if not data:
        raise ValueError("QR data must not be empty")
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=QUIET_ZONE)
    qr.add_data(data)
    qr.make(fit=True)
    return qr


def qr_matrix(data: str) -> list[list[bool]]:
    """Dark modules, row by row, without the quiet zone (the caller keeps that space white)."""
    qr = _make(data)
    qr.border = 0
    return [list(row) for row in qr.get_matrix()]


def qr_png(data: str, box_size: int = 10) -> bytes:
    """1-bit PNG with the quiet zone; 10 px modules print sharply at 300 dpi and up."""
    qr = _make(data)
    qr.box_size = box_size
    img = qr.make_image(fill_color="black", back_color="white")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
