"""Issue 8, item 7: bad input gets a clear answer (422/409/413 with a message naming the field),
never a 500 and never a stuck request. One test per class of bad input, through the JSON API and
the staff app."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from engine.storage.db import transaction
from engine.storage.models import LetterRequest, Resident
from suratdesa.body_limit import FORM_LIMIT
from suratdesa.web import create_app
from tests.letters import GROGOL, Staff
from tests.test_staff_app import P, do, page_csrf, sign_in


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def staff(app, logins) -> Staff:
    return Staff(TestClient(app, raise_server_exceptions=False), logins)


def raw_post(staff: Staff, user: str, path: str, raw: str):
    headers = {**staff.headers(user), "Content-Type": "application/json"}
    return staff.client.post(path, content=raw.encode("utf-8"), headers=headers)


def new_request(staff: Staff, logins, keperluan: str = "Melamar pekerjaan") -> dict:
    r = staff.post(
        "operator.grogol",
        "/api/requests",
        {
            "workflow_id": "surat-keterangan-umum",
            "subjects": {"applicant": logins.sample_niks[GROGOL][0]},
            "data": {"keperluan": keperluan},
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


# --------------------------------------------------------------------------- text fields

BAD_TEXT = {
    "nul": "Melamar\\u0000kerja",
    "control": "Melamar\\u0007kerja",
    "escape": "Melamar\\u001b[31mkerja",
    "c1": "Melamar\\u0085kerja",
    "lone surrogate": "Melamar\\ud800kerja",
    "low surrogate": "\\udfffMelamar",
}


@pytest.mark.parametrize("kind", sorted(BAD_TEXT))
def test_request_field_with_control_or_surrogate_is_422_naming_the_field(staff, logins, kind):
    nik = logins.sample_niks[GROGOL][0]
    raw = (
        '{"workflow_id": "surat-keterangan-umum", "subjects": {"applicant": "%s"}, '  # noqa: UP031
        '"data": {"keperluan": "%s"}}' % (nik, BAD_TEXT[kind])
    )
    r = raw_post(staff, "operator.grogol", "/api/requests", raw)
    assert r.status_code == 422, r.text
    body = r.json()
    assert "keperluan" in body["errors"], body
    assert body["errors"]["keperluan"].startswith(("Tidak boleh", "Berisi karakter")), body


@pytest.mark.parametrize(
    "text, shown", [("Keperluan 中文", "中"), ("Keperluan 😀", "😀"), ("عربي", "ع")]
)
def test_characters_the_fonts_cannot_print_are_refused_by_name(staff, logins, text, shown):
    r = staff.post(
        "operator.grogol",
        "/api/requests",
        {
            "workflow_id": "surat-keterangan-umum",
            "subjects": {"applicant": logins.sample_niks[GROGOL][0]},
            "data": {"keperluan": text},
        },
    )
    assert r.status_code == 422, r.text
    message = r.json()["errors"]["keperluan"]
    assert "tidak dapat dicetak" in message and shown in message


def test_latin_names_and_punctuation_the_fonts_have_are_accepted(staff, logins):
    req = new_request(staff, logins, "Ñoño Ülker — «Çağ» ‘kutip’ 12,5 € Łódź ŉ")
    assert req["data"]["keperluan"].startswith("Ñoño")


def test_reason_with_control_characters_is_422(staff, logins):
    req = new_request(staff, logins)
    req = staff.act("operator.grogol", req, "submit")
    r = raw_post(
        staff,
        f"{staff.role_of(req)}.grogol",
        f"/api/requests/{req['id']}/actions",
        '{"action": "return", "version": %d, "reason": "salah\\u0000isi"}' % req["version"],  # noqa: UP031
    )
    assert r.status_code == 422, r.text
    assert "reason" in r.json()["errors"]


def test_passphrase_with_lone_surrogate_is_422_not_500(staff, logins):
    r = raw_post(
        staff,
        "head.grogol",
        "/api/requests/1/sign",
        '{"version": 1, "passphrase": "\\ud800"}',
    )
    assert r.status_code == 422, r.text
    assert "passphrase" in r.json()["errors"]


def test_unknown_keys_with_bad_characters_are_echoed_safely(staff, logins):
    nik = logins.sample_niks[GROGOL][0]
    raw = (
        '{"workflow_id": "surat-keterangan-umum", "subjects": {"applicant": "%s", '  # noqa: UP031
        '"\\ud800x": "1"}, "data": {"keperluan": "ok", "\\udc00": "x"}}' % nik
    )
    r = raw_post(staff, "operator.grogol", "/api/requests", raw)
    assert r.status_code == 422, r.text
    assert r.json()["errors"]


def test_stored_unprintable_text_gives_422_on_preview_and_sign_and_can_be_corrected(
    staff, logins, services, passphrase
):
    """A request stored before the rule (here: written straight into the database) must not
    fail with 500 forever: preview and sign say which field, a reviewer returns it, the
    operator corrects it, and then it goes on."""
    req = staff.walk_to_signing("grogol", new_request(staff, logins))
    with transaction(services.factory) as session:
        session.execute(
            update(LetterRequest)
            .where(LetterRequest.id == req["id"])
            .values(data={"keperluan": "Keperluan \x01 中文", "keterangan": None})
        )
    preview = staff.get("operator.grogol", f"/api/requests/{req['id']}/preview.pdf")
    assert preview.status_code == 422, preview.text
    assert "keperluan" in preview.json()["errors"]
    signed = staff.sign("head.grogol", req, passphrase)
    assert signed.status_code == 422, signed.text
    assert "keperluan" in signed.json()["errors"]
    # GET still answers, whatever is stored.
    assert staff.get("head.grogol", f"/api/requests/{req['id']}").status_code == 200
    back = staff.act("head.grogol", req, "return", reason="Keperluan tidak terbaca")
    # Moving forward with the bad text is refused too; going back is what fixes it.
    r = staff.post(
        f"{staff.role_of(back)}.grogol",
        f"/api/requests/{req['id']}/actions",
        {"action": "approve", "version": back["version"]},
    )
    assert r.status_code == 422 and "keperluan" in r.json()["errors"], r.text
    while back["state"] != "draft":
        back = staff.act(f"{staff.role_of(back)}.grogol", back, "return", reason="Perbaiki")
    fixed = staff.act(
        "operator.grogol", back, "submit", data={"keperluan": "Persyaratan melamar kerja"}
    )
    assert fixed["data"]["keperluan"] == "Persyaratan melamar kerja"
    preview = staff.get("operator.grogol", f"/api/requests/{fixed['id']}/preview.pdf")
    assert preview.status_code == 200 and preview.content.startswith(b"%PDF")


# --------------------------------------------------------------------------- numbers, ids


@pytest.mark.parametrize("request_id", [2**31, 2**31 + 5, 2**63, 10**30, -1, 0])
def test_out_of_range_ids_are_422(staff, request_id):
    for path in ("", "/preview.pdf", "/letter.pdf"):
        r = staff.get("operator.grogol", f"/api/requests/{request_id}{path}")
        assert r.status_code == 422, (path, r.text)
        assert "request_id" in r.json()["errors"]


@pytest.mark.parametrize("version", ["NaN", "Infinity", "-Infinity", "1e400", str(2**70), "-1"])
def test_out_of_range_versions_are_422(staff, logins, version):
    req = new_request(staff, logins)
    r = raw_post(
        staff,
        "operator.grogol",
        f"/api/requests/{req['id']}/actions",
        '{"action": "submit", "version": %s}' % version,  # noqa: UP031
    )
    assert r.status_code == 422, r.text
    assert "version" in r.json()["errors"]


@pytest.mark.parametrize("limit", ["-1", "0", "201", str(2**64), "abc"])
def test_out_of_range_limits_are_422(staff, limit):
    r = staff.get("operator.grogol", f"/api/requests?limit={limit}")
    assert r.status_code == 422, r.text
    assert "limit" in r.json()["errors"]


def test_nul_in_state_filter_is_422(staff):
    r = staff.get("operator.grogol", "/api/requests?state=dr%00aft")
    assert r.status_code == 422, r.text
    assert "state" in r.json()["errors"]


def test_malformed_json_is_422_with_a_message(staff):
    r = raw_post(staff, "operator.grogol", "/api/requests", '{"workflow_id": ')
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


# --------------------------------------------------------------------------- finished requests


def test_every_action_on_a_finished_request_is_409_with_a_message(staff, logins, passphrase):
    req = new_request(staff, logins)
    req = staff.act("operator.grogol", req, "cancel", reason="Salah jenis surat")
    assert req["state"] == "cancelled"
    for user, action in [
        ("operator.grogol", "submit"),
        ("operator.grogol", "cancel"),
        ("sekdes.grogol", "approve"),
        ("sekdes.grogol", "return"),
        ("sekdes.grogol", "reject"),
        ("operator.grogol", "nonsense"),
    ]:
        r = staff.post(
            user,
            f"/api/requests/{req['id']}/actions",
            {"action": action, "version": req["version"], "reason": "x"},
        )
        assert r.status_code == 409, (action, r.text)
        assert "selesai" in r.json()["detail"]
    r = staff.sign("head.grogol", req, passphrase)
    assert r.status_code == 409, r.text


def test_actions_on_an_issued_request_are_409(staff, logins, passphrase):
    from tests.letters import issue

    letter = issue(staff, "surat-keterangan-umum", passphrase)
    request_id = int(letter["pdf_url"].split("/")[3])
    issued = staff.get("operator.grogol", f"/api/requests/{request_id}").json()
    assert issued["state"] == "issued"
    for user, action in [("operator.grogol", "submit"), ("head.grogol", "return")]:
        r = staff.post(
            user,
            f"/api/requests/{issued['id']}/actions",
            {"action": action, "version": issued["version"], "reason": "x"},
        )
        assert r.status_code == 409, r.text
    assert staff.sign("head.grogol", issued, passphrase).status_code == 409


# --------------------------------------------------------------------------- body size


def test_declared_oversized_json_body_is_413_before_it_is_read(app, logins):
    staff = Staff(TestClient(app), logins)
    headers = {
        **staff.headers("operator.grogol"),
        "Content-Type": "application/json",
        "Content-Length": str(50 * 1024 * 1024),
    }
    r = staff.client.post("/api/requests", content=b"{}", headers=headers)
    assert r.status_code == 413, r.text
    assert "terlalu besar" in r.json()["detail"]


def test_streamed_oversized_json_body_is_413(staff):
    def chunks():
        yield b'{"workflow_id": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    headers = {**staff.headers("operator.grogol"), "Content-Type": "application/json"}
    r = staff.client.post("/api/requests", content=chunks(), headers=headers)
    assert r.status_code == 413, r.text
    assert "terlalu besar" in r.json()["detail"]


def test_body_under_the_limit_is_processed(staff, logins):
    big = "x" * (FORM_LIMIT // 2)
    r = staff.post(
        "operator.grogol",
        "/api/requests",
        {
            "workflow_id": "surat-keterangan-umum",
            "subjects": {"applicant": logins.sample_niks[GROGOL][0]},
            "data": {"keperluan": big},
        },
    )
    assert r.status_code == 422 and "keperluan" in r.json()["errors"]  # too long, not too big


def test_oversized_staff_form_is_413_page(app):
    client = sign_in(app, "operator.grogol")
    csrf = page_csrf(client)
    r = client.post(
        f"{P}/baru",
        data={"csrf": csrf, "jenis": "surat-keterangan-umum", "field_keperluan": "x" * FORM_LIMIT},
    )
    assert r.status_code == 413
    assert "terlalu besar" in r.text


# --------------------------------------------------------------------------- staff app forms


def test_staff_form_shows_the_text_rule_beside_the_field(app, logins):
    client = sign_in(app, "operator.grogol")
    r = client.post(
        f"{P}/baru",
        data={
            "csrf": page_csrf(client),
            "jenis": "surat-keterangan-umum",
            "subject_applicant": logins.sample_niks[GROGOL][0],
            "field_keperluan": "Melamar \x07 kerja",
        },
    )
    assert r.status_code == 422, r.text
    assert re.search(r'class="field-error">Tidak boleh berisi karakter kendali', r.text)
    r = client.post(
        f"{P}/baru",
        data={
            "csrf": page_csrf(client),
            "jenis": "surat-keterangan-umum",
            "subject_applicant": logins.sample_niks[GROGOL][0],
            "field_keperluan": "Melamar 中文",
        },
    )
    assert r.status_code == 422
    assert "tidak dapat dicetak" in r.text


def test_staff_action_on_finished_request_and_huge_ids(app, logins):
    client = sign_in(app, "operator.grogol")
    r = client.post(
        f"{P}/baru",
        data={
            "csrf": page_csrf(client),
            "jenis": "surat-keterangan-umum",
            "subject_applicant": logins.sample_niks[GROGOL][0],
            "field_keperluan": "Melamar kerja",
        },
    )
    assert r.status_code == 303, r.text
    request_id = int(re.search(r"/permohonan/(\d+)", r.headers["location"]).group(1))
    version = int(
        re.search(r'name="version" value="(\d+)"', client.get(r.headers["location"]).text)[1]
    )
    assert do(client, request_id, "cancel", reason="Salah").status_code == 303
    r = client.post(
        f"{P}/permohonan/{request_id}/tindakan",
        data={"csrf": page_csrf(client), "action": "submit", "version": str(version + 1)},
    )
    assert r.status_code == 409 and "selesai" in r.text
    for huge in (2**31, 2**63, 10**30):
        assert client.get(f"{P}/permohonan/{huge}").status_code == 404
        assert client.get(f"{P}/permohonan/{huge}/pratinjau.pdf").status_code == 404


# --------------------------------------------------------------------------- archive


@pytest.mark.parametrize(
    "query, field",
    [
        ("dari=0001-01-01", "dari"),
        ("sampai=9999-12-31", "sampai"),
        ("dari=2026-13-45", "dari"),
        ("dari=2026-05-01&sampai=2026-04-01", "sampai"),
        ("nama=Bu%00di", "nama"),
        ("nomor=%1B", "nomor"),
        ("setelah=" + "9" * 400, "setelah"),
        ("setelah=2026-01-01T00:00:00%2B07:00_" + str(2**70), "setelah"),
        ("setelah=garbage", "setelah"),
    ],
)
def test_archive_bad_search_is_422_beside_the_field_and_csv_is_not_cut(app, query, field):
    client = sign_in(app, "operator.grogol")
    r = client.get(f"{P}/arsip?{query}")
    assert r.status_code == 422, r.text
    assert 'role="alert"' in r.text and f'id="error-{field}"' in r.text
    r = client.get(f"{P}/arsip.csv?{query}")
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/html")


def test_archive_csv_escapes_formula_cells(app, staff, logins, services, passphrase):
    from tests.letters import issue

    nik = logins.sample_niks[GROGOL][0]
    with transaction(services.factory) as session:
        session.execute(
            update(Resident).where(Resident.nik == nik).values(name='=HYPERLINK("http://x")')
        )
    issue(staff, "surat-keterangan-umum", passphrase)
    client = sign_in(app, "operator.grogol")
    r = client.get(f"{P}/arsip.csv")
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.text)))
    names = [row[2] for row in rows[1:]]
    assert '\'=HYPERLINK("http://x")' in names, names
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row


# --------------------------------------------------------------------------- the OpenAPI document


def test_openapi_is_served_with_public_endpoints_and_declared_errors(staff):
    r = staff.client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    paths = doc["paths"]
    assert any(p.startswith("/api/public/") for p in paths), sorted(paths)
    action = paths["/api/requests/{request_id}/actions"]["post"]["responses"]
    for code in ("401", "403", "404", "409", "413", "422"):
        assert code in action, code
    assert "HTTPValidationError" not in json.dumps(doc)
