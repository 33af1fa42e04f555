"""Generated authorization matrix: every route of the staff app, for every role, in the user's
own village and in another village. A route missing from RULES fails the test, so a new route
must be classified before it ships."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine import attachments
from engine.dates import today_wib
from engine.notify import outbox
from engine.people import acting
from engine.people.users import Actor, get_user
from engine.requests import batches
from engine.requests.letter_requests import act, create_request
from engine.storage.db import transaction
from engine.storage.models import Resident
from staff_app.views import router
from suratdesa.web import create_app
from tests.test_staff_app import csrf_of, sign_in

STAFF = ("operator", "kasi", "sekdes", "head")
ALL = (*STAFF, "admin")
# (method, path) -> roles allowed. Request- and batch-scoped routes answer 404 outside them.
RULES: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/staf/masuk"): ALL,
    ("POST", "/staf/masuk"): ALL,
    ("POST", "/staf/keluar"): ALL,
    ("GET", "/staf/sandi"): ALL,
    ("POST", "/staf/sandi"): ALL,
    ("GET", "/staf/beranda"): ALL,
    ("GET", "/staf/baru"): ("operator",),
    # the letter form's look-up (called here with jenis=...): operators; without it the
    # registry search page (staff of any village, the regency admin)
    ("GET", "/staf/penduduk"): ("operator",),
    ("GET", "/staf/penduduk/baru"): ("operator",),
    ("POST", "/staf/penduduk/baru"): ("operator",),
    ("GET", "/staf/penduduk/{resident_id}"): ALL,
    ("GET", "/staf/penduduk/{resident_id}/ubah"): ("operator",),
    ("POST", "/staf/penduduk/{resident_id}/ubah"): ("operator",),
    ("GET", "/staf/penduduk/{resident_id}/pindah"): ("operator",),
    ("POST", "/staf/penduduk/{resident_id}/pindah"): ("operator",),
    ("GET", "/staf/penduduk/{resident_id}/meninggal"): ("operator",),
    ("POST", "/staf/penduduk/{resident_id}/meninggal"): ("operator",),
    ("POST", "/staf/baru"): ("operator",),
    ("GET", "/staf/permohonan"): ("operator",),
    ("GET", "/staf/antrean"): ("kasi", "sekdes"),
    ("GET", "/staf/permohonan/{request_id}"): ALL,
    ("POST", "/staf/permohonan/{request_id}/tindakan"): STAFF,
    ("POST", "/staf/permohonan/{request_id}/diserahkan"): ("operator",),
    ("GET", "/staf/warga"): ("operator",),
    ("POST", "/staf/warga/pin"): ("operator",),
    ("POST", "/staf/permohonan/{request_id}/lampiran"): STAFF,
    ("GET", "/staf/permohonan/{request_id}/lampiran/{attachment_id}"): ALL,
    ("GET", "/staf/permohonan/{request_id}/pratinjau.pdf"): ALL,
    ("GET", "/staf/permohonan/{request_id}/surat.pdf"): ALL,
    # revoke or replace the letter: the head of its village or the regency admin (engine rule)
    ("GET", "/staf/permohonan/{request_id}/surat/cabut"): ("head", "admin"),
    ("POST", "/staf/permohonan/{request_id}/surat/cabut"): ("head", "admin"),
    ("GET", "/staf/permohonan/{request_id}/surat/ganti"): ("head", "admin"),
    ("POST", "/staf/permohonan/{request_id}/surat/ganti"): ("head", "admin"),
    # the sekdes signs "a.n." where a workflow allows it (surat-keterangan-umum does)
    ("GET", "/staf/tandatangan"): ("head", "sekdes"),
    ("POST", "/staf/tandatangan"): ("head", "sekdes"),
    ("GET", "/staf/tandatangan/{batch_id}"): ALL,  # only its signer sees it: 404 to others
    ("GET", "/staf/tandatangan/{batch_id}/status"): ALL,
    ("POST", "/staf/tandatangan/{batch_id}/lanjutkan"): ALL,  # resume: its signer only
    ("GET", "/staf/arsip"): ALL,
    ("GET", "/staf/arsip.csv"): ALL,
    ("GET", "/staf/plt"): ("admin", "head"),
    ("POST", "/staf/plt"): ("admin", "head"),
    ("POST", "/staf/plt/{assignment_id}/akhiri"): ("admin", "head"),
    ("GET", "/staf/admin"): ("admin",),
    ("GET", "/staf/admin/desa/{code}"): ("admin",),
    ("POST", "/staf/admin/desa/{code}"): ("admin",),
    ("GET", "/staf/admin/kabupaten"): ("admin",),
    ("POST", "/staf/admin/kabupaten/lambang"): ("admin",),
    ("POST", "/staf/admin/kabupaten/lambang/hapus"): ("admin",),
    ("GET", "/staf/admin/pengguna"): ("admin",),
    ("POST", "/staf/admin/pengguna"): ("admin",),
    ("POST", "/staf/admin/pengguna/{user_id}/sertifikat"): ("admin",),
    ("POST", "/staf/admin/pengguna/{user_id}/nonaktif"): ("admin",),
    ("POST", "/staf/admin/pengguna/{user_id}/cabut"): ("admin",),
    ("POST", "/staf/admin/pengguna/{user_id}/perbarui"): ("admin",),
    ("POST", "/staf/admin/pengguna/{user_id}/buka-kunci"): ("admin",),
    ("GET", "/staf/admin/alur"): ("admin",),
    ("GET", "/staf/admin/penomoran"): ("admin",),
    ("POST", "/staf/admin/penomoran/mode"): ("admin",),
    ("POST", "/staf/admin/penomoran/kode"): ("admin",),
    # the letter type editor (engine.requests.letter_type_editor: regency admin only)
    ("GET", "/staf/admin/alur/ubah"): ("admin",),
    ("POST", "/staf/admin/alur/periksa"): ("admin",),
    ("POST", "/staf/admin/alur/pratinjau"): ("admin",),
    ("POST", "/staf/admin/alur/terbitkan"): ("admin",),
    ("GET", "/staf/admin/alur/versi"): ("admin",),
    ("GET", "/staf/admin/alur/versi/pratinjau.pdf"): ("admin",),
    ("GET", "/staf/admin/alur/kembalikan"): ("admin",),
    ("POST", "/staf/admin/alur/kembalikan"): ("admin",),
    # the village picker (search and open by name), re-enable, password reset
    ("GET", "/staf/admin/cari-desa"): ("admin",),
    ("GET", "/staf/admin/buka-desa"): ("admin",),
    ("POST", "/staf/admin/pengguna/{user_id}/aktifkan"): ("admin",),
    ("POST", "/staf/admin/pengguna/{user_id}/sandi"): ("admin",),
    # one's own notices: a notice of someone else answers 404 (see notice_for)
    ("GET", "/staf/pemberitahuan"): ALL,
    ("POST", "/staf/pemberitahuan/baca-semua"): ALL,
    ("POST", "/staf/pemberitahuan/{notice_id}/baca"): ALL,
}
# scoped to the Grogol request (and its attachment) / head.grogol's batch / a Grogol Plh.
OWNED = ("{request_id}", "{batch_id}", "{attachment_id}", "{assignment_id}", "{resident_id}")


def routes() -> list[tuple[str, str]]:
    found = []
    for route in router.routes:
        assert isinstance(route, APIRoute)
        for method in route.methods:
            found.append((method, route.path))
    return sorted(found)


def test_every_route_is_classified():
    assert sorted(RULES) == routes()


@pytest.fixture
def world(services, logins, passphrase):
    """An issued letter in Desa Grogol and a signing batch of head.grogol."""
    with transaction(services.factory) as session:
        actors = {r: Actor.of(get_user(session, f"{r}.grogol")) for r in STAFF}
        nik = logins.sample_niks["33.11.01.2001"][0]
        req = create_request(
            session,
            services.catalog,
            actors["operator"],
            "surat-keterangan-umum",
            {"applicant": nik},
            {"keperluan": "Melamar pekerjaan"},
        )
        rid = req.id
        (attachment,) = attachments.add(
            session, actors["operator"], rid, [attachments.Upload("kk.pdf", b"%PDF-1.4\n%%EOF\n")]
        )
        attachment_id = attachment.id
        act(session, services.catalog, actors["operator"], rid, "submit", version=req.version)
        spec = services.catalog.pinned(session, req)
        while spec.step(req.state).role != "head":
            act(
                session,
                services.catalog,
                actors[spec.step(req.state).role],
                rid,
                "approve",
                version=req.version,
            )
        version = req.version
        resident_id = session.scalar(select(Resident.id).where(Resident.nik == nik))
        user_id = get_user(session, "kasi.grogol").id
        assignment_id = acting.record(
            session,
            Actor.of(get_user(session, "admin")),
            village_code="33.11.01.2001",
            user_id=user_id,
            prefix="Plh.",  # later, so kasi.grogol does not sign as acting head today
            starts_on=today_wib() + timedelta(days=10),
            ends_on=today_wib() + timedelta(days=20),
        ).id
    services.issuer.sign(actors["head"], rid, version=version, passphrase=passphrase)
    batch_id = batches.start(services.issuer, actors["head"], [(rid, version)])
    return {
        "request_id": rid,
        "batch_id": batch_id,
        "attachment_id": attachment_id,
        "user_id": user_id,
        "assignment_id": assignment_id,
        "code": "33.11.01.2001",
        "resident_id": resident_id,  # a Grogol resident (the request's applicant)
    }


def notice_for(services, username: str) -> tuple[int, bool]:
    """The newest in-app notice of `username` (True: their own), else one of operator.grogol's
    (the world's flow notifies every Grogol staff member; admin and Kenep staff get none)."""
    with transaction(services.factory) as session:
        for name, own in ((username, True), ("operator.grogol", False)):
            notices = outbox.inapp_notices(session, get_user(session, name).id)
            if notices:
                return notices[0].id, own
    raise AssertionError("the world's flow wrote no notice for operator.grogol")


def call(client: TestClient, method: str, path: str, world: dict, csrf: str):
    url = path.format(**world)
    if method == "GET":
        params = (
            {"jenis": "surat-keterangan-umum", "subjek": "applicant"}
            if "penduduk" in path
            else None
        )
        return client.get(url, params=params)
    data = {"csrf": csrf, "jenis": "surat-keterangan-umum", "version": "999", "action": "approve"}
    return client.post(url, data=data)


# The regency admin has no village (every village is theirs), so it has no "other" case.
CASES = [(r, v) for r in ALL for v in ("own", "other") if not (r == "admin" and v == "other")]


@pytest.mark.parametrize(("role", "village"), CASES)
def test_matrix(services, world, role, village):
    app = create_app(services.settings)
    slug = "grogol" if village == "own" else "kenep"
    username = "admin" if role == "admin" else f"{role}.{slug}"
    problems = []
    for method, path in routes():
        if path == "/staf/masuk":
            continue  # public: covered in test_staff_app
        client = sign_in(app, username)
        csrf = csrf_of(client.get("/staf/sandi").text)
        notice_id, own_notice = notice_for(services, username)
        r = call(client, method, path, {**world, "notice_id": notice_id}, csrf)
        allowed = role in RULES[(method, path)]
        owned = any(p in path for p in OWNED)
        if "{notice_id}" in path and not own_notice:
            expected = {404}
        elif not allowed:
            expected = {403}
        elif owned and (village == "other" or ("{batch_id}" in path and role != "head")):
            expected = {404}
        else:
            expected = None
        ok = (
            r.status_code in expected
            if expected
            else r.status_code < 500 and r.status_code not in (403, 404)
        )
        if not ok:
            text = re.sub(r"<[^>]+>|\s+", " ", r.text)[-200:]
            problems.append(f"{method} {path}: {r.status_code} {text}")
    assert not problems, "\n".join(problems)
