"""The verification QR as the layout prints it: its printed size (modules never under
QR_MODULE_MIN_MM) and the vector drawing. Used by engine.letters.layout."""

from __future__ import annotations

import math
from functools import lru_cache

from fpdf import FPDF

from engine.letters.qr import QUIET_ZONE, qr_matrix

__all__ = ["QR_MAX_MM", "QR_MODULE_MIN_MM", "_draw_qr", "qr_print_size"]

QR_MODULE_MIN_MM = 0.4  # smaller modules are unreliable on office printers and phone cameras
QR_MAX_MM = 35.0  # what fits beside the signature block


@lru_cache(maxsize=64)
def _qr_matrix(data: str, mask: str = "fast") -> tuple[tuple[bool, ...], ...]:
    return tuple(tuple(row) for row in qr_matrix(data, mask=mask))


def qr_print_size(data: str, requested: float, mask: str = "fast") -> float:
    """The printed size (mm, quiet zone included) for ``data``: the template's size, enlarged
    so that every module is at least QR_MODULE_MIN_MM wide. A QR that would need more than
    QR_MAX_MM is refused rather than printed too small to scan."""
    modules = len(_qr_matrix(data, mask)) + 2 * QUIET_ZONE
    needed = math.ceil(QR_MODULE_MIN_MM * modules * 100) / 100  # never a hair under
    if needed > QR_MAX_MM:
        raise ValueError(
            f"QR of {modules} modules needs {needed} mm for {QR_MODULE_MIN_MM} mm modules; "
            f"more than {QR_MAX_MM} mm: shorten SURATDESA_PUBLIC_URL"
        )
    return max(requested, needed)


def _draw_qr(pdf: FPDF, data: str, x: float, y: float, size: float, mask: str = "fast") -> None:
    """The QR as vector rectangles: sharp at any print resolution. The size includes the
    quiet zone (4 modules of white each side)."""
    matrix = _qr_matrix(data, mask)
    n = len(matrix)
    module = size / (n + 8)
    ox, oy = x + 4 * module, y + 4 * module
    pdf.set_fill_color(0)
    # Horizontal runs, each extended down over identical runs below it.
    done: set[tuple[int, int, int]] = set()
    runs_by_row: list[list[tuple[int, int]]] = []
    for row in matrix:
        runs, c = [], 0
        while c < n:
            if row[c]:
                s = c
                while c < n and row[c]:
                    c += 1
                runs.append((s, c))
            else:
                c += 1
        runs_by_row.append(runs)
    row_sets = [set(r) for r in runs_by_row]
    # Every run as a rectangle subpath, filled by one operator: what pdf.rect() would write per
    # run, without its per-call overhead (a QR has some 300-600 runs).
    k, page_h = pdf.k, pdf.h
    paths = []
    for r, runs in enumerate(runs_by_row):
        for s, e in runs:
            if (r, s, e) in done:
                continue
            h = 1
            while r + h < n and (s, e) in row_sets[r + h]:
                done.add((r + h, s, e))
                h += 1
            # a hair of overlap so no white seams appear between modules when rasterised
            left, top = ox + s * module, oy + r * module
            w, hh = (e - s) * module + 0.01, h * module + 0.01
            paths.append(f"{left * k:.2f} {(page_h - top) * k:.2f} {w * k:.2f} {-hh * k:.2f} re")
    if paths:
        pdf._out("\n".join(paths) + "\nf")
