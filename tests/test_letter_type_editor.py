"""The regency admin edits letter types (engine.requests.letter_type_editor and the staff pages
under /staf/admin/alur): problems with their lines, DRAFT preview with sample data, publish as
a new version (the number must grow), requests keep the version they started with, rollback,
audit events, admin only, and a publication seen by a second app process."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.errors import Forbidden
from engine.people.users import Actor, get_user
from engine.requests import letter_type_editor as editor
from engine.storage.db import transaction
from engine.storage.models import AuditEvent, LetterRequest
from engine.storage.workflow_publications import WorkflowPublication
from suratdesa.web import create_app
from tests.letters import GROGOL, Staff, pdf_text
from tests.test_staff_app import csrf_of, sign_in

UMUM = "surat-keterangan-umum"
MARKER = "KALIMAT UJI DARI EDITOR JENIS SURAT"


def actor(services, username: str) -> Actor:
    with transaction(services.factory) as session:
        return Actor.of(get_user(session, username))


def texts(services, workflow_id: str = UMUM) -> tuple[str, str]:
    with transaction(services.factory) as session:
        return editor.current_texts(session, services.catalog, workflow_id)


def with_version(yaml_text: str, version: int) -> str:
    changed, n = re.subn(r"(?m)^version: \d+$", f"version: {version}", yaml_text)
    assert n == 1
    return changed


def reworded(template: str, sentence: str = MARKER) -> str:
    """The template with one more paragraph at the end of its body block."""
    head, sep, tail = template.rpartition("{% endblock %}")
    assert sep
    return f'{head}<p before="2">{sentence}</p>\n{sep}{tail}'


def publish(services, admin: Actor, yaml_text: str, template: str, **kw):
    with transaction(services.factory) as session:
        row = editor.publish(session, services.catalog, admin, yaml_text, template, **kw)
        return row.id, row.version


def start(staff: Staff) -> dict:
    nik = staff.logins.sample_niks[GROGOL][0]
    r = staff.post(
        "operator.grogol",
        "/api/requests",
        {"workflow_id": UMUM, "subjects": {"applicant": nik}, "data": {"keperluan": "Uji"}},
    )
    assert r.status_code == 201, r.text
    return r.json()


def finish(staff: Staff, request: dict, passphrase: str) -> bytes:
    request = staff.walk_to_signing("grogol", request)
    signed = staff.sign("head.grogol", request, passphrase)
    assert signed.status_code == 200, signed.text
    return staff.get("operator.grogol", signed.json()["letter"]["pdf_url"]).content


@pytest.fixture
def staff(services, logins) -> Staff:
    return Staff(TestClient(create_app(services.settings)), logins)


# --------------------------------------------------------------------------- engine


def test_problems_name_their_lines(services) -> None:
    admin = actor(services, "admin")
    yaml_text, template = texts(services)
    lines = yaml_text.splitlines()
    steps = next(i for i, line in enumerate(lines) if line.startswith("steps:"))
    lines.insert(steps, "warna: merah")  # an unknown key, on line steps + 1
    lines = [line.replace("role: sekdes", "role: lurah") for line in lines]
    bad_role = next(i for i, line in enumerate(lines, 1) if "role: lurah" in line)
    checked = editor.check_draft(services.catalog, admin, "\r\n".join(lines), template)
    assert not checked.ok and checked.spec is None
    found = {(p.line, p.reason.split(":")[0]) for p in checked.problems}
    assert (steps + 1, "berkas") in found, checked.problems
    assert any(p.line == bad_role and "lurah" in p.reason for p in checked.problems)
    assert all(p.file == f"{UMUM}.yaml" for p in checked.problems)

    broken = template.replace("{% endblock %}", "{% if fields.keperluan %}\n{% endblock %}")
    checked = editor.check_draft(services.catalog, admin, yaml_text, broken)
    (problem,) = checked.problems
    assert problem.file.endswith("umum.html.j2") and problem.line is not None
    assert "template tidak valid" in problem.reason

    # a template that renders but is not well-formed letter markup is found by the trial render
    checked = editor.check_draft(services.catalog, admin, yaml_text, reworded(template, "<b>x"))
    assert checked.problems and "surat gagal dibuat" in checked.problems[0].reason


def test_a_template_may_not_reach_python_internals(services) -> None:
    """Every template renders in Jinja's immutable sandbox: the trial render of "Periksa"
    reports the attempt at its line, and it cannot be published or previewed."""
    admin = actor(services, "admin")
    yaml_text, template = texts(services)
    escapes = (
        "{{ fields.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ fields.update({'keperluan': 'x'}) }}",  # the data given is read-only too
    )
    for escape in escapes:
        sneaky = reworded(template, escape)
        line = next(i for i, x in enumerate(sneaky.splitlines(), 1) if escape in x)
        checked = editor.check_draft(services.catalog, admin, yaml_text, sneaky)
        assert [p.line for p in checked.problems] == [line], (escape, checked.problems)
        assert "unsafe" in checked.problems[0].reason or "tidak aman" in checked.problems[0].reason
        with pytest.raises(editor.DraftProblems):
            publish(services, admin, with_version(yaml_text, 99), sneaky)
        with pytest.raises(editor.DraftProblems):
            editor.preview_draft(services.catalog, admin, yaml_text, sneaky)
    # plain template code, including a constant format string, stays allowed
    assert editor.check_draft(
        services.catalog, admin, yaml_text, reworded(template, "{{ '{:,.0f}'.format(12) }}")
    ).ok


def test_sample_section_fills_the_preview_and_is_checked(services, tmp_path) -> None:
    admin = actor(services, "admin")
    yaml_text, template = texts(services)
    sampled = yaml_text.replace("steps:", "sample:\n  keperluan: Mengurus beasiswa anak\nsteps:", 1)
    pdf = editor.preview_draft(services.catalog, admin, sampled, template)
    text = pdf_text(pdf, tmp_path)
    assert "DRAFT" in text and "Mengurus beasiswa anak" in text
    assert "BUDI SANTOSO" in text  # a made-up subject, not a resident of the registry

    wrong = yaml_text.replace("steps:", "sample:\n  hobi: Memancing\nsteps:", 1)
    checked = editor.check_draft(services.catalog, admin, wrong, template)
    line = next(i for i, x in enumerate(wrong.splitlines(), 1) if "hobi" in x)
    assert [(p.line, "hobi" in p.reason) for p in checked.problems] == [(line, True)]


def test_the_version_must_grow(services) -> None:
    admin = actor(services, "admin")
    yaml_text, template = texts(services)
    version = services.catalog.current(UMUM).version
    with pytest.raises(editor.DraftProblems) as caught:
        publish(services, admin, yaml_text, reworded(template))
    (problem,) = caught.value.problems
    assert problem.line == yaml_text.splitlines().index(f"version: {version}") + 1
    assert f"harus lebih besar dari versi yang berlaku (v{version})" in problem.reason
    assert f"version: {version + 1}" in problem.reason

    publish(services, admin, with_version(yaml_text, version + 2), reworded(template))
    with transaction(services.factory) as session:
        editor.rollback(session, services.catalog, admin, UMUM, editor.FILE, reason="salah ketik")
    assert services.catalog.current(UMUM).version == version
    # back on the file's version, a new one must still pass every version ever in force
    with pytest.raises(editor.DraftProblems) as caught:
        publish(services, admin, with_version(yaml_text, version + 1), reworded(template))
    assert f"tertinggi v{version + 2}" in caught.value.problems[0].reason


def test_only_the_regency_admin(services) -> None:
    yaml_text, template = texts(services)
    for username in ("operator.grogol", "sekdes.grogol", "head.grogol"):
        who = actor(services, username)
        with pytest.raises(Forbidden):
            editor.check_draft(services.catalog, who, yaml_text, template)
        with pytest.raises(Forbidden):
            editor.preview_draft(services.catalog, who, yaml_text, template)
        with transaction(services.factory) as session, pytest.raises(Forbidden):
            editor.publish(session, services.catalog, who, with_version(yaml_text, 99), template)
        with transaction(services.factory) as session, pytest.raises(Forbidden):
            editor.rollback(session, services.catalog, who, UMUM, editor.FILE, reason="x")
        with transaction(services.factory) as session, pytest.raises(Forbidden):
            editor.versions(session, services.catalog, who, UMUM)


def test_requests_keep_their_version_and_rollback_restores(
    services, staff, passphrase, tmp_path
) -> None:
    admin = actor(services, "admin")
    yaml_text, template = texts(services)
    old = services.catalog.current(UMUM)
    before = start(staff)  # started under the version in force

    pub_id, version = publish(
        services, admin, with_version(yaml_text, old.version + 1), reworded(template), note="uji"
    )
    assert version == old.version + 1 and services.catalog.current(UMUM).version == version
    after = start(staff)
    assert (before["version"], after["version"]) != (None, None)
    with transaction(services.factory) as session:
        pinned = {
            r.id: r.workflow_version
            for r in session.scalars(
                select(LetterRequest).where(LetterRequest.id.in_([before["id"], after["id"]]))
            )
        }
        events = list(
            session.scalars(select(AuditEvent).where(AuditEvent.action == "workflow_published"))
        )
    assert pinned == {before["id"]: old.version, after["id"]: version}
    (event,) = events
    assert event.actor == "admin" and event.reason == "uji"
    assert event.detail["version"] == version and event.detail["publication_id"] == pub_id

    assert MARKER not in pdf_text(finish(staff, before, passphrase), tmp_path)
    assert MARKER in pdf_text(finish(staff, after, passphrase), tmp_path)

    with transaction(services.factory) as session:
        rows = editor.versions(session, services.catalog, admin, UMUM)
        assert [(v.version, v.kind, v.in_force) for v in rows] == [
            (version, "publish", True),
            (old.version, editor.FILE, False),
        ]
        assert rows[0].by and rows[0].at is not None
        editor.rollback(session, services.catalog, admin, UMUM, editor.FILE, reason="keliru")
    assert services.catalog.current(UMUM).sha256 == old.sha256
    rolled = start(staff)
    assert MARKER not in pdf_text(finish(staff, rolled, passphrase), tmp_path)
    with transaction(services.factory) as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "workflow_rolled_back")
        ).one()
        assert event.reason == "keliru" and event.detail["from_version"] == version
        # and forward again, to the published version
        editor.rollback(session, services.catalog, admin, UMUM, str(pub_id), reason="jadi")
    assert services.catalog.current(UMUM).version == version


def test_a_second_app_process_sees_the_publication(services, staff, logins) -> None:
    admin = actor(services, "admin")
    other = Staff(TestClient(create_app(services.settings)), logins)  # its own catalog
    yaml_text, template = texts(services)
    old = services.catalog.current(UMUM).version
    assert start(other)["version"] is not None
    listed = {w["id"]: w["version"] for w in other.get("operator.grogol", "/api/workflows").json()}
    assert listed[UMUM] == old

    publish(services, admin, with_version(yaml_text, old + 1), reworded(template))
    with transaction(services.factory) as session:
        started = session.get(LetterRequest, start(other)["id"])  # starting always checks
        assert started.workflow_version == old + 1
    time.sleep(other.client.app.state.services.catalog.recheck_seconds)  # lists may lag 1 s
    listed = {w["id"]: w["version"] for w in other.get("operator.grogol", "/api/workflows").json()}
    assert listed[UMUM] == old + 1


def test_a_new_type_without_a_file(services, staff, passphrase, tmp_path) -> None:
    from staff_app.views.letter_types import NEW_TEMPLATE, NEW_YAML

    admin = actor(services, "admin")
    publish(services, admin, NEW_YAML, NEW_TEMPLATE)
    assert "surat-keterangan-baru" in services.catalog.specs
    nik = staff.logins.sample_niks[GROGOL][0]
    r = staff.post(
        "operator.grogol",
        "/api/requests",
        {
            "workflow_id": "surat-keterangan-baru",
            "subjects": {"applicant": nik},
            "data": {"keperluan": "Keperluan jenis baru"},
        },
    )
    assert r.status_code == 201, r.text
    text = pdf_text(finish(staff, r.json(), passphrase), tmp_path)
    assert "SURAT KETERANGAN BARU" in text and "Keperluan jenis baru" in text


# --------------------------------------------------------------------------- pages


def test_pages_check_preview_publish_and_roll_back(services, tmp_path) -> None:
    app = create_app(services.settings)
    client = sign_in(app, "admin")
    page = client.get(f"/staf/admin/alur/ubah?jenis={UMUM}")
    assert page.status_code == 200 and "textarea" in page.text
    csrf = csrf_of(page.text)
    yaml_text, template = texts(services)
    version = services.catalog.current(UMUM).version
    form = {"csrf": csrf, "jenis": UMUM, "template": reworded(template)}

    bad = client.post(
        "/staf/admin/alur/periksa",
        data={**form, "yaml": yaml_text.replace("role: head", "role: x")},
    )
    assert bad.status_code == 422 and 'id="problems"' in bad.text
    assert re.search(rf"{UMUM}\.yaml</code>, <b>baris \d+</b>: ", bad.text), bad.text

    good = {**form, "yaml": with_version(yaml_text, version + 1)}
    ok = client.post("/staf/admin/alur/periksa", data=good)
    assert ok.status_code == 200 and 'id="no-problems"' in ok.text

    preview = client.post("/staf/admin/alur/pratinjau", data=good)
    assert preview.headers["content-type"] == "application/pdf"
    assert MARKER in pdf_text(preview.content, tmp_path) and "DRAFT" in pdf_text(
        preview.content, tmp_path
    )
    # an uploaded file replaces its text box
    upload = client.post(
        "/staf/admin/alur/periksa",
        data={**good, "yaml": ""},
        files={"yaml_file": ("umum.yaml", with_version(yaml_text, version + 1).encode())},
    )
    assert upload.status_code == 200 and 'id="no-problems"' in upload.text
    not_text = client.post(
        "/staf/admin/alur/periksa", data=good, files={"yaml_file": ("x.yaml", b"\xff\xfe\x00")}
    )
    assert not_text.status_code == 422 and "UTF-8" in not_text.text

    # the new type page refuses an id in force
    taken = client.post("/staf/admin/alur/periksa", data={**good, "jenis": ""})
    assert taken.status_code == 422 and "sudah dipakai" in taken.text

    assert client.post("/staf/admin/alur/terbitkan", data={**good, "csrf": "x"}).status_code == 403
    published = client.post("/staf/admin/alur/terbitkan", data={**good, "note": "kalimat baru"})
    assert published.status_code == 303
    listing = client.get(published.headers["location"])
    assert 'id="published"' in listing.text and "kalimat baru" in listing.text
    again = client.post("/staf/admin/alur/terbitkan", data=good)
    assert again.status_code == 422 and "harus lebih besar" in again.text

    shown = client.get(f"/staf/admin/alur/versi/pratinjau.pdf?jenis={UMUM}&versi={editor.FILE}")
    assert shown.headers["content-type"] == "application/pdf"
    assert MARKER not in pdf_text(shown.content, tmp_path)
    confirm = client.get(f"/staf/admin/alur/kembalikan?jenis={UMUM}&versi={editor.FILE}")
    assert confirm.status_code == 200 and f"Kembalikan ke versi {version}" in confirm.text
    no_reason = client.post(
        "/staf/admin/alur/kembalikan", data={"csrf": csrf, "jenis": UMUM, "versi": editor.FILE}
    )
    assert no_reason.status_code == 422
    back = client.post(
        "/staf/admin/alur/kembalikan",
        data={"csrf": csrf, "jenis": UMUM, "versi": editor.FILE, "reason": "uji"},
    )
    assert back.status_code == 303
    assert services.catalog.current(UMUM).version == version
    with transaction(services.factory) as session:
        kinds = [r.kind for r in session.scalars(select(WorkflowPublication))]
    assert kinds == ["publish", "rollback"]


def test_pages_refuse_staff(services) -> None:
    app = create_app(services.settings)
    client = sign_in(app, "sekdes.grogol")
    csrf = csrf_of(client.get("/staf/sandi").text)
    assert client.get(f"/staf/admin/alur/ubah?jenis={UMUM}").status_code == 403
    for path in ("periksa", "pratinjau", "terbitkan", "kembalikan"):
        r = client.post(f"/staf/admin/alur/{path}", data={"csrf": csrf, "jenis": UMUM})
        assert r.status_code == 403, path
