"""The public PDF download /v/{code}/surat.pdf: off unless the deployment turns it on
(SURATDESA_PUBLIC_PDF), and never for a revoked or replaced letter."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.config import get_settings
from suratdesa.web import create_app
from tests.conftest import with_url
from tests.letters import Staff, issue


def code_of(letter: dict) -> str:
    return letter["verify_url"].rsplit("/", 1)[1]


def assert_no_pdf(r) -> None:
    assert not r.headers.get("content-type", "").startswith("application/pdf")
    assert b"%PDF" not in r.content
    assert "content-disposition" not in r.headers


def test_no_public_pdf_by_default(settings, logins, passphrase):
    assert settings.public_pdf is False  # the default of Settings
    client = TestClient(create_app(settings))
    letter = issue(Staff(client, logins), "surat-keterangan-umum", passphrase)
    code = code_of(letter)
    page = client.get(f"/v/{code}")
    assert page.status_code == 200 and "ASLI" in page.text
    assert "surat.pdf" not in page.text and 'id="pdf-link"' not in page.text
    for prefix in ("/v", "/V"):
        r = client.get(f"{prefix}/{code}/surat.pdf")
        assert r.status_code == 404
        assert "PDF tidak tersedia" in r.text
        assert_no_pdf(r)


def test_the_setting_reads_the_environment(monkeypatch):
    monkeypatch.delenv("SURATDESA_PUBLIC_PDF", raising=False)
    assert get_settings().public_pdf is False
    monkeypatch.setenv("SURATDESA_PUBLIC_PDF", "1")
    assert get_settings().public_pdf is True
    monkeypatch.setenv("SURATDESA_PUBLIC_PDF", "0")
    assert get_settings().public_pdf is False
    monkeypatch.setenv("SURATDESA_PUBLIC_PDF", "kadang")
    with pytest.raises(ValueError, match="SURATDESA_PUBLIC_PDF"):
        get_settings()


def test_when_on_only_letters_in_force_are_served(settings, logins, passphrase):
    client = TestClient(create_app(with_url(settings, public_pdf=True)))
    staff = Staff(client, logins)
    letter = issue(staff, "surat-keterangan-umum", passphrase)
    code = code_of(letter)
    page = client.get(f"/v/{code}")
    assert f'href="/v/{code}/surat.pdf"' in page.text
    r = client.get(f"/v/{code}/surat.pdf")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert r.content == letter["pdf"]

    # Unknown code: the not-found page, no file.
    unknown = "A" * 32
    r = client.get(f"/v/{unknown}/surat.pdf")
    assert r.status_code == 404 and "TIDAK DITEMUKAN" in r.text
    assert_no_pdf(r)

    # Revoked: neither the link nor the file.
    request_id = staff.get("operator.grogol", "/api/requests").json()[0]["id"]
    r = staff.post(
        "head.grogol", f"/api/requests/{request_id}/letter/revoke", {"reason": "Salah data"}
    )
    assert r.status_code == 200, r.text
    page = client.get(f"/v/{code}")
    assert "DICABUT" in page.text and "surat.pdf" not in page.text
    r = client.get(f"/v/{code}/surat.pdf")
    assert r.status_code == 410 and "dicabut" in r.text
    assert_no_pdf(r)


def test_when_on_a_replaced_letter_is_not_served(settings, logins, passphrase):
    client = TestClient(create_app(with_url(settings, public_pdf=True)))
    staff = Staff(client, logins)
    old = issue(staff, "surat-keterangan-umum", passphrase)
    old_request = staff.get("operator.grogol", "/api/requests").json()[0]["id"]
    r = staff.post(
        "head.grogol",
        f"/api/requests/{old_request}/letter/replace",
        {"reason": "Salah ketik", "data": {"keperluan": "Melamar pekerjaan di pabrik"}},
    )
    assert r.status_code == 201, r.text
    request = staff.walk_to_signing(
        "grogol", staff.get("operator.grogol", f"/api/requests/{r.json()['id']}").json()
    )
    new = staff.sign("head.grogol", request, passphrase).json()["letter"]
    page = client.get(f"/v/{code_of(old)}")
    assert "DIGANTI" in page.text and f"/v/{code_of(old)}/surat.pdf" not in page.text
    r = client.get(f"/v/{code_of(old)}/surat.pdf")
    assert r.status_code == 410 and "diganti" in r.text
    assert_no_pdf(r)
    # The corrected letter is in force and served.
    r = client.get(f"/v/{code_of(new)}/surat.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
