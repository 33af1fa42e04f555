"""The spine through the JSON API: NIK -> request -> approval chain -> signed letter -> QR."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.dates import roman_month, today_wib
from engine.storage.db import transaction
from engine.storage.models import AuditEvent, Letter, NumberSequence, Resident
from engine.trust.seal import local_keys, parse_qr, verify_seal
from suratdesa.web import create_app
from tests.letters import (
    GROGOL,
    KENEP,
    LETTERS,
    Staff,
    assert_certified_and_timestamped,
    decode_qr,
    pdf_text,
    pdfsig_report,
)


@pytest.fixture
def staff(settings, logins) -> Staff:
    return Staff(TestClient(create_app(settings)), logins)


def nik(logins, village: str, index: int) -> str:
    return logins.sample_niks[village][index]


def create(staff: Staff, workflow_id: str, subjects: dict, data: dict, user="operator.grogol"):
    return staff.post(
        user, "/api/requests", {"workflow_id": workflow_id, "subjects": subjects, "data": data}
    )


CLASSIFICATIONS = {
    "surat-keterangan-umum": "400.12.2.1",
    "surat-keterangan-kematian": "400.12.3.1",
    "surat-keterangan-kelahiran": "400.12.3.1",
}


@pytest.mark.parametrize("workflow_id", sorted(CLASSIFICATIONS))  # the rest: test_letter_catalogue
def test_each_letter_type_from_nik_to_verified_letter(
    workflow_id, staff, logins, settings, passphrase, tmp_path
):
    subjects, data = LETTERS[workflow_id]([nik(logins, GROGOL, i) for i in range(4)])
    r = create(staff, workflow_id, subjects, data)
    assert r.status_code == 201, r.text
    request = staff.walk_to_signing("grogol", r.json())
    r = staff.sign("head.grogol", request, passphrase)
    assert r.status_code == 200, r.text
    issued = r.json()
    assert issued["state"] == "issued"
    letter = issued["letter"]
    today = today_wib()
    classification = CLASSIFICATIONS[workflow_id]
    assert letter["number"] == (
        f"{classification}/001/{GROGOL}/{roman_month(today.month)}/{today.year}"
    )
    # The operator downloads the signed PDF.
    pdf = staff.get("operator.grogol", letter["pdf_url"]).content
    assert pdf.startswith(b"%PDF")
    assert_certified_and_timestamped(pdf, settings.keys_dir)
    report = pdfsig_report(pdf, tmp_path)
    assert "Signature is Valid." in report
    assert "Total document signed" in report
    text = pdf_text(pdf, tmp_path)
    assert letter["number"] in text
    assert "DESA GROGOL" in text
    # The QR printed on the page leads to the public page, which names the letter.
    # The QR carries the verification URL plus an offline seal signed with the regency's key.
    (scanned,) = decode_qr(pdf)
    qr = parse_qr(scanned)
    assert qr.code == letter["verify_url"].rsplit("/", 1)[1]
    assert scanned.lower().startswith(settings.public_url.lower())
    sealed = verify_seal(qr.seal, local_keys(settings.keys_dir))
    assert sealed.number == letter["number"]
    page = staff.client.get(letter["verify_url"].removeprefix(settings.public_url))
    assert page.status_code == 200
    assert "ASLI" in page.text
    assert letter["number"] in page.text
    assert subjects[next(iter(subjects))] not in page.text  # full NIK never shown


def test_timeline_and_audit_record_every_step(staff, logins, passphrase, services):
    subjects, data = LETTERS["surat-keterangan-umum"]([nik(logins, GROGOL, 0)])
    request = staff.walk_to_signing(
        "grogol", create(staff, "surat-keterangan-umum", subjects, data).json()
    )
    assert staff.sign("head.grogol", request, passphrase).status_code == 200
    timeline = staff.get("operator.grogol", f"/api/requests/{request['id']}").json()["timeline"]
    assert [(e["action"], e["role"], e["to_state"]) for e in timeline] == [
        ("create", "operator", "draft"),
        ("submit", "operator", "review"),
        ("approve", "sekdes", "signing"),
        ("sign", "head", "issued"),
    ]


def test_return_keeps_data_requires_reason_and_resubmit_works(staff, logins, passphrase):
    subjects, data = LETTERS["surat-keterangan-umum"]([nik(logins, GROGOL, 0)])
    request = create(staff, "surat-keterangan-umum", subjects, data).json()
    request = staff.act("operator.grogol", request, "submit")
    r = staff.post(
        "sekdes.grogol",
        f"/api/requests/{request['id']}/actions",
        {"action": "return", "version": request["version"]},
    )
    assert r.status_code == 422 and "alasan" in r.json()["detail"]
    request = staff.act("sekdes.grogol", request, "return", reason="Keperluan kurang jelas")
    assert request["state"] == "draft"
    assert request["data"]["keperluan"] == data["keperluan"]
    assert request["timeline"][-1]["reason"] == "Keperluan kurang jelas"
    request = staff.act(
        "operator.grogol", request, "submit", data={"keperluan": "Melamar kerja di PT Contoh"}
    )
    assert request["state"] == "review"
    assert request["data"]["keperluan"] == "Melamar kerja di PT Contoh"


def test_reject_requires_reason_and_ends_the_request(staff, logins):
    subjects, data = LETTERS["surat-keterangan-umum"]([nik(logins, GROGOL, 0)])
    request = staff.act(
        "operator.grogol", create(staff, "surat-keterangan-umum", subjects, data).json(), "submit"
    )
    request = staff.act("sekdes.grogol", request, "reject", reason="Bukan warga yang dimaksud")
    assert request["state"] == "rejected"
    assert request["actions"] == []


def test_operator_can_cancel_before_signing_but_not_after(staff, logins, passphrase):
    subjects, data = LETTERS["surat-keterangan-umum"]([nik(logins, GROGOL, 0)])
    request = staff.walk_to_signing(
        "grogol", create(staff, "surat-keterangan-umum", subjects, data).json()
    )
    cancelled = staff.act("operator.grogol", request, "cancel", reason="Pemohon membatalkan")
    assert cancelled["state"] == "cancelled"
    r = staff.sign("head.grogol", cancelled, passphrase)
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("12345", "16 digit"),
        ("33110a0101009001", "angka"),
        ("9911010101009001", "provinsi"),
        ("3311013102990001", "Tanggal lahir"),
    ],
)
def test_malformed_nik_says_which_part_is_wrong(staff, value, fragment):
    r = create(staff, "surat-keterangan-umum", {"applicant": value}, {"keperluan": "x"})
    assert r.status_code == 422
    assert fragment in r.json()["errors"]["applicant"]


def test_unknown_nik_is_not_found_in_registry(staff, logins):
    unknown = "3311015505909999"
    r = create(staff, "surat-keterangan-umum", {"applicant": unknown}, {"keperluan": "x"})
    assert r.status_code == 422
    assert "tidak terdaftar" in r.json()["errors"]["applicant"]


def test_death_letter_refuses_a_resident_already_deceased(staff, logins, services):
    deceased = nik(logins, GROGOL, 0)
    with transaction(services.factory) as session:
        session.scalar(select(Resident).where(Resident.nik == deceased)).alive = False
    subjects, data = LETTERS["surat-keterangan-kematian"](
        [nik(logins, GROGOL, i) for i in range(4)]
    )
    r = create(staff, "surat-keterangan-kematian", subjects, data)
    assert r.status_code == 422
    assert "meninggal" in r.json()["errors"]["deceased"]


def test_issuing_a_death_letter_marks_the_resident_deceased(staff, logins, services, passphrase):
    subjects, data = LETTERS["surat-keterangan-kematian"](
        [nik(logins, GROGOL, i) for i in range(4)]
    )
    request = staff.walk_to_signing(
        "grogol", create(staff, "surat-keterangan-kematian", subjects, data).json()
    )
    assert staff.sign("head.grogol", request, passphrase).status_code == 200
    with transaction(services.factory) as session:
        person = session.scalar(select(Resident).where(Resident.nik == subjects["deceased"]))
        assert not person.alive
        assert person.died_on.isoformat() == "2026-11-20"


def test_field_of_the_wrong_type_is_named(staff, logins):
    subjects, data = LETTERS["surat-keterangan-kematian"](
        [nik(logins, GROGOL, i) for i in range(4)]
    )
    data = {**data, "date_of_death": "kemarin", "cause": "Diculik alien"}
    r = create(staff, "surat-keterangan-kematian", subjects, data)
    assert r.status_code == 422
    assert set(r.json()["errors"]) == {"date_of_death", "cause"}


def _audit_count(services) -> int:
    with transaction(services.factory) as session:
        return session.scalar(select(func.count(AuditEvent.id)))


def test_wrong_role_gets_403_and_nothing_changes(staff, logins, services):
    subjects, data = LETTERS["surat-keterangan-umum"]([nik(logins, GROGOL, 0)])
    request = staff.act(
        "operator.grogol", create(staff, "surat-keterangan-umum", subjects, data).json(), "submit"
    )
    before = _audit_count(services)
    r = staff.post(
        "operator.grogol",
        f"/api/requests/{request['id']}/actions",
        {"action": "approve", "version": request["version"]},
    )
    assert r.status_code == 403
    r = create(staff, "surat-keterangan-umum", subjects, data, user="sekdes.grogol")
    assert r.status_code == 403
    after = staff.get("operator.grogol", f"/api/requests/{request['id']}").json()
    assert (after["state"], after["version"]) == ("review", request["version"])
    assert _audit_count(services) == before


def test_another_village_gets_403_and_nothing_changes(staff, logins, services, passphrase):
    subjects, data = LETTERS["surat-keterangan-umum"]([nik(logins, GROGOL, 0)])
    request = staff.walk_to_signing(
        "grogol", create(staff, "surat-keterangan-umum", subjects, data).json()
    )
    before = _audit_count(services)
    assert staff.get("operator.kenep", f"/api/requests/{request['id']}").status_code == 403
    assert staff.sign("head.kenep", request, passphrase).status_code == 403
    assert staff.get("operator.kenep", f"/api/residents/{subjects['applicant']}").status_code == 404
    # A Kenep operator cannot start a letter about a Grogol resident either.
    r = create(staff, "surat-keterangan-umum", subjects, data, user="operator.kenep")
    assert r.status_code == 422
    assert (
        staff.get("operator.grogol", f"/api/requests/{request['id']}").json()["state"] == "signing"
    )
    assert _audit_count(services) == before


def test_no_token_or_bad_token_is_401(staff):
    assert staff.client.get("/api/workflows").status_code == 401
    r = staff.client.get("/api/workflows", headers={"Authorization": "Bearer sd_nope"})
    assert r.status_code == 401


def test_wrong_passphrase_signs_nothing_uses_no_number_and_is_audited(
    staff, logins, services, passphrase
):
    subjects, data = LETTERS["surat-keterangan-umum"]([nik(logins, GROGOL, 0)])
    request = staff.walk_to_signing(
        "grogol", create(staff, "surat-keterangan-umum", subjects, data).json()
    )
    r = staff.sign("head.grogol", request, "salah-sandi")
    assert r.status_code == 403
    assert "salah" in r.json()["detail"]
    with transaction(services.factory) as session:
        assert session.scalar(select(func.count(Letter.id))) == 0
        assert session.scalar(select(func.count()).select_from(NumberSequence)) == 0
        failed = session.scalars(select(AuditEvent).where(AuditEvent.action == "sign_failed")).all()
        assert [(e.request_id, e.actor) for e in failed] == [(request["id"], "head.grogol")]
    again = staff.get("head.grogol", f"/api/requests/{request['id']}").json()
    assert again["state"] == "signing"
    r = staff.sign("head.grogol", again, passphrase)
    assert r.status_code == 200
    assert r.json()["letter"]["number"].split("/")[1] == "001"


def test_kelurahan_letter_is_signed_by_the_lurah_with_nip(staff, logins, passphrase, tmp_path):
    subjects, data = LETTERS["surat-keterangan-umum"]([nik(logins, KENEP, 0)])
    r = create(staff, "surat-keterangan-umum", subjects, data, user="operator.kenep")
    assert r.status_code == 201, r.text
    request = staff.walk_to_signing("kenep", r.json())
    issued = staff.sign("head.kenep", request, passphrase).json()
    pdf = staff.get("operator.kenep", issued["letter"]["pdf_url"]).content
    text = pdf_text(pdf, tmp_path)
    assert "KELURAHAN KENEP" in text
    assert "LURAH KENEP" in text
    assert "NIP" in text


def test_cli_verify_gives_the_verdict_for_an_issued_letter(
    staff, logins, settings, passphrase, tmp_path
):
    import subprocess
    import sys

    subjects, data = LETTERS["surat-keterangan-umum"]([nik(logins, GROGOL, 0)])
    request = staff.walk_to_signing(
        "grogol", create(staff, "surat-keterangan-umum", subjects, data).json()
    )
    issued = staff.sign("head.grogol", request, passphrase).json()
    pdf = staff.get("operator.grogol", issued["letter"]["pdf_url"]).content
    genuine = tmp_path / "asli.pdf"
    genuine.write_bytes(pdf)
    tampered = tmp_path / "ubah.pdf"
    tampered.write_bytes(pdf + b"\n1 0 obj\n<< >>\nendobj\n%%EOF\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "SURATDESA_DATABASE_URL": settings.database_url,
        "SURATDESA_KEYS_DIR": str(settings.keys_dir),
    }

    def verify(path):
        return subprocess.run(
            [sys.executable, "-m", "suratdesa.cli", "verify", str(path)],
            capture_output=True,
            text=True,
            env=env,
        )

    ok = verify(genuine)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("VALID")
    bad = verify(tampered)
    assert bad.returncode == 1
    assert bad.stdout.startswith("INVALID")
