"""A head whose key is on a PKCS#11 token (SoftHSM2 here) signs letters with the token PIN."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.bootstrap import enroll_hsm
from engine.config import PROJECT_ROOT
from engine.jobs import batch_runs
from engine.people.users import Actor, get_user
from engine.requests import batches
from engine.services import Services
from engine.storage.db import transaction
from engine.storage.models import AuditEvent, Letter, NumberSequence, User
from engine.trust.hsm import TokenBusy
from suratdesa.web import create_app
from tests.letters import GROGOL, Staff, assert_certified_and_timestamped, validate_signed_pdf
from tests.softhsm import MODULE, PIN, softhsm_token

TOKEN = "suratdesa-issuance"
HEAD = "head.grogol"


@pytest.fixture
def token(tmp_path_factory: pytest.TempPathFactory):
    with softhsm_token(tmp_path_factory.mktemp("softhsm"), TOKEN) as conf:
        yield conf


@pytest.fixture
def hsm_settings(settings, token):
    return replace(settings, pkcs11_module=MODULE, pkcs11_token=TOKEN)


@pytest.fixture
def hsm_services(hsm_settings) -> Services:
    services = Services.from_settings(hsm_settings)
    with transaction(services.factory) as session:
        by = Actor.of(get_user(session, "admin"))
        enroll_hsm(session, hsm_settings, get_user(session, HEAD), PIN, by=by)
    return services


@pytest.fixture
def staff(hsm_settings, hsm_services, logins) -> Staff:
    return Staff(TestClient(create_app(hsm_settings)), logins)


def general_letter(staff: Staff, logins, index: int = 0) -> dict:
    r = staff.post(
        "operator.grogol",
        "/api/requests",
        {
            "workflow_id": "surat-keterangan-umum",
            "subjects": {"applicant": logins.sample_niks[GROGOL][index]},
            "data": {"keperluan": "Persyaratan melamar pekerjaan"},
        },
    )
    assert r.status_code == 201, r.text
    return staff.walk_to_signing("grogol", r.json())


def head_actor(services: Services) -> Actor:
    with transaction(services.factory) as session:
        return Actor.of(session.scalar(select(User).where(User.username == HEAD)))


def counts(services: Services) -> tuple[int, int, list]:
    with transaction(services.factory) as session:
        letters = session.scalar(select(func.count(Letter.id)))
        numbers = session.scalar(select(func.count()).select_from(NumberSequence))
        failed = [
            (e.request_id, e.actor, e.reason)
            for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "sign_failed"))
        ]
    return letters, numbers, failed


def test_enrolment_records_the_token_key(hsm_services):
    with transaction(hsm_services.factory) as session:
        user = get_user(session, HEAD)
        assert user.signer_hsm_label == HEAD
        assert user.signer_p12 is None  # the PKCS#12 is dropped: the token key signs now
        cert = x509.load_pem_x509_certificate(user.signer_cert_pem.encode())
        assert user.signer_serial == format(cert.serial_number, "x")
        assert user.signer_not_after == cert.not_valid_after_utc
        assert cert.subject.rfc4514_string().startswith("CN=Hartono Contoh,")


def test_head_signs_with_the_token_pin(staff, hsm_services, hsm_settings, logins):
    request = general_letter(staff, logins)
    # a wrong PIN: 403, nothing signed, no number used, audited like a wrong passphrase
    r = staff.sign(HEAD, request, "000000")
    assert r.status_code == 403
    assert "salah" in r.json()["detail"]
    assert counts(hsm_services) == (0, 0, [(request["id"], HEAD, "kata sandi salah")])
    # the demo PKCS#12 passphrase no longer opens anything
    assert staff.sign(HEAD, request, "ttd-demo-2026").status_code == 403

    r = staff.sign(HEAD, request, PIN)
    assert r.status_code == 200, r.text
    issued = r.json()
    assert issued["state"] == "issued"
    assert issued["letter"]["number"].split("/")[1] == "001"
    pdf = staff.get("operator.grogol", issued["letter"]["pdf_url"]).content
    assert_certified_and_timestamped(pdf, hsm_settings.keys_dir)
    status = validate_signed_pdf(pdf, hsm_settings.keys_dir)
    with transaction(hsm_services.factory) as session:
        serial = get_user(session, HEAD).signer_serial
    assert format(status.signing_cert.serial_number, "x") == serial  # the token's key signed

    # the token session was closed after the sign: the next letter signs (no TokenBusy)
    second = general_letter(staff, logins, 1)
    r = staff.sign(HEAD, second, PIN)
    assert r.status_code == 200, r.text
    assert r.json()["letter"]["number"].split("/")[1] == "002"


def test_a_failed_issue_still_closes_the_token_session(staff, hsm_services, logins):
    request = general_letter(staff, logins)
    stale = {**request, "version": request["version"] - 1}
    assert staff.sign(HEAD, stale, PIN).status_code == 409
    assert counts(hsm_services)[:2] == (0, 0)
    assert staff.sign(HEAD, request, PIN).status_code == 200


def test_sign_many_and_batches_close_the_token_session(staff, hsm_services, logins):
    issuer = hsm_services.issuer
    requests = [general_letter(staff, logins, i) for i in range(3)]
    actor = head_actor(hsm_services)
    results = issuer.sign_many(
        actor, [(r["id"], r["version"]) for r in requests[:2]], passphrase=PIN
    )
    assert [type(x).__name__ for x in results] == ["Letter", "Letter"]

    # the staff app's batch: unlock, start, run in the background; run closes the signer
    signer = issuer.unlock(actor, PIN)
    with pytest.raises(TokenBusy):  # one open signer per token and process
        issuer.unlock(actor, PIN)
    owner = batch_runs.new_owner()
    batch_id = batch_runs.start(issuer, actor, [(requests[2]["id"], requests[2]["version"])], owner)
    batch_runs.run(issuer, actor, batch_id, signer, owner)
    view = batches.view(issuer, actor, batch_id)
    assert [i.status for i in view.items] == ["done"]
    issuer.unlock(actor, PIN).close()  # closed after the batch


def test_cli_enrols_a_head_on_the_token(hsm_settings, token):
    env = {
        "PATH": "/usr/bin:/bin",
        "SURATDESA_DATABASE_URL": hsm_settings.database_url,
        "SURATDESA_KEYS_DIR": str(hsm_settings.keys_dir),
        "SOFTHSM2_CONF": str(token),
    }

    def cli(*args: str, **extra: str):
        return subprocess.run(
            [sys.executable, "-m", "suratdesa.cli", "keys", "issue-signer", HEAD, *args],
            capture_output=True,
            text=True,
            env={**env, **extra},
            input=PIN + "\n",
            cwd=PROJECT_ROOT,
        )

    missing = cli("--hsm", "--passphrase-stdin")
    assert missing.returncode == 2 and "SURATDESA_PKCS11_MODULE" in missing.stderr
    pkcs11_env = {"SURATDESA_PKCS11_MODULE": MODULE, "SURATDESA_PKCS11_TOKEN": TOKEN}
    done = cli("--hsm", "--passphrase-stdin", **pkcs11_env)
    assert done.returncode == 0, done.stderr
    assert "token HSM" in done.stdout
    again = cli("--hsm", "--passphrase-stdin", **pkcs11_env)  # the label is taken
    assert again.returncode == 1 and "sudah dipakai" in again.stderr
    services = Services.from_settings(hsm_settings)
    with transaction(services.factory) as session:
        user = get_user(session, HEAD)
        assert user.signer_hsm_label == HEAD and user.signer_p12 is None
    with services.issuer.unlock(head_actor(services), PIN) as signer:
        assert signer.common_name == "Hartono Contoh"


def test_a_busy_token_is_a_clear_conflict_not_a_server_error(staff, hsm_services, logins):
    request = general_letter(staff, logins)
    held = hsm_services.issuer.unlock(head_actor(hsm_services), PIN)
    try:
        r = staff.sign(HEAD, request, PIN)
        assert r.status_code == 409, r.text
        assert r.json()["detail"]
        assert counts(hsm_services)[:2] == (0, 0)
    finally:
        held.close()
    assert staff.sign(HEAD, request, PIN).status_code == 200


def test_renewing_a_head_on_the_token_keeps_the_new_key_there(
    staff, hsm_services, hsm_settings, logins
):
    """A renewal (here from the admin's users page) of a key on the HSM makes the new key on
    the token under a label of its own, destroys the old key, and the head signs on with the
    same PIN; the letter signed before stays ASLI."""
    from engine.trust.hsm import open_session
    from engine.trust.registry import verify_letter
    from engine.trust.verification import VALID
    from tests.test_staff_app import csrf_of, sign_in

    first = staff.sign(HEAD, general_letter(staff, logins), PIN)
    assert first.status_code == 200, first.text
    before = staff.get("operator.grogol", first.json()["letter"]["pdf_url"]).content
    with transaction(hsm_services.factory) as session:
        head = get_user(session, HEAD)
        head_id, old_serial = head.id, head.signer_serial

    admin = sign_in(create_app(hsm_settings), "admin")
    page = admin.get("/staf/admin/pengguna").text
    assert 'placeholder="PIN token HSM' in page  # the form asks for the PIN, not a passphrase
    r = admin.post(
        f"/staf/admin/pengguna/{head_id}/perbarui",
        data={"csrf": csrf_of(page), "passphrase": PIN, "old": "cabut", "reason": "Ganti kunci"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text

    with transaction(hsm_services.factory) as session:
        head = get_user(session, HEAD)
        label, new_serial = head.signer_hsm_label, head.signer_serial
        assert head.signer_p12 is None  # no PKCS#12 was made
    assert label.startswith(f"{HEAD}.") and new_serial != old_serial
    token = open_session(MODULE, TOKEN, PIN)
    try:
        labels = {obj[3] for obj in token.get_objects()}  # CKA_LABEL
    finally:
        token.close()
    assert HEAD not in labels and label in labels  # the old key is gone from the token

    second = staff.sign(HEAD, general_letter(staff, logins, 1), PIN)
    assert second.status_code == 200, second.text
    after = staff.get("operator.grogol", second.json()["letter"]["pdf_url"]).content
    assert (
        format(validate_signed_pdf(after, hsm_settings.keys_dir).signing_cert.serial_number, "x")
        == new_serial
    )
    assert verify_letter(before, hsm_services.factory, hsm_settings.keys_dir).status == VALID
