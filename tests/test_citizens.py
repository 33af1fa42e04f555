"""Citizen self-service (issue 10): identification with one failure answer, the rate limits,
tracking codes, the refusals, the per-NIK limit, the status mapping and the correction of a
returned request, the hand-over record, and the pages under /warga/ and /staf/warga."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from engine import attachments
from engine.citizens import codes, limits
from engine.citizens.errors import NO_MATCH, IdentityFailed, UnknownCode
from engine.citizens.identity import identify, read_pass
from engine.citizens.requests import (
    correct_returned,
    create_citizen_request,
    operator_queue,
    owned_request,
    status_by_code,
)
from engine.citizens.status import (
    HANDED_OVER,
    IN_REVIEW,
    READY,
    RECEIVED,
    REJECTED,
    RETURNED,
)
from engine.config import PROJECT_ROOT
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyAttempts
from engine.letters.pickup import hand_over
from engine.people.users import Actor, get_user
from engine.requests.letter_requests import act, create_request
from engine.requests.workflows import workflow_problems
from engine.storage.db import transaction
from engine.storage.models import AuditEvent, CitizenTracking, Letter, LetterRequest, Resident
from suratdesa.web import create_app
from tests.letters import GROGOL
from tests.test_staff_app import client_for, csrf_of, sign_in

SECRET = "test-secret"
UMUM = "surat-keterangan-umum"
T0 = 1_900_000_000.0  # a fixed clock for the rate-limit windows


@pytest.fixture
def app(services):
    return create_app(services.settings)


def residents(services, village: str = GROGOL, n: int = 4) -> list[Resident]:
    with transaction(services.factory) as session:
        rows = session.scalars(
            select(Resident)
            .where(Resident.village_code == village, Resident.alive.is_(True))
            .order_by(Resident.nik)
            .limit(n)
        ).all()
        session.expunge_all()
    return list(rows)


def unknown_nik(known: Resident) -> str:
    """A well-formed NIK (same region and birth part) that nobody has."""
    return known.nik[:12] + "9999"


def actor(services, username: str) -> Actor:
    with transaction(services.factory) as session:
        return Actor.of(get_user(session, username))


def make(services, resident: Resident, data: dict | None = None, **kw):
    with transaction(services.factory) as session:
        req, code = create_citizen_request(
            session,
            services.catalog,
            resident.nik,
            kw.pop("workflow", UMUM),
            data if data is not None else {"keperluan": "Melamar pekerjaan"},
            **kw,
        )
        return req.id, req.version, code


def status(services, code: str, client: str = "10.0.0.1"):
    return status_by_code(services.factory, services.catalog, code, client=client)


# --------------------------------------------------------------------------- identification


def test_identification_succeeds_with_the_registry_triple(services):
    r = residents(services)[0]
    found = identify(services.factory, SECRET, r.nik, r.kk, r.birth_date.isoformat(), client="a")
    assert found.nik == r.nik and found.alive
    assert found.masked_nik == r.nik[:4] + "********" + r.nik[-4:]
    assert read_pass(SECRET, found.token) == r.nik
    with pytest.raises(Forbidden):
        read_pass("another-secret", found.token)


def test_failures_are_one_answer_for_unknown_nik_wrong_kk_and_wrong_date(services):
    r = residents(services)[0]
    wrong_kk = ("1" if r.kk[0] != "1" else "2") + r.kk[1:]
    attempts = [
        (unknown_nik(r), r.kk, r.birth_date.isoformat()),  # nobody has this NIK
        (r.nik, wrong_kk, r.birth_date.isoformat()),  # right NIK, wrong KK
        (r.nik, r.kk, (r.birth_date + timedelta(days=1)).isoformat()),  # wrong date of birth
    ]
    answers = []
    for i, (nik, kk, born) in enumerate(attempts):
        with pytest.raises(IdentityFailed) as info:
            identify(services.factory, SECRET, nik, kk, born, client=f"10.1.0.{i}")
        answers.append((type(info.value), str(info.value), info.value.errors))
    assert answers == [(IdentityFailed, NO_MATCH, {})] * 3


def test_malformed_parts_are_named_without_looking_anyone_up(services):
    with pytest.raises(InvalidInput) as info:
        identify(services.factory, SECRET, "123", "12", "kemarin", client="x")
    assert set(info.value.errors) == {"nik", "kk", "birth_date"}


def test_identification_is_limited_per_nik_even_for_the_right_data(services):
    r = residents(services)[0]
    for i in range(limits.IDENTIFY_NIK.allowance):
        with pytest.raises(IdentityFailed):
            identify(
                services.factory,
                SECRET,
                r.nik,
                r.kk,
                "1900-01-01",
                client=f"10.2.0.{i}",
                clock=lambda: T0,
            )
    with pytest.raises(TooManyAttempts):  # from a new address, with the right data
        identify(
            services.factory,
            SECRET,
            r.nik,
            r.kk,
            r.birth_date.isoformat(),
            client="10.2.1.1",
            clock=lambda: T0 + 60,
        )
    # The window slides: after 15 minutes the resident gets in again.
    found = identify(
        services.factory,
        SECRET,
        r.nik,
        r.kk,
        r.birth_date.isoformat(),
        client="10.2.1.1",
        clock=lambda: T0 + 16 * 60,
    )
    assert found.nik == r.nik


def test_unknown_niks_are_limited_like_known_ones(services):
    """The per-NIK count does not depend on whether the NIK exists: its refusal tells nothing."""
    r = residents(services)[0]
    ghost = unknown_nik(r)
    for i in range(limits.IDENTIFY_NIK.allowance):
        with pytest.raises(IdentityFailed):
            identify(
                services.factory,
                SECRET,
                ghost,
                r.kk,
                "1900-01-01",
                client=f"10.3.0.{i}",
                clock=lambda: T0,
            )
    with pytest.raises(TooManyAttempts):
        identify(
            services.factory, SECRET, ghost, r.kk, "1900-01-01", client="10.3.1.1", clock=lambda: T0
        )


def test_identification_is_limited_per_address(services):
    people = residents(services, n=4)
    allowance = limits.IDENTIFY_ADDRESS.allowance
    for i in range(allowance):
        person = people[i % len(people)]
        nik = person.nik[:12] + f"{9000 + i:04d}"  # a different NIK each time
        with pytest.raises(IdentityFailed):
            identify(
                services.factory,
                SECRET,
                nik,
                person.kk,
                "1900-01-01",
                client="10.4.0.1",
                clock=lambda: T0,
            )
    r = people[0]
    with pytest.raises(TooManyAttempts):
        identify(
            services.factory,
            SECRET,
            r.nik,
            r.kk,
            r.birth_date.isoformat(),
            client="10.4.0.1",
            clock=lambda: T0,
        )
    # Another address is not affected.
    assert (
        identify(
            services.factory,
            SECRET,
            r.nik,
            r.kk,
            r.birth_date.isoformat(),
            client="10.4.0.2",
            clock=lambda: T0,
        ).nik
        == r.nik
    )


# --------------------------------------------------------------------------- requests


def test_citizen_request_enters_the_operators_first_step(services):
    r = residents(services)[0]
    rid, _version, code = make(services, r, contact="warga@example.org")
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", code)
    with transaction(services.factory) as session:
        req = session.get(LetterRequest, rid)
        assert (req.channel, req.citizen_contact, req.created_by_id) == (
            "warga",
            "warga@example.org",
            None,
        )
        assert req.state == "draft" and req.subjects == {"applicant": r.nik}
        tracking = session.get(CitizenTracking, rid)
        assert tracking.code_sha256 == codes.code_hash(codes.normalize(code))
        assert code.replace("-", "") not in str(tracking.__dict__)  # only the hash is kept
        event = session.scalar(select(AuditEvent).where(AuditEvent.request_id == rid))
        assert (event.actor, event.role, event.action, event.actor_id) == (
            "warga",
            "warga",
            "create",
            None,
        )
        assert [q.id for q in operator_queue(session, services.catalog, GROGOL)] == [rid]
    view = status(services, code.lower().replace("-", " "))  # typed loosely: still found
    assert view.status == RECEIVED and view.masked_nik == r.nik[:4] + "********" + r.nik[-4:]
    assert r.name not in str(view.__dict__)  # nothing personal beyond the masked NIK


def test_a_guessed_code_finds_nothing_and_guessing_is_limited(services):
    r = residents(services)[0]
    _rid, _v, code = make(services, r)
    misses = [codes.new_code() for _ in range(limits.STATUS_MISS.allowance)]
    answers = set()
    for guess in misses[:-1] + ["not a code"]:
        with pytest.raises(UnknownCode) as info:
            status_by_code(
                services.factory, services.catalog, guess, client="10.5.0.1", clock=lambda: T0
            )
        answers.add(str(info.value))
    assert len(answers) == 1  # malformed and well-formed guesses: one answer
    with pytest.raises(TooManyAttempts):  # even the right code, from the guessing address
        status_by_code(
            services.factory, services.catalog, code, client="10.5.0.1", clock=lambda: T0
        )
    assert (
        status_by_code(
            services.factory, services.catalog, code, client="10.5.0.2", clock=lambda: T0
        ).status
        == RECEIVED
    )


def test_deceased_resident_cannot_request(services):
    r = residents(services)[1]
    with transaction(services.factory) as session:
        session.scalar(select(Resident).where(Resident.nik == r.nik)).alive = False
    found = identify(services.factory, SECRET, r.nik, r.kk, r.birth_date.isoformat(), client="d")
    assert found.alive is False
    with pytest.raises(Forbidden, match="meninggal"):
        make(services, r)


def test_types_not_open_to_citizens_are_refused(services):
    r = residents(services)[0]
    assert services.catalog.current("surat-keterangan-pindah").citizen_requestable is False
    with pytest.raises(Forbidden, match="kantor"):
        make(services, r, {}, workflow="surat-keterangan-pindah")
    with pytest.raises(NotFound):
        make(services, r, {}, workflow="tidak-ada")


def test_field_errors_are_the_ones_staff_get(services):
    r = residents(services)[0]
    bad = {"keperluan": "x" * 501, "keterangan": "a\x00b", "asal": "?"}
    with pytest.raises(InvalidInput) as citizen:
        make(services, r, bad, contact="bukan kontak")
    operator = actor(services, "operator.grogol")
    with transaction(services.factory) as session, pytest.raises(InvalidInput) as staff:
        create_request(
            session,
            services.catalog,
            operator,
            UMUM,
            {"applicant": r.nik},
            bad,
        )
    errors = dict(citizen.value.errors)
    assert errors.pop("contact").startswith("Isi alamat e-mail atau nomor HP")
    assert errors == staff.value.errors
    assert set(errors) == {"keperluan", "keterangan", "asal"}
    with pytest.raises(InvalidInput) as files:
        make(
            services,
            r,
            uploads=[attachments.Upload("x.pdf", b"MZ\x90\x00")],
        )
    assert "bukan PDF" in files.value.errors["attachment"]


def test_open_requests_per_nik_are_limited(services):
    r = residents(services)[0]
    ids = [make(services, r, open_limit=2)[0] for _ in range(2)]
    with pytest.raises(Conflict, match="2 permohonan"):
        make(services, r, open_limit=2)
    other = residents(services)[2]
    make(services, other, open_limit=2)  # another resident is not affected
    operator = actor(services, "operator.grogol")
    with transaction(services.factory) as session:
        act(
            session,
            services.catalog,
            operator,
            ids[0],
            "cancel",
            version=1,
            reason="Pemohon membatalkan",
        )
    make(services, r, open_limit=2)  # a finished one frees a place


# --------------------------------------------------------------------------- status mapping


def _act(services, username: str, rid: int, action: str, **kw) -> None:
    who = actor(services, username)
    with transaction(services.factory) as session:
        version = session.get(LetterRequest, rid).version
        act(session, services.catalog, who, rid, action, version=version, **kw)


def test_status_follows_the_request_and_a_returned_one_is_corrected(services, passphrase):
    r = residents(services)[0]
    rid, _v, code = make(services, r)
    assert status(services, code).status == RECEIVED
    _act(services, "operator.grogol", rid, "submit", data={"keterangan": "Dilengkapi petugas"})
    assert status(services, code).status == IN_REVIEW
    _act(
        services,
        "sekdes.grogol",
        rid,
        "return",
        reason="Keperluan kurang jelas: sebutkan instansinya",
    )
    view = status(services, code)
    assert (view.status, view.reason, view.correctable) == (
        RETURNED,
        "Keperluan kurang jelas: sebutkan instansinya",
        True,
    )
    other = residents(services)[2]
    with transaction(services.factory) as session, pytest.raises(UnknownCode):
        owned_request(session, other.nik, code)  # only the resident who asked may correct
    with transaction(services.factory) as session, pytest.raises(InvalidInput) as info:
        correct_returned(
            session, services.catalog, r.nik, code, {"keperluan": ""}, version=view.version
        )
    assert info.value.errors == {"keperluan": "Wajib diisi"}
    with transaction(services.factory) as session:
        correct_returned(
            session,
            services.catalog,
            r.nik,
            code,
            {"keperluan": "Melamar kerja di PT Sritex"},
            version=view.version,
        )
    view = status(services, code)
    assert view.status == RECEIVED and not view.correctable
    with transaction(services.factory) as session, pytest.raises(Conflict):
        correct_returned(
            session, services.catalog, r.nik, code, {"keperluan": "lagi"}, version=view.version
        )
        # not returned any more
    with transaction(services.factory) as session:
        req = session.get(LetterRequest, rid)
        assert req.data["keperluan"] == "Melamar kerja di PT Sritex"
        assert req.data["keterangan"] == "Dilengkapi petugas"
    _act(services, "operator.grogol", rid, "submit")
    _act(services, "sekdes.grogol", rid, "approve")
    with transaction(services.factory) as session:
        version = session.get(LetterRequest, rid).version
    services.issuer.sign(
        actor(services, "head.grogol"), rid, version=version, passphrase=passphrase
    )
    view = status(services, code)
    assert view.status == READY and view.letter_number
    operator = actor(services, "operator.grogol")
    with transaction(services.factory) as session, pytest.raises(InvalidInput) as info:
        hand_over(session, operator, rid, receiver_name="", relation="Tetangga", id_number="")
    assert set(info.value.errors) == {"receiver_name", "receiver_relation", "receiver_id_number"}
    with transaction(services.factory) as session:
        hand_over(
            session,
            operator,
            rid,
            receiver_name="Siti Aminah",
            relation="Suami/Istri",
            id_number="3311015508900002",
        )
    with transaction(services.factory) as session, pytest.raises(Conflict):
        hand_over(session, operator, rid, receiver_name="Lagi", relation="Anak", id_number="1")
    view = status(services, code)
    assert view.status == HANDED_OVER and view.handed_over_at is not None
    with transaction(services.factory) as session:
        letter = session.scalar(select(Letter).where(Letter.request_id == rid))
        assert (
            letter.handed_over_to_name,
            letter.handed_over_relation,
            letter.handed_over_id_number,
        ) == ("Siti Aminah", "Suami/Istri", "3311015508900002")
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "letter.handover"))
        assert event.detail["receiver"] == "Siti Aminah"
        assert event.detail["id_number"] == "3311********0002"
        actions = [
            e.action
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.request_id == rid).order_by(AuditEvent.id)
            )
        ]
    assert actions == [
        "create",
        "submit",
        "return",
        "citizen.correct",
        "submit",
        "approve",
        "sign",
        "letter.handover",
    ]


def test_rejected_shows_the_reason(services):
    r = residents(services)[0]
    rid, _v, code = make(services, r)
    _act(services, "operator.grogol", rid, "submit")
    _act(services, "sekdes.grogol", rid, "reject", reason="Bukan warga yang berdomisili di sini")
    view = status(services, code)
    assert (view.status, view.reason) == (REJECTED, "Bukan warga yang berdomisili di sini")


# --------------------------------------------------------------------------- workflow key


def test_workflow_key_is_checked(tmp_path):
    source = PROJECT_ROOT / "workflows"
    text = (source / "surat-keterangan-kematian.yaml").read_text()
    (tmp_path / "templates").symlink_to(source / "templates")
    bad = tmp_path / "k.yaml"
    bad.write_text(text.replace("title:", "citizen_requestable: ya\ntitle:", 1))
    _spec, problems = workflow_problems(bad)
    assert any("'citizen_requestable' harus true atau false" in p.reason for p in problems)
    bad.write_text(text.replace("title:", "citizen_requestable: true\ntitle:", 1))
    _spec, problems = workflow_problems(bad)
    assert any("subjek lain harus 'required: false' (reporter)" in p.reason for p in problems)
    assert problems[0].line is not None


# --------------------------------------------------------------------------- pages


def _identify_page(client, r: Resident, born: str | None = None):
    token = csrf_of(client.get("/warga/masuk").text)
    return client.post(
        "/warga/masuk",
        data={
            "csrf": token,
            "nik": r.nik,
            "kk": r.kk,
            "birth_date": born or r.birth_date.isoformat(),
            "next": "/warga/ajukan",
        },
    )


def test_pages_failures_are_byte_identical_and_forms_need_csrf(app, services):
    r = residents(services)[0]
    client = client_for(app)
    wrong_date = _identify_page(client, r, (r.birth_date - timedelta(days=3)).isoformat())
    unknown = _identify_page(
        client,
        Resident(nik=unknown_nik(r), kk=r.kk, birth_date=date(1990, 1, 1)),
        (r.birth_date - timedelta(days=3)).isoformat(),
    )
    assert wrong_date.status_code == unknown.status_code == 422
    # Byte for byte the same, but for the NIK the visitor typed, echoed in its box.
    ghost = unknown_nik(r).encode()
    assert wrong_date.content.replace(r.nik.encode(), b"N") == unknown.content.replace(ghost, b"N")
    assert NO_MATCH in wrong_date.text
    no_csrf = client.post(
        "/warga/masuk", data={"nik": r.nik, "kk": r.kk, "birth_date": r.birth_date.isoformat()}
    )
    assert no_csrf.status_code == 403
    assert no_csrf.headers["content-security-policy"].startswith("default-src 'self'")


def test_pages_request_status_and_staff_queue(app, services):
    r = residents(services)[0]
    client = client_for(app)
    assert client.get("/warga/ajukan").status_code == 303  # identify first
    signed = _identify_page(client, r)
    assert signed.status_code == 303 and signed.headers["location"] == "/warga/ajukan"
    types = client.get("/warga/ajukan").text
    assert "Surat Keterangan Umum" in types and "Surat Keterangan Pindah" not in types
    form = client.get(f"/warga/ajukan/{UMUM}").text
    r2 = client.post(f"/warga/ajukan/{UMUM}", data={"csrf": csrf_of(form), "field_keperluan": ""})
    assert r2.status_code == 422 and "Wajib diisi" in r2.text
    r3 = client.post(
        f"/warga/ajukan/{UMUM}",
        data={
            "csrf": csrf_of(form),
            "field_keperluan": "Melamar pekerjaan",
            "contact": "0812 3456 7890",
        },
        files={"attachment": ("kk.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png")},
    )
    assert r3.status_code == 303
    location = r3.headers["location"]
    page = client.get(location)
    assert page.status_code == 200 and "Diterima" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    code = re.search(r'id="tracking-code">([^<]+)<', page.text).group(1)
    qr = client.get(f"/warga/status/{code}/qr.png")
    assert qr.status_code == 200 and qr.content.startswith(b"\x89PNG")
    assert client.get("/warga/status/AAAA-AAAA-AAAA-AAAA").status_code == 404
    staff = sign_in(app, "operator.grogol")
    queue = staff.get("/staf/warga")
    assert queue.status_code == 200 and "Surat Keterangan Umum" in queue.text
    rid = int(re.search(r'/staf/permohonan/(\d+)"', queue.text).group(1))
    request_page = staff.get(f"/staf/permohonan/{rid}").text
    assert 'id="citizen-request"' in request_page and "081234567890" in request_page
    with transaction(services.factory) as session:
        assert session.get(LetterRequest, rid).citizen_contact == "081234567890"


def test_pwa_files(app):
    client = client_for(app)
    manifest = client.get("/warga/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    body = manifest.json()
    assert body["start_url"] == "/warga/" and body["display"] == "standalone"
    for icon in body["icons"]:
        png = client.get(icon["src"])
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    sw = client.get("/warga/sw.js")
    assert sw.headers["content-type"].startswith("text/javascript")
    assert 'addEventListener("fetch"' in sw.text and "/warga/luring" in sw.text
    assert "Anda sedang luring" in client.get("/warga/luring").text


def test_pin_from_the_office_opens_the_history(app, services):
    r = residents(services)[0]
    make(services, r)
    staff = sign_in(app, "operator.grogol")
    page = staff.get("/staf/warga")
    given = staff.post("/staf/warga/pin", data={"csrf": csrf_of(page.text), "nik": r.nik})
    assert given.status_code == 200
    pin = re.search(r'id="new-pin">[^<]*<b>(\d{6})</b>', given.text).group(1)
    other_village = residents(services, "33.11.04.1001")[0]
    refused = staff.post(
        "/staf/warga/pin", data={"csrf": csrf_of(page.text), "nik": other_village.nik}
    )
    assert refused.status_code == 404  # like an unknown NIK
    with transaction(services.factory) as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "citizen.pin"))
        assert event.actor == "operator.grogol" and pin not in str(event.detail)
    client = client_for(app)
    assert _identify_page(client, r).status_code == 303
    form = client.get("/warga/riwayat")
    wrong = client.post(
        "/warga/riwayat",
        data={"csrf": csrf_of(form.text), "pin": "000000" if pin != "000000" else "111111"},
    )
    assert wrong.status_code == 422 and "PIN salah" in wrong.text
    right = client.post("/warga/riwayat", data={"csrf": csrf_of(form.text), "pin": pin})
    assert right.status_code == 200 and "Surat Keterangan Umum" in right.text
    assert right.headers["cache-control"] == "no-store"
    for _ in range(4):  # 5 wrong in all: the PIN is refused unread for 15 minutes
        client.post("/warga/riwayat", data={"csrf": csrf_of(form.text), "pin": "999999x"})
    assert (
        client.post("/warga/riwayat", data={"csrf": csrf_of(form.text), "pin": pin}).status_code
        == 429
    )
