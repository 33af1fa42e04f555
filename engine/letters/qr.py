"""QR codes for letters: error correction M (survives a fold or a stamp over ~15% of it).

Mask: the QR standard has the encoder try all eight mask patterns and keep the one with the
lowest penalty (runs, blocks, finder-like patterns, dark/light balance); in pure Python that was
a quarter of a letter's render time. A letter's QR text is a fixed URL prefix followed by random
base32 (the verification code and the seal), and over such texts the eight masks score alike
(bench/qr_masks.py: medians within 10% of each other; best-of-eight about 3% under the
fixed mask). So :func:`qr_matrix` applies FAST_MASK (the lowest median penalty over those texts)
and scores only that one; if its penalty per module is worse than any best-of-eight measured
there (PATHOLOGICAL_PER_MODULE), it tries all eight as the standard does. Scans of printed,
stamped and blurred renders: tests/test_qr_scan.py.
"""

from __future__ import annotations

import io
from functools import lru_cache

import qrcode
from qrcode import LUT, base, exceptions, util
from qrcode.constants import ERROR_CORRECT_M

QUIET_ZONE = 4  # modules of white around the code, as the QR standard asks
FAST_MASK = 2
# Penalty per module above every best-of-eight seen over letter-like texts of QR versions 9 to
# 13 (at most 0.70 per module): a fixed mask this bad is rare and worth the full search.
PATHOLOGICAL_PER_MODULE = 0.75


@lru_cache(maxsize=32)
def _ecc_rows(ec_count: int) -> tuple[int, ...]:
    """For each feedback byte, the generator polynomial times it, as one big integer."""
    if ec_count in LUT.rsPoly_LUT:
        generator = list(LUT.rsPoly_LUT[ec_count])
    else:
        poly = base.Polynomial([1], 0)
        for i in range(ec_count):
            poly = poly * base.Polynomial([1, base.gexp(i)], 0)
        generator = [poly[i] for i in range(len(poly))]
    rows = [0] * 256
    for factor in range(1, 256):
        log = base.LOG_TABLE[factor]
        row = bytes(base.EXP_TABLE[(log + base.LOG_TABLE[g]) % 255] if g else 0 for g in generator)
        rows[factor] = int.from_bytes(row[1:], "big")
    return tuple(rows)


def _error_correction(data: list[int], ec_count: int) -> list[int]:
    """Reed-Solomon check bytes: the remainder of data(x) * x^ec by the generator, computed a
    byte at a time with the whole remainder in one integer (the qrcode library divides
    polynomial objects, 15% of a letter's render time)."""
    rows = _ecc_rows(ec_count)
    shift, mask = 8 * (ec_count - 1), (1 << (8 * ec_count)) - 1
    remainder = 0
    for byte in data:
        remainder = ((remainder << 8) & mask) ^ rows[byte ^ (remainder >> shift)]
    return list(remainder.to_bytes(ec_count, "big"))


def _codewords(version: int, error_correction: int, data_list: list) -> list[int]:
    """util.create_data, with _error_correction for its Reed-Solomon step."""
    buffer = util.BitBuffer()
    for data in data_list:
        buffer.put(data.mode, 4)
        buffer.put(len(data), util.length_in_bits(data.mode, version))
        data.write(buffer)
    rs_blocks = base.rs_blocks(version, error_correction)
    bit_limit = sum(block.data_count * 8 for block in rs_blocks)
    if len(buffer) > bit_limit:
        raise exceptions.DataOverflowError("QR data too long")
    for _ in range(min(bit_limit - len(buffer), 4)):
        buffer.put_bit(False)
    if len(buffer) % 8:
        for _ in range(8 - len(buffer) % 8):
            buffer.put_bit(False)
    for i in range((bit_limit - len(buffer)) // 8):
        buffer.put(util.PAD0 if i % 2 == 0 else util.PAD1, 8)
    offset, data_blocks, ec_blocks = 0, [], []
    for block in rs_blocks:
        block_data = [0xFF & b for b in buffer.buffer[offset : offset + block.data_count]]
        offset += block.data_count
        data_blocks.append(block_data)
        ec_blocks.append(_error_correction(block_data, block.total_count - block.data_count))
    out = []
    for blocks in (data_blocks, ec_blocks):
        for i in range(max(len(b) for b in blocks)):
            out.extend(b[i] for b in blocks if i < len(b))
    return out


def _make(data: str, *, mask: str = "fast") -> qrcode.QRCode:
    if not data:
        raise ValueError("QR data must not be empty")
    if mask not in ("fast", "best"):
        raise ValueError("mask must be 'fast' or 'best'")
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=QUIET_ZONE)
    qr.add_data(data)
    if mask == "best":  # the standard's rule: all eight masks scored
        qr.make(fit=True)
        return qr
    qr.best_fit(start=None)
    qr.data_cache = _codewords(qr.version, qr.error_correction, qr.data_list)
    qr.makeImpl(False, FAST_MASK)
    if util.lost_point(qr.modules) > PATHOLOGICAL_PER_MODULE * qr.modules_count**2:
        qr.makeImpl(False, qr.best_mask_pattern())
    return qr


def qr_matrix(data: str, *, mask: str = "fast") -> list[list[bool]]:
    """Dark modules, row by row, without the quiet zone (the caller keeps that space white).
    ``mask="best"`` scores all eight masks (the previous rule, kept for the benchmark)."""
    qr = _make(data, mask=mask)
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
