"""What a signed letter looks like: every shipped letter type is issued through the JSON API
from sample residents, its first page is rasterised with poppler's pdftoppm (100 dpi) and saved
as test-artifacts/letters/<type>.png for a person to look at, and the picture is checked for
what a reader relies on: an F4 or A4 sheet, printed (not blank), a letterhead at the top
(text over a full-width rule), and the signature block: the QR code with the signer's lines
in the right half of the page beside or above it.

The checks read pixels only (Pillow), so they hold whatever the wording of the templates."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import ARTIFACTS, require_tool
from tests.letters import LETTERS, Staff, issue

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(
    yaml.safe_load(p.read_text(encoding="utf-8"))["id"] for p in (ROOT / "workflows").glob("*.yaml")
)
SHOTS = ARTIFACTS / "letters"
DPI = 100
PAPERS_MM = {"F4": (215.0, 330.0), "A4": (210.0, 297.0)}
DARK = 128  # a grey level below this is ink


def px(mm: float) -> int:
    return round(mm / 25.4 * DPI)


@pytest.fixture
def staff(settings, logins) -> Staff:
    from suratdesa.web import create_app  # the app assembly, imported where it is used

    return Staff(TestClient(create_app(settings)), logins)


def rasterise(pdf: bytes, out: Path, tmp_path: Path, page: int = 1) -> Image.Image:
    """Page ``page`` of the PDF as a PNG at ``out`` (pdftoppm -png -r 100), opened in grey."""
    pdftoppm = require_tool("pdftoppm")
    source = tmp_path / "letter.pdf"
    source.write_bytes(pdf)
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [pdftoppm, "-png", "-r", str(DPI), "-f", str(page), "-l", str(page), "-singlefile"]
        + [str(source), str(out.with_suffix(""))],
        check=True,
        capture_output=True,
    )
    return Image.open(out).convert("L")


def page_count(pdf: bytes, tmp_path: Path) -> int:
    pdfinfo = require_tool("pdfinfo")
    source = tmp_path / "count.pdf"
    source.write_bytes(pdf)
    info = subprocess.run([pdfinfo, str(source)], capture_output=True, text=True, check=True)
    return int(
        next(line.split()[1] for line in info.stdout.splitlines() if line.startswith("Pages:"))
    )


class Ink:
    """Which pixels of a grey page are ink, with row and box counts."""

    def __init__(self, image: Image.Image) -> None:
        self.width, self.height = image.size
        data = image.point(lambda v: 1 if v < DARK else 0).tobytes()  # one byte a pixel
        w = self.width
        self.rows = [data[y * w : (y + 1) * w] for y in range(self.height)]

    def count(self, x0: int, y0: int, x1: int, y1: int) -> int:
        return sum(sum(row[x0:x1]) for row in self.rows[y0:y1])

    def fraction(self, x0: int, y0: int, x1: int, y1: int) -> float:
        area = max(1, (x1 - x0) * (y1 - y0))
        return self.count(x0, y0, x1, y1) / area

    def longest_run(self, y: int) -> int:
        best = run = 0
        for v in self.rows[y]:
            run = run + 1 if v else 0
            best = max(best, run)
        return best

    def inked_rows(self, x0: int, y0: int, x1: int, y1: int) -> list[int]:
        return [y for y in range(max(0, y0), min(self.height, y1)) if any(self.rows[y][x0:x1])]


def paper_of(image: Image.Image) -> str:
    """The paper whose size at 100 dpi the picture has (within 2 px), or fail."""
    w, h = image.size
    for name, (mm_w, mm_h) in PAPERS_MM.items():
        if abs(w - mm_w / 25.4 * DPI) <= 2 and abs(h - mm_h / 25.4 * DPI) <= 2:
            return name
    raise AssertionError(f"page is {w}x{h} px at {DPI} dpi: neither F4 nor A4")


def find_qr(ink: Ink) -> tuple[int, int, int, int]:
    """The box of the QR code: the dense block of ink (text never covers half its area).
    Cells of 4 mm more than 40% inked, grown into their connected cluster; the largest."""
    cell = px(4)
    cols, rows = ink.width // cell, ink.height // cell
    dense = {
        (cx, cy)
        for cy in range(rows)
        for cx in range(cols)
        if ink.fraction(cx * cell, cy * cell, (cx + 1) * cell, (cy + 1) * cell) > 0.4
    }
    best: set[tuple[int, int]] = set()
    seen: set[tuple[int, int]] = set()
    for start in dense:
        if start in seen:
            continue
        cluster, todo = set(), [start]
        while todo:
            c = todo.pop()
            if c in seen or c not in dense:
                continue
            seen.add(c)
            cluster.add(c)
            x, y = c
            todo += [(x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)]
        if len(cluster) > len(best):
            best = cluster
    assert best, "no QR code found on the page"
    xs = [c[0] for c in best]
    ys = [c[1] for c in best]
    return min(xs) * cell, min(ys) * cell, (max(xs) + 1) * cell, (max(ys) + 1) * cell


def test_every_shipped_type_has_sample_data():
    assert set(SHIPPED) <= set(LETTERS)


@pytest.mark.parametrize("workflow_id", SHIPPED)
def test_letter_page_looks_like_a_signed_letter(workflow_id, staff, passphrase, tmp_path):
    pdf = issue(staff, workflow_id, passphrase)["pdf"]
    image = rasterise(pdf, SHOTS / f"{workflow_id}.png", tmp_path)
    ink = Ink(image)
    w, h = image.size

    # An F4 (the office default) or A4 sheet, as printed.
    assert paper_of(image) in PAPERS_MM

    # Printed: a letter's worth of ink, but no black page.
    inked = ink.fraction(0, 0, w, h)
    assert 0.01 < inked < 0.25, f"{inked:.3%} of the page is ink"

    # The letterhead: a rule across most of the width in the top fifth of the page, with
    # centred text above it (government, kecamatan, village, address lines).
    top = h // 5
    rule_rows = [y for y in range(top) if ink.longest_run(y) > 0.6 * w]
    assert rule_rows, "no letterhead rule in the top fifth of the page"
    rule = rule_rows[0]
    assert rule > px(15), "the rule has no letterhead above it"
    head_lines = ink.inked_rows(w // 3, px(5), 2 * w // 3, rule - 2)
    assert len(head_lines) > px(12), "too little text in the letterhead"
    assert ink.fraction(0, 0, w, px(8)) == 0, "ink in the top margin"

    # The signature block: the QR code (on the last page) below the letterhead, and beside it,
    # on the right half, the place and date, the signer's title and name.
    last = page_count(pdf, tmp_path)
    if last > 1:
        image = rasterise(pdf, SHOTS / f"{workflow_id}-last.png", tmp_path, page=last)
        ink = Ink(image)
    x0, y0, x1, y1 = find_qr(ink)
    size = x1 - x0
    assert px(20) <= size <= px(36) and abs((y1 - y0) - size) <= px(4), (x0, y0, x1, y1)
    assert last > 1 or y0 > rule, "the QR is not below the letterhead"
    # Text in the right half of the page (where the signer's block stands), next to or just
    # above the QR and not the QR itself: place and date, title, the signer's name.
    beside = [(w // 2, x0), (x1, w - px(10))]
    signer_lines = {
        y for a, b in beside if b > a for y in ink.inked_rows(a, y0 - px(25), b, y1 + px(10))
    }
    assert len(signer_lines) > px(10), "no signer's lines beside the QR"
