"""Who signs besides the head: the sekdes "a.n. Kepala Desa" where the workflow allows it, and an
acting head (Plt.) recorded by the regency admin for a date range. Each letter's PDF text shows
the title and the name the signature block must carry."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from engine.bootstrap import enroll_signer
from engine.dates import WIB
from engine.errors import Forbidden
from engine.letters.issuance import Issuer
from engine.people import acting
from engine.people.users import Actor, get_user
from engine.requests.letter_requests import act, create_request
from engine.storage.db import transaction
from engine.storage.models import Letter
from suratdesa.web import create_app
from tests.letters import GROGOL, pdf_text
from tests.test_staff_app import P, client_for, csrf_of, page_csrf, sign_in, wait_batch

UMUM = "surat-keterangan-umum"
KEMATIAN = "surat-keterangan-kematian"


@pytest.fixture
def app(services):
    return create_app(services.settings)


def at_signing(services, logins, workflow_id: str, n: int = 0) -> tuple[int, int]:
    """A Grogol request walked by the demo staff up to the head's step: (id, version)."""
    niks = logins.sample_niks[GROGOL]
    with transaction(services.factory) as session:
        actors = {r: Actor.of(get_user(session, f"{r}.grogol")) for r in ("operator", "kasi")}
        actors["sekdes"] = Actor.of(get_user(session, "sekdes.grogol"))
        if workflow_id == UMUM:
            subjects, data = {"applicant": niks[n]}, {"keperluan": "Melamar pekerjaan"}
        else:
            subjects = {"deceased": niks[n], "reporter": niks[3]}
            data = {"date_of_death": "2026-01-05", "place_of_death": "Rumah", "cause": "Sakit"}
        req = create_request(
            session, services.catalog, actors["operator"], workflow_id, subjects, data
        )
        act(session, services.catalog, actors["operator"], req.id, "submit", version=req.version)
        spec = services.catalog.pinned(session, req)
        while spec.step(req.state).role != "head":
            role = spec.step(req.state).role
            act(session, services.catalog, actors[role], req.id, "approve", version=req.version)
        return req.id, req.version


def letter_of(services, request_id: int) -> Letter:
    with transaction(services.factory) as session:
        letter = session.query(Letter).filter_by(request_id=request_id).one()
        session.expunge(letter)
        return letter


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# --------------------------------------------------------------------------- a.n. Kepala Desa


def test_sekdes_signs_general_letter_an_kepala_desa(app, services, logins, passphrase, tmp_path):
    umum_id, _v = at_signing(services, logins, UMUM)
    death_id, death_version = at_signing(services, logins, KEMATIAN, n=1)
    sekdes = sign_in(app, "sekdes.grogol")

    queue = sekdes.get(f"{P}/tandatangan")
    assert queue.status_code == 200
    picks = re.findall(r'name="req" value="(\d+:\d+)"', queue.text)
    assert [p.split(":")[0] for p in picks] == [str(umum_id)]  # not the death letter
    page = sekdes.get(f"{P}/permohonan/{umum_id}").text
    assert 'id="on-behalf"' in page and "a.n." in page
    assert 'name="passphrase"' not in sekdes.get(f"{P}/permohonan/{death_id}").text

    r = sekdes.post(
        f"{P}/tandatangan",
        data={"csrf": page_csrf(sekdes), "req": picks, "passphrase": passphrase},
    )
    assert r.status_code == 303, r.text
    assert wait_batch(sekdes, r.headers["location"]).count("✔") == 1

    letter = letter_of(services, umum_id)
    assert letter.signer_name == "Dwi Contoh"
    assert letter.signer_capacity == "a.n. KEPALA DESA GROGOL / SEKRETARIS DESA"
    text = flat(pdf_text(letter.pdf, tmp_path))
    assert "a.n. KEPALA DESA GROGOL" in text
    assert "SEKRETARIS DESA" in text
    assert "DWI CONTOH" in text.upper()

    # The death letter's workflow has no signers: refused, in the app and in the engine.
    refused = sekdes.post(
        f"{P}/tandatangan",
        data={
            "csrf": page_csrf(sekdes),
            "req": f"{death_id}:{death_version}",
            "passphrase": passphrase,
        },
    )
    assert refused.status_code == 403
    with transaction(services.factory) as session:
        actor = Actor.of(get_user(session, "sekdes.grogol"))
    with pytest.raises(Forbidden):
        services.issuer.sign(actor, death_id, version=death_version, passphrase=passphrase)
    with transaction(services.factory) as session:
        assert session.query(Letter).filter_by(request_id=death_id).count() == 0


