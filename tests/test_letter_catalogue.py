"""The letter catalogue: every shipped letter type, issued through the JSON API from sample
residents to a signed letter, then checked as a reader would check it: the PDF's certification
signature and timestamp, the QR and the public page it leads to (ASLI, with the type's public
facts), and the printed text (number, title, names, key field values).

Only the test helpers (tests/letters.py) and fixtures (tests/conftest.py) are used, so the test
does not depend on where the engine's modules live; the workflow YAML is read as data."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.letters import (
    GROGOL,
    LETTERS,
    Staff,
    assert_certified_and_timestamped,
    create_request,
    decode_qr,
    issue,
    pdf_text,
    preview_pdf,
)

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"

CATALOGUE = (
    "surat-keterangan-umum",
    "surat-keterangan-kematian",
    "surat-keterangan-kelahiran",
    "surat-keterangan-domisili",
    "surat-keterangan-tidak-mampu",
    "surat-keterangan-usaha",
    "surat-pengantar-skck",
    "surat-keterangan-pindah",
    "surat-keterangan-penghasilan",
    "surat-keterangan-belum-menikah",
    "surat-keterangan-beda-identitas",
)

# Text each letter must print besides its number, title and the names of its subjects: the
# values of its key fields, as the template formats them (dates in Indonesian, money as Rp).
KEY_TEXT: dict[str, list[str]] = {
    "surat-keterangan-umum": ["Persyaratan melamar pekerjaan"],
    "surat-keterangan-kematian": [
        "20 November 2026",
        "14.30 WIB",
        "Rumah",
        "Sakit",
        "Kewarganegaraan : Warga Negara Indonesia (WNI)",
        "Hubungan : Anak kandung dari yang meninggal",
    ],
    "surat-keterangan-kelahiran": [
        "BAYI CONTOH",
        "anak ke-2",
        "25 November 2026",
        "08.15 WIB",
        "Puskesmas Weru",
    ],
    "surat-keterangan-domisili": [
        "Dusun Krajan RT 002 RW 001",
        "1 Maret 2015",
        "07/RT.002/XI/2026",
        "Pembukaan rekening bank",
    ],
    "surat-keterangan-tidak-mampu": [
        "3311010101000001",
        "Terdaftar dalam DTKS",
        "DTKS-3311-000123",
        "Rp 1.200.000",
        "3 orang",
        "Keringanan biaya rawat inap",
        "Istri",
        "Anak",
        "tidak mampu",
    ],
    "surat-keterangan-usaha": [
        "Warung Makan Sederhana",
        "Kuliner",
        "Dusun Contoh 2",
        "2018",
        "Milik sendiri",
        "Pengajuan Kredit Usaha Rakyat",
    ],
    "surat-pengantar-skck": [
        "Surat Keterangan Catatan Kepolisian (SKCK)",
        "Kepolisian Sektor",
        "berkelakuan baik",
        "Melamar pekerjaan",
        "Demikian surat pengantar ini",
    ],
    "surat-keterangan-pindah": [
        "3311010101000001",
        "Jalan Melati 12 RT 003 RW 004",
        "Caturtunggal",
        "Depok",
        "Sleman",
        "DI Yogyakarta",
        "Antar provinsi",
        "Pekerjaan",
        "Anggota keluarga yang ikut pindah",
        "Istri",
    ],
    "surat-keterangan-penghasilan": [
        "Buruh tani",
        "Rp 2.500.000",
        "2 orang",
        "orang tua/wali",
        "Pendaftaran beasiswa sekolah",
    ],
    "surat-keterangan-belum-menikah": [
        "belum pernah menikah",
        "(perawan)",  # the sample applicant n[1] is a woman
        "Persyaratan melamar pekerjaan",
    ],
    "surat-keterangan-beda-identitas": [
        "Ijazah SD",
        "DN-03 Dd 0123456",
        "Slamet Riyadi",
        "satu orang yang sama",
        "Pengurusan paspor",
    ],
}

BULAN = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
]


def spec_of(workflow_id: str) -> dict:
    """The workflow YAML of a type, read as data."""
    for path in sorted(WORKFLOWS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if doc.get("id") == workflow_id:
            return doc
    raise AssertionError(f"no workflow YAML with id {workflow_id}")


def flat(text: str) -> str:
    return " ".join(text.split())


def shown(value: object) -> str:
    """A form value as the public page shows it: dates in Indonesian, the rest as text."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        d = date.fromisoformat(value)
        return f"{d.day} {BULAN[d.month - 1]} {d.year}"
    return flat(str(value))


