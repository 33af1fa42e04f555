"""Letter rendering: the three shipped templates, QR, DRAFT, paper, fonts, escaping. The kop's
emblem and contact lines, the signature block and the footer: tests/test_letter_look.py."""

from __future__ import annotations

import subprocess
import threading
from dataclasses import replace
from datetime import date, time
from pathlib import Path

import pypdfium2
import pytest
import zxingcpp

from engine.config import PROJECT_ROOT
from engine.dates import format_jam, format_tanggal, nama_hari, roman_month
from engine.letters.qr import qr_png
from engine.letters.render import (
    LetterContent,
    Person,
    SignerInfo,
    TemplateMarkupError,
    VillageInfo,
    render_letter,
)
from tests.conftest import require_tool

TEMPLATES = PROJECT_ROOT / "workflows" / "templates"
URL = "https://verifikasi.sukoharjokab.go.id/v/Xk3mP9qR2sT7vW4yZ8aB1cDe"
NUMBER = "470/012/33.11.01.2001/XI/2026"

GROGOL = VillageInfo(
    code="33.11.01.2001",
    name="Grogol",
    kind="desa",
    district_name="Weru",
    address="Jl. Raya Weru-Grogol No. 12",
    postal_code="57562",
)
KENEP = VillageInfo(
    code="33.11.04.1001",
    name="Kenep",
    kind="kelurahan",
    district_name="Sukoharjo",
    address="Jl. Jenderal Sudirman No. 5",
    postal_code="57514",
)
HEAD = SignerInfo(title_lines=("KEPALA DESA GROGOL",), name="Sutrisno", nip=None)


def person(name: str, nik: str, sex: str = "Laki-laki") -> Person:
    return Person(
        name=name,
        nik=nik,
        birth_place="Sukoharjo",
        birth_date=date(1980, 5, 12),
        sex=sex,
        religion="Islam",
        marital_status="Kawin",
        occupation="Petani/Pekebun",
        address="Dukuh Krajan RT 002/RW 001, Desa Grogol, Kecamatan Weru",
    )


BUDI = person("Budi Santoso", "3311011205800001")
SRI = person("Sri Lestari", "3311015003850002", "Perempuan")
AGUS = person("Agus Prasetyo", "3311010101750003")

LETTERS: dict[str, LetterContent] = {
    "umum": LetterContent(
        title="Surat Keterangan Umum Terpadu",
        number=NUMBER,
        village=GROGOL,
        signer=HEAD,
        subjects={"applicant": BUDI},
        subject_labels={"applicant": "Pemohon"},
        fields={"keperluan": "Persyaratan melamar pekerjaan"},
        field_labels={"keperluan": "Keperluan"},
        issued_on=date(2026, 11, 28),
    ),
    "kematian": LetterContent(
        title="Surat Keterangan Kematian",
        number=NUMBER,
        village=GROGOL,
        signer=HEAD,
        subjects={"deceased": BUDI, "reporter": SRI},
        subject_labels={"deceased": "Yang meninggal", "reporter": "Pelapor"},
        fields={
            "date_of_death": date(2026, 11, 27),
            "time_of_death": time(14, 30),
            "place_of_death": "Rumah duka",
            "cause": "Sakit",
        },
        field_labels={},
        issued_on=date(2026, 11, 28),
    ),
    "kelahiran": LetterContent(
        title="Surat Keterangan Kelahiran",
        number=NUMBER,
        village=GROGOL,
        signer=HEAD,
        subjects={"mother": SRI, "father": BUDI, "reporter": AGUS},
        subject_labels={"mother": "Ibu", "father": "Ayah", "reporter": "Pelapor"},
        fields={
            "child_name": "Putri Ayu Lestari",
            "child_sex": "Perempuan",
            "birth_date": date(2026, 11, 20),
            "birth_time": time(3, 5),
            "birth_place": "Puskesmas Weru",
        },
        field_labels={},
        issued_on=date(2026, 11, 28),
    ),
}
SUBJECT = {"umum": BUDI, "kematian": BUDI, "kelahiran": SRI}


