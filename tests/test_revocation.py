"""Revoking and replacing an issued letter through the API: who may, what the public page shows
at once, and what the audit log keeps."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.storage.audit import verify_chain
from engine.storage.db import transaction
from engine.storage.models import AuditEvent, Letter
from suratdesa.web import create_app
from tests.letters import Staff
from tests.test_tamper import issue_letter


@pytest.fixture
def client(settings) -> TestClient:
    return TestClient(create_app(settings))


def path(url: str) -> str:
    return url.removeprefix("http://testserver")


def actions(staff: Staff, request_id: int) -> list[str]:
    request = staff.get("operator.grogol", f"/api/requests/{request_id}").json()
    return [e["action"] for e in request["timeline"]]


def audit_count(services) -> int:
    with transaction(services.factory) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


def test_replacement_end_to_end(client, logins, passphrase, services):
    staff = Staff(client, logins)
    old = issue_letter(client, logins, passphrase)
    r = staff.post(
        "head.grogol",
        f"/api/requests/{old['request_id']}/letter/replace",
        {"reason": "Keperluan salah ketik", "data": {"keperluan": "Melamar pekerjaan di pabrik"}},
    )
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]
    # Until the corrected letter is signed, the old one stays valid.
    assert "ASLI" in client.get(path(old["verify_url"])).text

    # The new request walks the usual chain and is signed by the head.
    request = staff.get("operator.grogol", f"/api/requests/{new_id}").json()
    assert request["state"] == "draft" and request["data"]["keperluan"].endswith("pabrik")
    request = staff.walk_to_signing("grogol", request)
    signed = staff.sign("head.grogol", request, passphrase)
    assert signed.status_code == 200, signed.text
    new = signed.json()["letter"]
    assert new["number"] != old["number"] and new["status"] == "active"

    old_page = client.get(path(old["verify_url"]))
    assert old_page.status_code == 200
    assert "DIGANTI" in old_page.text
    code = new["verify_url"].rsplit("/", 1)[1]
    assert f'<a href="/v/{code}">{new["number"]}</a>' in old_page.text
    new_page = client.get(path(new["verify_url"]))
    assert "ASLI" in new_page.text and old["number"] in new_page.text  # "Membetulkan surat"
    assert "Melamar pekerjaan di pabrik" in new_page.text
    old_json = client.get("/api/public/letters/" + old["verify_url"].rsplit("/", 1)[1]).json()
    assert old_json["status"] == "replaced" and old_json["replaced_by"] == new["verify_url"]

    # Uploading the old file now says DIGANTI; the new one is VALID.
    report = client.post(
        "/api/public/verify", content=old["pdf"], headers={"content-type": "application/pdf"}
    ).json()
    assert report["status"] == "REPLACED", report

    # Both are in the audit log, which still verifies.
    assert "replace_letter" in actions(staff, old["request_id"])
    assert "replace_start" in actions(staff, new_id)
    with transaction(services.factory) as session:
        assert verify_chain(session).ok
        statuses = dict(session.execute(select(Letter.number, Letter.status)).all())
    assert statuses == {old["number"]: "replaced", new["number"]: "active"}

    # A replaced letter cannot be replaced or revoked again.
    again = staff.post(
        "head.grogol", f"/api/requests/{old['request_id']}/letter/revoke", {"reason": "x"}
    )
    assert again.status_code == 409


def test_revocation_shows_at_once_and_is_audited(client, logins, passphrase):
    staff = Staff(client, logins)
    letter = issue_letter(client, logins, passphrase)
    r = staff.post(
        "head.grogol",
        f"/api/requests/{letter['request_id']}/letter/revoke",
        {"reason": "Data pekerjaan keliru"},
    )
    assert r.status_code == 200 and r.json()["status"] == "revoked", r.text
    page = client.get(path(letter["verify_url"])).text
    assert "DICABUT" in page and "Data pekerjaan keliru" in page
    assert "revoke_letter" in actions(staff, letter["request_id"])


@pytest.mark.parametrize("who", ["head.kenep", "operator.grogol", "sekdes.grogol", "kasi.grogol"])
def test_only_the_villages_head_may_revoke_or_replace(client, logins, passphrase, services, who):
    staff = Staff(client, logins)
    letter = issue_letter(client, logins, passphrase)
    events = audit_count(services)
    base = f"/api/requests/{letter['request_id']}/letter"
    revoke = staff.post(who, f"{base}/revoke", {"reason": "Coba cabut"})
    replace = staff.post(who, f"{base}/replace", {"reason": "Coba ganti", "data": {}})
    assert revoke.status_code == replace.status_code == 403, (revoke.text, replace.text)
    assert "berwenang" in revoke.json()["detail"]
    assert audit_count(services) == events  # nothing happened
    assert "ASLI" in client.get(path(letter["verify_url"])).text


def test_revoke_needs_a_reason(client, logins, passphrase, services):
    staff = Staff(client, logins)
    letter = issue_letter(client, logins, passphrase)
    events = audit_count(services)
    base = f"/api/requests/{letter['request_id']}/letter"
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        r = staff.post("head.grogol", f"{base}/revoke", body)
        assert r.status_code == 422, (body, r.text)
        r = staff.post("head.grogol", f"{base}/replace", body)
        assert r.status_code == 422, (body, r.text)
    assert audit_count(services) == events
    assert "ASLI" in client.get(path(letter["verify_url"])).text


def test_the_regency_admin_may_revoke(client, logins, passphrase):
    staff = Staff(client, logins)
    letter = issue_letter(client, logins, passphrase)
    r = staff.post(
        "admin", f"/api/requests/{letter['request_id']}/letter/revoke", {"reason": "Putusan"}
    )
    assert r.status_code == 200, r.text
    assert "DICABUT" in client.get(path(letter["verify_url"])).text