@pytest.fixture
def staff(settings, logins) -> Staff:
    from suratdesa.web import create_app  # the app assembly, imported where it is used

    return Staff(TestClient(create_app(settings)), logins)


def test_catalogue_has_sample_data_and_key_text_for_every_shipped_type():
    shipped = {
        yaml.safe_load(p.read_text(encoding="utf-8"))["id"] for p in WORKFLOWS.glob("*.yaml")
    }
    assert set(CATALOGUE) <= shipped
    assert shipped <= set(LETTERS), f"no sample data in tests/letters.py: {shipped - set(LETTERS)}"
    assert set(CATALOGUE) == set(KEY_TEXT)


def test_workflows_check_lists_at_least_eleven_types():
    result = subprocess.run(
        [sys.executable, "-m", "suratdesa.cli", "workflows", "check"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    listed = [line for line in result.stdout.splitlines() if line.startswith("ok ")]
    assert len(listed) >= 11, result.stdout
    for workflow_id in CATALOGUE:
        assert f" {workflow_id} v" in result.stdout, workflow_id


@pytest.mark.parametrize("workflow_id", CATALOGUE)
def test_letter_type_issues_signs_and_verifies(
    workflow_id, staff, logins, settings, passphrase, tmp_path
):
    spec = spec_of(workflow_id)
    niks = logins.sample_niks[GROGOL][:4]
    subjects, data = LETTERS[workflow_id](niks)
    residents = {
        role: staff.get("operator.grogol", f"/api/residents/{nik}").json()
        for role, nik in subjects.items()
    }

    letter = issue(staff, workflow_id, passphrase)
    pdf = letter["pdf"]
    assert pdf.startswith(b"%PDF")
    number = letter["number"]
    assert number.startswith(f"{spec['classification']}/001/{GROGOL}/")

    # The file: a certification signature over the whole file, with a timestamp.
    assert_certified_and_timestamped(pdf, settings.keys_dir)

    # The printed text: number, title, every subject's name and the key field values.
    text = flat(pdf_text(pdf, tmp_path))
    assert number in text
    assert spec["title"].upper() in text
    assert "DESA GROGOL" in text
    assert "Yang bertanda tangan di bawah ini" in text
    for role, person in residents.items():
        assert person["name"].upper() in text, role
    for expected in KEY_TEXT[workflow_id]:
        assert flat(expected) in text, expected
    for nik in subjects.values():  # NIKs are printed in full on the letter itself
        assert nik in text

    # The QR leads to the public page, which says ASLI, accepts the seal and shows the
    # type's public facts (at most three), with no full NIK.
    (scanned,) = decode_qr(pdf)
    assert scanned.lower().startswith(settings.public_url.lower())
    page = staff.client.get(scanned[len(settings.public_url) :])
    assert page.status_code == 200, page.text
    assert "<strong>ASLI</strong>" in page.text
    assert 'id="seal"' in page.text  # the seal in the QR verified
    assert number in page.text
    facts = spec.get("public_facts") or []
    assert 1 <= len(facts) <= 3
    for fact in facts:
        source, _, name = fact["from"].partition(":")
        if source == "subject":
            role, _, attr = name.partition(".")
            value = residents[role][attr or "name"]
        else:
            value = shown(data[name])
        pattern = (
            rf"<dt>{re.escape(html.escape(fact['label']))}</dt>\s*"
            rf'<dd class="fact">{re.escape(html.escape(value))}</dd>'
        )
        assert re.search(pattern, page.text), (fact, value)
    for nik in subjects.values():
        assert nik not in page.text


# --------------------------------------------------------------------------- wording


def letter_text(pdf: bytes, tmp_path: Path) -> str:
    return flat(pdf_text(pdf, tmp_path))


def completed_years(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def test_general_certificate_states_good_conduct_only_when_chosen_and_the_purpose_once(
    staff, passphrase, tmp_path
):
    # The sample asks for nothing about conduct: the signed letter asserts none.
    text = letter_text(issue(staff, "surat-keterangan-umum", passphrase)["pdf"], tmp_path)
    assert "Persyaratan melamar pekerjaan" in text
    assert "kelakuan" not in text.lower()
    assert text.lower().count("keperluan") == 1, text

    for choice, stated in (("Tidak", False), ("Ya", True)):
        request = create_request(staff, "surat-keterangan-umum", data={"kelakuan_baik": choice})
        text = letter_text(preview_pdf(staff, request), tmp_path)
        assert ("sepanjang pengetahuan kami berkelakuan baik" in text) is stated, choice
        assert text.lower().count("keperluan") == 1, text


def test_death_letter_prints_age_at_death_citizenship_and_the_reporters_relationship(
    staff, logins, passphrase, tmp_path
):
    niks = logins.sample_niks[GROGOL]
    _, data = LETTERS["surat-keterangan-kematian"](niks[:4])
    deceased = staff.get("operator.grogol", f"/api/residents/{niks[0]}").json()
    age = completed_years(
        date.fromisoformat(deceased["birth_date"]), date.fromisoformat(data["date_of_death"])
    )
    assert 60 <= age <= 70  # the sample man was born in 1958

    text = letter_text(issue(staff, "surat-keterangan-kematian", passphrase)["pdf"], tmp_path)
    assert f"Umur : {age} tahun" in text
    assert "Kewarganegaraan : Warga Negara Indonesia (WNI)" in text
    assert "Hubungan : Anak kandung dari yang meninggal" in text
    # the relationship follows the reporter's block, not the deceased's
    reporter = staff.get("operator.grogol", f"/api/residents/{niks[2]}").json()
    assert text.index(reporter["name"].upper()) < text.index("Anak kandung dari")


def test_birth_letter_prints_the_birth_order_and_a_reporting_parent_once(
    staff, logins, passphrase, tmp_path
):
    niks = logins.sample_niks[GROGOL]
    name = {
        i: staff.get("operator.grogol", f"/api/residents/{niks[i]}").json()["name"].upper()
        for i in (0, 1, 2)
    }
    father, mother, other = name[0], name[1], name[2]

    # The sample: the father reports the birth. He is printed once, in the parents' block.
    text = letter_text(issue(staff, "surat-keterangan-kelahiran", passphrase)["pdf"], tmp_path)
    assert "sebagai anak ke-2 dari seorang ibu" in text
    assert text.count(father) == 1, text
    assert text.count(niks[0]) == 1
    assert "dilaporkan oleh ayah kandung anak tersebut" in text
    assert "berdasarkan laporan dari" not in text

    # The mother reports: she too is printed once.
    request = create_request(staff, "surat-keterangan-kelahiran", subjects={"reporter": 1})
    text = letter_text(preview_pdf(staff, request), tmp_path)
    assert text.count(mother) == 1 and text.count(father) == 1
    assert "dilaporkan oleh ibu kandung anak tersebut" in text

    # Someone else reports: their own block, with how they are related to the child.
    request = create_request(
        staff,
        "surat-keterangan-kelahiran",
        subjects={"reporter": 2},
        data={"reporter_relation": "Paman", "birth_order": None},
    )
    text = letter_text(preview_pdf(staff, request), tmp_path)
    assert "berdasarkan laporan dari" in text
    assert text.count(other) == 1 and text.count(father) == 1
    assert "Hubungan : Paman dari anak tersebut" in text
    assert "anak ke-" not in text  # no birth order given, none printed