def render(kind: str, content: LetterContent | None = None, **kw: object) -> bytes:
    kw.setdefault("verify_url", URL)
    return render_letter(TEMPLATES / f"{kind}.html.j2", content or LETTERS[kind], **kw)


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    tool = require_tool("pdftotext")
    path = tmp_path / "letter.pdf"
    path.write_bytes(pdf)
    out = subprocess.run([tool, "-layout", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode()


def qr_codes(pdf: bytes) -> list[tuple[str, float, float]]:
    """Decoded QR texts with their centre as a fraction of the page (x, y from the top)."""
    page = pypdfium2.PdfDocument(pdf)[0]
    image = page.render(scale=200 / 72).to_pil()
    found = []
    for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode):
        p = r.position
        cx = (p.top_left.x + p.bottom_right.x) / 2 / image.width
        cy = (p.top_left.y + p.bottom_right.y) / 2 / image.height
        found.append((r.text, cx, cy))
    return found


@pytest.mark.parametrize("kind", ["umum", "kematian", "kelahiran"])
def test_each_template_prints_a_complete_letter(kind: str, tmp_path: Path) -> None:
    text = pdf_text(render(kind), tmp_path)
    flat = " ".join(text.split())
    for expected in (
        "PEMERINTAH KABUPATEN SUKOHARJO",
        "KECAMATAN WERU",
        "DESA GROGOL",
        "Kode Pos 57562",
        LETTERS[kind].title.upper(),
        f"Nomor: {NUMBER}",
        "Yang bertanda tangan di bawah ini, Kepala Desa Grogol Kecamatan Weru Kabupaten Sukoharjo",
        SUBJECT[kind].name.upper(),
        SUBJECT[kind].nik,
        "Grogol, 28 November 2026",
        "KEPALA DESA GROGOL",
        "SUTRISNO",
        "Demikian surat keterangan ini dibuat dengan sebenarnya",
        "Ditandatangani secara elektronik oleh: SUTRISNO",
        "Dokumen ini ditandatangani secara elektronik",
        f"memindai kode QR atau membuka {URL}",
    ):
        assert expected in flat, f"{expected!r} missing from the {kind} letter"
    assert "DRAFT" not in flat
    assert "NIP." not in flat  # an elected Kepala Desa has none


def test_letter_specific_fields_are_printed(tmp_path: Path) -> None:
    kematian = " ".join(pdf_text(render("kematian"), tmp_path).split())
    for expected in ("Jumat, 27 November 2026", "14.30 WIB", "Rumah duka", "Sakit", "SRI LESTARI"):
        assert expected in kematian
    kelahiran = " ".join(pdf_text(render("kelahiran"), tmp_path).split())
    for expected in (
        "PUTRI AYU LESTARI",
        "Jumat, 20 November 2026",
        "03.05 WIB",
        "Puskesmas Weru",
        "BUDI SANTOSO",
        "AGUS PRASETYO",
    ):
        assert expected in kelahiran
    umum = " ".join(pdf_text(render("umum"), tmp_path).split())
    assert "Persyaratan melamar pekerjaan" in umum


def test_kelurahan_letter_is_signed_by_a_lurah_with_nip(tmp_path: Path) -> None:
    lurah = SignerInfo(("LURAH KENEP",), "Dra. Wahyuningsih", "197901012005012003")
    content = replace(LETTERS["umum"], village=KENEP, signer=lurah)
    flat = " ".join(pdf_text(render("umum", content), tmp_path).split())
    assert "KELURAHAN KENEP" in flat
    assert "DESA KENEP" not in flat.replace("KELURAHAN KENEP", "")
    assert "Lurah Kenep Kecamatan Sukoharjo" in flat
    assert "LURAH KENEP" in flat
    assert "NIP. 197901012005012003" in flat


@pytest.mark.parametrize(
    "lines",
    [("a.n. KEPALA DESA GROGOL", "SEKRETARIS DESA"), ("Plt. KEPALA DESA GROGOL",)],
)
def test_signer_title_lines_are_printed_in_order(lines: tuple[str, ...], tmp_path: Path) -> None:
    content = replace(LETTERS["umum"], signer=SignerInfo(lines, "Slamet Riyadi", None))
    text = pdf_text(render("umum", content), tmp_path)
    positions = [text.index(line) for line in lines]
    assert positions == sorted(positions)
    assert text.index(lines[-1]) < text.index("SLAMET RIYADI")


def test_fonts_are_embedded(tmp_path: Path) -> None:
    tool = require_tool("pdffonts")
    path = tmp_path / "letter.pdf"
    path.write_bytes(render("kematian"))
    rows = subprocess.run([tool, str(path)], capture_output=True, text=True, check=True)
    fonts = rows.stdout.splitlines()[2:]
    assert fonts, "no fonts listed"
    for row in fonts:
        assert row.split()[-5] == "yes", f"not embedded: {row}"  # the "emb" column


def text_box(pdf: bytes, text: str) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of ``text`` on page 1 as fractions of the page, y from the
    top."""
    page = pypdfium2.PdfDocument(pdf)[0]
    width, height = page.get_size()
    textpage = page.get_textpage()
    found = textpage.search(text).get_next()
    assert found is not None, f"{text!r} not on the page"
    first, count = found
    boxes = [textpage.get_charbox(i) for i in range(first, first + count)]
    left, right = min(b[0] for b in boxes), max(b[2] for b in boxes)
    bottom, top = min(b[1] for b in boxes), max(b[3] for b in boxes)
    return left / width, 1 - top / height, right / width, 1 - bottom / height


@pytest.mark.parametrize("kind", ["umum", "kematian", "kelahiran"])
def test_qr_decodes_to_the_verify_url_in_the_signature_space(kind: str) -> None:
    """The QR stands in the signature space, under the title, beside "Ditandatangani secara
    elektronik oleh" and the signer's name: nothing reads like a missing wet signature."""
    pdf = render(kind)
    codes = qr_codes(pdf)
    assert [c[0] for c in codes] == [URL]
    _, cx, cy = codes[0]
    assert cy > 0.5, f"QR at ({cx:.2f}, {cy:.2f}), expected in the lower half"
    title = text_box(pdf, "KEPALA DESA GROGOL")
    signed = text_box(pdf, "Ditandatangani secara elektronik oleh")
    name = text_box(pdf, "SUTRISNO")
    assert title[3] < cy, "the QR is under the signer's title"
    assert cx > 0.4 and cx < signed[0] and cx < name[0], "the QR stands left of who signed"
    assert signed[3] <= name[1] + 0.001, "the name follows 'Ditandatangani ... oleh'"
    assert abs((signed[1] + name[3]) / 2 - cy) < 0.06, "the text stands beside the QR"


def test_draft_has_no_qr_no_number_and_a_draft_watermark(tmp_path: Path) -> None:
    content = replace(LETTERS["kematian"], number=None)
    pdf = render("kematian", content, verify_url=None, draft=True)
    assert qr_codes(pdf) == []
    flat = " ".join(pdf_text(pdf, tmp_path).split())
    assert "DRAFT" in flat
    assert NUMBER not in flat
    assert "verifikasi" not in flat
    assert "Ditandatangani secara elektronik oleh" not in flat
    assert "BUDI SANTOSO" in flat  # the preview still reads like the letter


def test_draft_and_verify_url_must_agree() -> None:
    with pytest.raises(ValueError):
        render("umum", verify_url=URL, draft=True)
    with pytest.raises(ValueError):
        render("umum", verify_url=None)


@pytest.mark.parametrize(("paper", "size"), [("F4", (609.45, 935.43)), ("A4", (595.28, 841.89))])
def test_paper_size(paper: str, size: tuple[float, float]) -> None:
    page = pypdfium2.PdfDocument(render("kelahiran", paper=paper))[0]
    assert page.get_size() == pytest.approx(size, abs=0.1)


def test_unknown_paper_is_refused() -> None:
    with pytest.raises(ValueError):
        render("umum", paper="Letter")


def test_markup_in_data_is_printed_literally(tmp_path: Path) -> None:
    sneaky = replace(BUDI, name='<b>Budi</b> & "x"', address="RT 1 <qr/> </letter>")
    content = replace(
        LETTERS["umum"], subjects={"applicant": sneaky}, fields={"keperluan": "<u>a</u> &amp;"}
    )
    pdf = render("umum", content)
    flat = " ".join(pdf_text(pdf, tmp_path).split())
    assert '<B>BUDI</B> & "X"' in flat
    assert "RT 1 <qr/> </letter>" in flat
    assert "<u>a</u> &amp;" in flat
    assert [c[0] for c in qr_codes(pdf)] == [URL]  # no second QR from the data


def test_optional_parts_may_be_absent(tmp_path: Path) -> None:
    kematian = replace(
        LETTERS["kematian"],
        subjects={"deceased": BUDI, "reporter": SRI},
        fields={"date_of_death": date(2026, 11, 27), "place_of_death": "Rumah"},
    )
    flat = " ".join(pdf_text(render("kematian", kematian), tmp_path).split())
    assert "Pukul" not in flat and "Disebabkan" not in flat
    kelahiran = replace(LETTERS["kelahiran"], subjects={"mother": SRI, "reporter": AGUS})
    flat = " ".join(pdf_text(render("kelahiran", kelahiran), tmp_path).split())
    assert "dan ayah" not in flat and "BUDI SANTOSO" not in flat
    umum = replace(
        LETTERS["umum"], fields={"keperluan": "Kredit usaha", "keterangan": "Usaha tani"}
    )
    assert "Usaha tani" in " ".join(pdf_text(render("umum", umum), tmp_path).split())


def test_long_content_flows_onto_a_second_page(tmp_path: Path) -> None:
    long = " ".join(["Keterangan panjang yang harus tetap terbaca seluruhnya."] * 120) + " AKHIR"
    content = replace(LETTERS["umum"], fields={"keperluan": "Lain-lain", "keterangan": long})
    pdf = render("umum", content, paper="A4")
    doc = pypdfium2.PdfDocument(pdf)
    assert len(doc) >= 3
    on_pages = "".join(page.get_textpage().get_text_bounded() for page in doc)  # inside the page
    assert " ".join(on_pages.split()).count("Keterangan panjang yang harus") == 120
    flat = " ".join(pdf_text(pdf, tmp_path).split())
    assert "AKHIR" in flat and "SUTRISNO" in flat


def test_an_admin_edits_wording_and_layout_without_python(tmp_path: Path) -> None:
    template = tmp_path / "custom.html.j2"
    template.write_text(
        '<letter size="11"><p align="center"><b>{{ title|upper }}</b></p>'
        "<p>Nama warga: {{ subjects.applicant.name }}</p>"
        '<row><col width="40"><qr size="30"/></col><col><p align="right">Kades</p></col></row>'
        "</letter>"
    )
    first = " ".join(
        pdf_text(render_letter(template, LETTERS["umum"], verify_url=URL), tmp_path).split()
    )
    assert "Nama warga: Budi Santoso" in first
    template.write_text(template.read_text().replace("Nama warga", "Nama penduduk"))
    pdf = render_letter(template, LETTERS["umum"], verify_url=URL)
    assert "Nama penduduk: Budi Santoso" in " ".join(pdf_text(pdf, tmp_path).split())
    assert [c[0] for c in qr_codes(pdf)] == [URL]


def test_a_template_without_qr_cannot_produce_a_signed_letter(tmp_path: Path) -> None:
    template = tmp_path / "noqr.html.j2"
    template.write_text("<letter><p>{{ title }}</p></letter>")
    with pytest.raises(TemplateMarkupError, match="qr"):
        render_letter(template, LETTERS["umum"], verify_url=URL)
    assert render_letter(template, LETTERS["umum"], verify_url=None, draft=True)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<letter><p>unclosed</letter>", "well-formed"),
        ("<letter><blink>x</blink></letter>", "blink"),
        ('<letter><p align="middle">x</p></letter>', "align"),
        ("<html><p>x</p></html>", "<letter>"),
    ],
)
def test_broken_markup_is_reported_plainly(body: str, reason: str, tmp_path: Path) -> None:
    template = tmp_path / "bad.html.j2"
    template.write_text(body)
    with pytest.raises(TemplateMarkupError, match=reason):
        render_letter(template, LETTERS["umum"], verify_url=None, draft=True)


