"""End to end: the emblem the regency admin uploads and the village's contact lines are on the
signed letter and its DRAFT preview; the signature still validates and the QR still decodes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.letters import kop
from engine.people.users import Actor, get_user
from engine.storage.db import session_factory, transaction
from tests.letters import (
    Staff,
    assert_certified_and_timestamped,
    create_request,
    decode_qr,
    issue,
    pdf_text,
    preview_pdf,
)
from tests.test_letter_look import images, png


def test_the_issued_letter_prints_the_uploaded_emblem_and_contacts(
    settings, logins, passphrase, tmp_path
):
    from suratdesa.web import create_app

    with transaction(session_factory(settings.database_url)) as session:
        kop.set_emblem(session, Actor.of(get_user(session, "admin")), png())
    staff = Staff(TestClient(create_app(settings)), logins)
    letter = issue(staff, "surat-keterangan-domisili", passphrase)
    pdf = letter["pdf"]
    assert [r[2] for r in images(pdf, tmp_path)] == ["image", "smask"]
    text = " ".join(pdf_text(pdf, tmp_path).split())
    assert "Telepon (0271) 593100" in text and "Laman: https://grogol.sukoharjo.example" in text
    assert "Ditandatangani secara elektronik oleh:" in text
    assert len(decode_qr(pdf)) == 1
    assert_certified_and_timestamped(pdf, settings.keys_dir)
    draft = preview_pdf(staff, create_request(staff, "surat-keterangan-domisili"))
    assert [r[2] for r in images(draft, tmp_path)] == ["image", "smask"] and decode_qr(draft) == []
