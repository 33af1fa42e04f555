"""Test helpers: drive requests through the API as the demo staff would, and inspect PDFs."""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from engine.bootstrap import DemoLogins
from engine.trust.pki import load_root_ca
from tests.conftest import require_tool

GROGOL = "33.11.01.2001"
KENEP = "33.11.04.1001"


@dataclass
class Staff:
    client: TestClient
    logins: DemoLogins

    def headers(self, username: str) -> dict[str, str]:
        token = next(row[3] for row in self.logins.rows if row[0] == username)
        return {"Authorization": f"Bearer {token}"}

    def post(self, username: str, path: str, body: dict):
        return self.client.post(path, json=body, headers=self.headers(username))

    def get(self, username: str, path: str):
        return self.client.get(path, headers=self.headers(username))

    def act(self, username: str, request: dict, action: str, **extra) -> dict:
        r = self.post(
            username,
            f"/api/requests/{request['id']}/actions",
            {"action": action, "version": request["version"], **extra},
        )
        assert r.status_code == 200, r.text
        return r.json()

    def sign(self, username: str, request: dict, passphrase: str):
        return self.post(
            username,
            f"/api/requests/{request['id']}/sign",
            {"version": request["version"], "passphrase": passphrase},
        )

    def walk_to_signing(self, slug: str, request: dict) -> dict:
        """Follow the request's steps from draft to the signing step with each step's role."""
        while request["state"] != "signing":
            role = {"draft": "operator"}.get(request["state"])
            if role is None:
                role = self.role_of(request)
            action = "submit" if request["state"] == "draft" else "approve"
            request = self.act(f"{role}.{slug}", request, action)
        return request

    def role_of(self, request: dict) -> str:
        workflows = self.get("operator.grogol", "/api/workflows").json()
        spec = next(w for w in workflows if w["id"] == request["workflow_id"])
        return spec["steps"][request["state"]]["role"]


LETTERS = {
    "surat-keterangan-umum": lambda n: (
        {"applicant": n[0]},
        {"keperluan": "Persyaratan melamar pekerjaan"},
    ),
    "surat-keterangan-kematian": lambda n: (
        {"deceased": n[0], "reporter": n[2]},
        {
            "date_of_death": "2026-11-20",
            "time_of_death": "14:30",
            "place_of_death": "Rumah",
            "cause": "Sakit",
            "reporter_relation": "Anak kandung",
        },
    ),
    "surat-keterangan-kelahiran": lambda n: (
        {"mother": n[1], "father": n[0], "reporter": n[0]},
        {
            "child_name": "Bayi Contoh",
            "child_sex": "Perempuan",
            "birth_date": "2026-11-25",
            "birth_time": "08:15",
            "birth_place": "Puskesmas Weru",
            "birth_order": 2,
        },
    ),
    "surat-keterangan-domisili": lambda n: (
        {"applicant": n[0]},
        {
            "alamat_domisili": "Dusun Krajan RT 002 RW 001",
            "domisili_sejak": "2015-03-01",
            "pengantar_rt": "07/RT.002/XI/2026",
            "keperluan": "Pembukaan rekening bank",
        },
    ),
    "surat-keterangan-tidak-mampu": lambda n: (
        {"head_of_family": n[0], "member_1": n[1], "member_2": n[2]},
        {
            "no_kk": "3311010101000001",
            "hubungan_1": "Istri",
            "hubungan_2": "Anak",
            "status_dtks": "Terdaftar dalam DTKS",
            "id_dtks": "DTKS-3311-000123",
            "penghasilan_bulanan": 1200000,
            "jumlah_tanggungan": 3,
            "keperluan": "Keringanan biaya rawat inap",
        },
    ),
    "surat-keterangan-usaha": lambda n: (
        {"applicant": n[2]},
        {
            "nama_usaha": "Warung Makan Sederhana",
            "jenis_usaha": "Kuliner",
            "alamat_usaha": "Dusun Contoh 2",
            "tahun_mulai": 2018,
            "status_tempat": "Milik sendiri",
            "keperluan": "Pengajuan Kredit Usaha Rakyat",
        },
    ),
    "surat-pengantar-skck": lambda n: (
        {"applicant": n[0]},
        {"tujuan": "Polsek", "keperluan": "Melamar pekerjaan"},
    ),
    "surat-keterangan-pindah": lambda n: (
        {"applicant": n[0], "member_1": n[1], "member_2": n[3]},
        {
            "no_kk": "3311010101000001",
            "alamat_tujuan": "Jalan Melati 12 RT 003 RW 004",
            "desa_tujuan": "Caturtunggal",
            "kecamatan_tujuan": "Depok",
            "kabupaten_tujuan": "Sleman",
            "provinsi_tujuan": "DI Yogyakarta",
            "klasifikasi_pindah": "Antar provinsi",
            "jenis_kepindahan": "Kepala keluarga dan sebagian anggota keluarga",
            "alasan_pindah": "Pekerjaan",
            "hubungan_1": "Istri",
            "hubungan_2": "Anak",
        },
    ),
    "surat-keterangan-penghasilan": lambda n: (
        {"applicant": n[0], "child": n[3]},
        {
            "sumber_penghasilan": "Buruh tani",
            "penghasilan_bulanan": 2500000,
            "jumlah_tanggungan": 2,
            "keperluan": "Pendaftaran beasiswa sekolah",
        },
    ),
    "surat-keterangan-belum-menikah": lambda n: (
        {"applicant": n[1]},
        {"keperluan": "Persyaratan melamar pekerjaan"},
    ),
    "surat-keterangan-beda-identitas": lambda n: (
        {"applicant": n[2]},
        {
            "dokumen": "Ijazah SD",
            "nomor_dokumen": "DN-03 Dd 0123456",
            "data_berbeda": "Nama",
            "nama_di_dokumen": "Slamet Riyadi",
            "keperluan": "Pengurusan paspor",
        },
    ),
}
"""Subjects (by the village's sample NIKs) and form data for one letter of each shipped type."""