def test_concurrent_renders_share_the_font_cache_safely(tmp_path: Path) -> None:
    names = [f"Warga Nomor {i} Ąčęś" for i in range(6)]
    results: dict[str, bytes] = {}

    def work(name: str) -> None:
        content = replace(LETTERS["umum"], subjects={"applicant": replace(BUDI, name=name)})
        results[name] = render("umum", content)

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, pdf in results.items():
        assert name.upper() in " ".join(pdf_text(pdf, tmp_path).split())
    assert len(results) == len(names)


def test_indonesian_dates() -> None:
    assert format_tanggal(date(2026, 11, 28)) == "28 November 2026"
    assert format_tanggal(date(2026, 1, 1)) == "1 Januari 2026"
    assert nama_hari(date(2026, 11, 28)) == "Sabtu"
    assert format_jam(time(9, 5)) == "09.05 WIB"
    assert [roman_month(m) for m in (1, 4, 9, 11, 12)] == ["I", "IV", "IX", "XI", "XII"]
    with pytest.raises(ValueError):
        roman_month(13)


def test_qr_png_decodes() -> None:
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(qr_png(URL)))
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [URL]


def test_qr_modules_stay_at_least_0_4_mm_with_a_long_url_and_name() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from engine.letters.layout import QR_MAX_MM, qr_print_size
    from engine.letters.qr import qr_matrix
    from engine.trust.seal import SealFields, make_seal, qr_text

    name = "Raden Mas Bagus Tri Wahyu Kusumaningrat Hadiningrat Soerjosoemarno"
    content = replace(LETTERS["umum"], subjects={"applicant": replace(BUDI, name=name)})
    content = replace(content, number="474.11/1234/33.11.01.2001/XII/2026")
    code = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    seal = make_seal(
        ec.generate_private_key(ec.SECP256R1()),
        SealFields(
            content.number,
            content.issued_on,
            (("Nama", name), ("Keperluan", "Persyaratan melamar pekerjaan di luar negeri")),
            b"\x01" * 16,
            code=code,
        ),
    )
    base = "https://verifikasi-surat.sukoharjokab.go.id"
    text = qr_text(base, code, seal)
    n = len(qr_matrix(text))
    version = (n - 17) // 4
    assert version >= 11  # a dense QR: at the template's 28 mm its modules would be < 0.4 mm
    assert 28 / (n + 8) < 0.4
    size = qr_print_size(text, 28)
    assert size / (n + 8) >= 0.4 - 1e-9 and size <= QR_MAX_MM  # (float division)

    pdf = render("umum", content, verify_url=f"{base}/v/{code}", qr_text=text)
    page = pypdfium2.PdfDocument(pdf)[0]
    dpi = 300
    image = page.render(scale=dpi / 72).to_pil()
    (found,) = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert found.text == text
    p = found.position
    width_mm = (p.top_right.x - p.top_left.x) / dpi * 25.4  # the symbol, without quiet zone
    assert width_mm / n >= 0.39, (width_mm, n)  # 0.4 mm less one pixel of measuring error
    assert width_mm * (n + 8) / n <= QR_MAX_MM + 0.3


def test_a_qr_too_dense_to_print_legibly_is_refused() -> None:
    from engine.letters.layout import qr_print_size

    assert qr_print_size("HTTPS://X.GO.ID/V/ABC", 28) == 28  # small QRs keep the template size
    with pytest.raises(ValueError, match="SURATDESA_PUBLIC_URL"):
        qr_print_size("HTTPS://X.GO.ID/V/" + "A" * 600, 28)