def test_kasi_has_no_signing_queue(app):
    kasi = sign_in(app, "kasi.grogol")
    assert kasi.get(f"{P}/tandatangan").status_code == 403


# --------------------------------------------------------------------------- Plt.


def test_acting_head_signs_within_the_recorded_dates_only(app, services, logins, tmp_path):
    inside_id, inside_version = at_signing(services, logins, KEMATIAN, n=0)
    later_id, later_version = at_signing(services, logins, KEMATIAN, n=1)
    plt_passphrase = "plt-grogol-2026"
    with transaction(services.factory) as session:
        kasi = get_user(session, "kasi.grogol")
        by = Actor.of(get_user(session, "admin"))
        enroll_signer(session, services.settings.keys_dir, kasi, plt_passphrase, by=by)
        kasi_actor = Actor.of(kasi)
    today = services.issuer.clock().astimezone(WIB).date()

    admin = sign_in(app, "admin")
    form = admin.get(f"{P}/plt").text
    r = admin.post(
        f"{P}/plt",
        data={
            "csrf": csrf_of(form),
            "user_id": str(kasi_actor.user_id),
            "prefix": "Plt.",
            "starts_on": (today - timedelta(days=1)).isoformat(),
            "ends_on": (today + timedelta(days=1)).isoformat(),
            "note": "Kepala desa cuti",
        },
    )
    assert r.status_code == 303, r.text
    assert "Agus Contoh" in admin.get(f"{P}/plt").text

    # The Plt. sees the head's queue and signs through the app.
    plt = sign_in(app, "kasi.grogol")
    queue = plt.get(f"{P}/tandatangan")
    assert queue.status_code == 200 and f"{inside_id}:{inside_version}" in queue.text
    r = plt.post(
        f"{P}/tandatangan",
        data={
            "csrf": page_csrf(plt),
            "req": f"{inside_id}:{inside_version}",
            "passphrase": plt_passphrase,
        },
    )
    assert r.status_code == 303
    assert wait_batch(plt, r.headers["location"]).count("✔") == 1
    letter = letter_of(services, inside_id)
    assert letter.signer_name == "Agus Contoh"
    text = flat(pdf_text(letter.pdf, tmp_path))
    assert "Plt. KEPALA DESA GROGOL" in text
    assert "AGUS CONTOH" in text.upper()

    # Two days later the assignment has ended: the same person may not sign.
    after = Issuer(
        services.factory,
        services.catalog,
        services.settings,
        clock=lambda: services.issuer.clock() + timedelta(days=2),
    )
    with pytest.raises(Forbidden):
        after.sign(kasi_actor, later_id, version=later_version, passphrase=plt_passphrase)
    with transaction(services.factory) as session:
        assert acting.capacity(session, kasi_actor, today + timedelta(days=2)).role == "kasi"
        assert session.query(Letter).filter_by(request_id=later_id).count() == 0


def test_acting_assignment_in_the_past_gives_no_signing_queue(app, services):
    with transaction(services.factory) as session:
        kasi = get_user(session, "kasi.grogol")
        admin = Actor.of(get_user(session, "admin"))
        today = services.issuer.clock().astimezone(WIB).date()
        acting.record(
            session,
            admin,
            village_code=GROGOL,
            user_id=kasi.id,
            prefix="Plh.",
            starts_on=today - timedelta(days=10),
            ends_on=today - timedelta(days=1),
        )
    assert sign_in(app, "kasi.grogol").get(f"{P}/tandatangan").status_code == 403
    assert client_for(app).get(f"{P}/tandatangan").status_code == 303  # signed out: sign in