def create_request(
    staff: Staff,
    workflow_id: str,
    slug: str = "grogol",
    *,
    data: dict | None = None,
    subjects: dict | None = None,
) -> dict:
    """A draft request of ``workflow_id`` from the sample data, through the API, as the
    operator. ``data`` and ``subjects`` change the sample's values (``None`` drops one);
    a subject given as an int is the village's sample NIK with that index."""
    village = {"grogol": GROGOL, "kenep": KENEP}[slug]
    niks = staff.logins.sample_niks[village]
    base_subjects, base_data = LETTERS[workflow_id](niks[:4])
    chosen = {k: niks[v] if isinstance(v, int) else v for k, v in (subjects or {}).items()}
    body = {
        "workflow_id": workflow_id,
        "subjects": {k: v for k, v in {**base_subjects, **chosen}.items() if v is not None},
        "data": {k: v for k, v in {**base_data, **(data or {})}.items() if v is not None},
    }
    r = staff.post(f"operator.{slug}", "/api/requests", body)
    assert r.status_code == 201, r.text
    return r.json()


def issue(
    staff: Staff,
    workflow_id: str,
    passphrase: str,
    slug: str = "grogol",
    *,
    data: dict | None = None,
    subjects: dict | None = None,
) -> dict:
    """One letter of ``workflow_id`` from NIK to signed, through the API; its JSON plus
    ``pdf`` (the signed file as the operator downloads it). ``data`` and ``subjects`` as in
    ``create_request``."""
    created = create_request(staff, workflow_id, slug, data=data, subjects=subjects)
    request = staff.walk_to_signing(slug, created)
    signed = staff.sign(f"head.{slug}", request, passphrase)
    assert signed.status_code == 200, signed.text
    letter = signed.json()["letter"]
    letter["pdf"] = staff.get(f"operator.{slug}", letter["pdf_url"]).content
    return letter


def preview_pdf(staff: Staff, request: dict, slug: str = "grogol") -> bytes:
    """The DRAFT preview of a request, as the operator opens it."""
    r = staff.get(f"operator.{slug}", f"/api/requests/{request['id']}/preview.pdf")
    assert r.status_code == 200, r.text
    assert r.content.startswith(b"%PDF")
    return r.content


def validate_signed_pdf(pdf: bytes, keys_dir: Path) -> PdfSignatureStatus:
    root = asn1_x509.Certificate.load(load_root_ca(keys_dir).public_bytes(Encoding.DER))
    reader = PdfFileReader(io.BytesIO(pdf))
    # The certification signature, then only document timestamps (PAdES B-LTA at issue).
    kinds = [e.sig_object_type for e in reader.embedded_signatures]
    assert kinds[0] == "/Sig" and set(kinds[1:]) <= {"/DocTimeStamp"}, kinds
    context = ValidationContext(
        trust_roots=[root], allow_fetching=False, revocation_mode="soft-fail"
    )
    return validate_pdf_signature(reader.embedded_signatures[0], context)


def assert_certified_and_timestamped(pdf: bytes, keys_dir: Path) -> None:
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.fields import MDPPerm

    status = validate_signed_pdf(pdf, keys_dir)
    assert status.bottom_line, status.pretty_print_details()
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE or (
        status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
        and status.modification_level == ModificationLevel.LTA_UPDATES  # DSS + doc timestamp
    )
    assert status.docmdp_ok
    assert status.timestamp_validity is not None and status.timestamp_validity.intact
    assert status.timestamp_validity.valid
    reader = PdfFileReader(io.BytesIO(pdf))
    sig = reader.embedded_signatures[0]
    assert sig.docmdp_level == MDPPerm.NO_CHANGES  # a certification signature: no changes
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert "/DocMDP" in sig.sig_object["/Reference"][0]["/TransformMethod"]


def pdfsig_report(pdf: bytes, tmp_path: Path) -> str:
    pdfsig = require_tool("pdfsig")
    path = tmp_path / "letter.pdf"
    path.write_bytes(pdf)
    return subprocess.run([pdfsig, str(path)], capture_output=True, text=True, check=False).stdout


def decode_qr(pdf: bytes) -> list[str]:
    import pypdfium2
    import zxingcpp

    page = pypdfium2.PdfDocument(pdf)[0]
    image = page.render(scale=200 / 72).to_pil()
    # QR codes only: with every format on, a table rule or the kop's lines can read as a stray
    # 1-D barcode now and then (seen as a flaky "more than one barcode" on a busy machine).
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    pdftotext = require_tool("pdftotext")
    path = tmp_path / "text.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        [pdftotext, "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
