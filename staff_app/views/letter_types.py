"""Staff pages: the regency admin edits letter types (YAML + template) in the browser: check,
DRAFT preview with sample data, publish as a new version, version list, roll back.
Every rule and write is engine.requests.letter_type_editor's; these pages parse and render."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from engine.errors import InvalidInput, NotFound
from engine.http_status import http_status
from engine.requests import letter_type_editor as editor
from engine.storage.db import read_only, transaction
from staff_app.deps import Svc, WebDep, require, router
from staff_app.rendering import render
from staff_app.session import PREFIX, Web, check_csrf

BASE = f"{PREFIX}/admin/alur"
MAX_ID = 80

# A new letter type starts from this skeleton (the admin replaces every part of it).
NEW_YAML = """\
id: surat-keterangan-baru
version: 1
title: Surat Keterangan Baru
classification: "470"
number_format: "{classification}/{seq:03}/{village_code}/{month_roman}/{year}"
subjects:
  applicant: {label: Pemohon, alive: true}
fields:
  - {name: keperluan, label: Keperluan, type: textarea, required: true, max_length: 500}
template: templates/baru.html.j2
# Contoh isian untuk pratinjau DRAFT
sample:
  keperluan: Persyaratan administrasi
steps:
  draft: {role: operator, label: Isian petugas, actions: {submit: review}}
  review: {role: sekdes, actions: {approve: signing, return: draft, reject: rejected}}
  signing: {role: head, actions: {sign: issued, return: review, reject: rejected}}
"""
NEW_TEMPLATE = """\
{% extends "_letter.html.j2" %}
{% from "_macros.html.j2" import person_table %}
{% block isi %}
{{ person_table(subjects.applicant) }}
<p align="justify" indent="12.5" before="3">Surat keterangan ini diberikan untuk keperluan \
<b>{{ fields.keperluan }}</b>.</p>
{% endblock %}
"""


def _jenis(value: object) -> str:
    return value[:MAX_ID] if isinstance(value, str) else ""


def _edit_page(
    request: Request,
    web: Web,
    *,
    jenis: str,
    yaml_text: str,
    template_text: str,
    template_name: str = "",
    problems: list | None = None,
    checked: bool = False,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    page = render(
        request,
        "admin/letter_type_edit.html",
        status,
        web=web,
        nav={},
        jenis=jenis,
        yaml_text=yaml_text,
        template_text=template_text,
        template_name=template_name,
        problems=problems or [],
        checked=checked,
        error=error,
    )
    page.headers["Cache-Control"] = "no-store"
    return page


@router.get("/admin/alur/ubah")
def letter_type_edit(request: Request, web: WebDep, svc: Svc, jenis: str = "") -> Response:
    """The edit form, filled with the version in force (or a skeleton for a new type)."""
    require(web, "admin")
    jenis = _jenis(jenis)
    if not jenis:
        return _edit_page(request, web, jenis="", yaml_text=NEW_YAML, template_text=NEW_TEMPLATE)
    with read_only(svc.factory) as session:
        editor.require_admin(web.actor)
        yaml_text, template_text = editor.current_texts(session, svc.catalog, jenis)
    return _edit_page(request, web, jenis=jenis, yaml_text=yaml_text, template_text=template_text)


async def _form_texts(request: Request) -> tuple[str, str, str]:
    """(jenis, yaml, template) from the form: an uploaded file replaces its text box."""
    form = await request.form()
    texts = []
    for box, upload, what in (
        ("yaml", "yaml_file", "YAML"),
        ("template", "template_file", "template"),
    ):
        value = form.get(box)
        text = value if isinstance(value, str) else ""
        file = form.get(upload)
        if isinstance(file, UploadFile) and file.filename:
            data = await file.read(editor.MAX_TEXT * 4 + 1)
            if data:
                text = editor.text_of_upload(data, what)
        texts.append(text)
    return _jenis(form.get("jenis")), texts[0], texts[1]


async def _checked_form(request: Request, web: Web, svc) -> tuple[str, editor.Checked]:
    require(web, "admin")
    await check_csrf(request, web)
    jenis, yaml_text, template_text = await _form_texts(request)
    checked = editor.check_draft(
        svc.catalog,
        web.actor,
        yaml_text,
        template_text,
        expected_id=jenis or editor.NEW_TYPE,
        paper=svc.settings.paper,
    )
    return jenis, checked


def _problems_page(request: Request, web: Web, jenis: str, checked: editor.Checked, problems):
    return _edit_page(
        request,
        web,
        jenis=jenis,
        yaml_text=checked.yaml_text,
        template_text=checked.template_text,
        template_name=checked.template_name,
        problems=problems,
        checked=True,
        status=422 if problems else 200,
    )


@router.post("/admin/alur/periksa")
async def letter_type_check(request: Request, web: WebDep, svc: Svc) -> Response:
    """ "Periksa": the problems of the edited pair with their lines, or that there are none."""
    try:
        jenis, checked = await _checked_form(request, web, svc)
    except InvalidInput as e:
        return _bad_form(request, web, e)
    return _problems_page(request, web, jenis, checked, checked.problems)


@router.post("/admin/alur/pratinjau")
async def letter_type_preview(request: Request, web: WebDep, svc: Svc) -> Response:
    """ "Pratinjau": the edited letter as a DRAFT PDF with sample data."""
    try:
        jenis, checked = await _checked_form(request, web, svc)
    except InvalidInput as e:
        return _bad_form(request, web, e)
    if not checked.ok:
        return _problems_page(request, web, jenis, checked, checked.problems)
    pdf = editor.preview_draft(
        svc.catalog,
        web.actor,
        checked.yaml_text,
        checked.template_text,
        expected_id=jenis or editor.NEW_TYPE,
        paper=svc.settings.paper,
    )
    return _pdf(pdf, f"pratinjau-{checked.spec.id if checked.spec else 'surat'}.pdf")


def _pdf(pdf: bytes, filename: str) -> Response:
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/admin/alur/terbitkan")
async def letter_type_publish(request: Request, web: WebDep, svc: Svc) -> Response:
    """ "Terbitkan": put the edited pair in force as a new version."""
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    note = form.get("note")
    try:
        jenis, yaml_text, template_text = await _form_texts(request)
        with transaction(svc.factory) as session:
            row = editor.publish(
                session,
                svc.catalog,
                web.actor,
                yaml_text,
                template_text,
                expected_id=jenis or editor.NEW_TYPE,
                note=note if isinstance(note, str) else None,
                paper=svc.settings.paper,
            )
            workflow_id, version = row.workflow_id, row.version
    except editor.DraftProblems as e:
        return _edit_page(
            request,
            web,
            jenis=jenis,
            yaml_text=editor.normalised(yaml_text),
            template_text=editor.normalised(template_text),
            problems=e.problems,
            checked=True,
            status=422,
        )
    except InvalidInput as e:
        return _bad_form(request, web, e)
    query = urlencode({"jenis": workflow_id, "terbit": version})
    return RedirectResponse(f"{BASE}/versi?{query}", 303)


def _bad_form(request: Request, web: Web, e: InvalidInput) -> HTMLResponse:
    return _edit_page(
        request, web, jenis="", yaml_text="", template_text="", error=str(e), status=http_status(e)
    )


@router.get("/admin/alur/versi")
def letter_type_versions(
    request: Request, web: WebDep, svc: Svc, jenis: str = "", terbit: str = "", kembali: str = ""
) -> Response:
    """Every version put in force, with who and when, and the way back to each."""
    require(web, "admin")
    jenis = _jenis(jenis)
    if not jenis:
        return RedirectResponse(BASE, 303)
    with read_only(svc.factory) as session:
        rows = editor.versions(session, svc.catalog, web.actor, jenis)
        spec, _publication = svc.catalog.in_force(session, jenis)
    return render(
        request,
        "admin/letter_type_versions.html",
        web=web,
        nav={},
        jenis=jenis,
        title=spec.title if spec else jenis,
        versions=rows,
        published=terbit[:10],
        rolled_back=kembali[:10],
        FILE=editor.FILE,
    )


@router.get("/admin/alur/versi/pratinjau.pdf")
def letter_type_version_preview(
    request: Request, web: WebDep, svc: Svc, jenis: str = "", versi: str = ""
) -> Response:
    """A version of the list as a DRAFT PDF with sample data."""
    require(web, "admin")
    jenis = _jenis(jenis)
    if not jenis or not versi:
        return RedirectResponse(BASE, 303)
    with read_only(svc.factory) as session:
        version = _version(session, svc, web, jenis, versi)
        pdf = editor.preview_version(
            session, svc.catalog, web.actor, version.sha256, paper=svc.settings.paper
        )
    return _pdf(pdf, f"pratinjau-{jenis}-v{version.version}.pdf")


def _version(session, svc, web: Web, jenis: str, key: str) -> editor.Version:
    for version in editor.versions(session, svc.catalog, web.actor, jenis):
        if version.key == key[:12]:
            return version
    raise NotFound("Versi tidak ditemukan.")


@router.get("/admin/alur/kembalikan")
def letter_type_rollback_confirm(
    request: Request, web: WebDep, svc: Svc, jenis: str = "", versi: str = ""
) -> Response:
    """The confirmation before a rollback: which version comes back, and a reason."""
    require(web, "admin")
    jenis = _jenis(jenis)
    if not jenis or not versi:
        return RedirectResponse(
            f"{BASE}/versi?{urlencode({'jenis': jenis})}" if jenis else BASE, 303
        )
    with read_only(svc.factory) as session:
        target = _version(session, svc, web, jenis, versi)
        current = next(
            v for v in editor.versions(session, svc.catalog, web.actor, jenis) if v.in_force
        )
    return render(
        request,
        "admin/letter_type_rollback.html",
        web=web,
        nav={},
        jenis=jenis,
        target=target,
        current=current,
        FILE=editor.FILE,
    )


@router.post("/admin/alur/kembalikan")
async def letter_type_rollback(request: Request, web: WebDep, svc: Svc) -> Response:
    """ "Kembalikan ke versi ini": put the chosen earlier version back in force (audited)."""
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    jenis, versi, reason = (form.get(k) for k in ("jenis", "versi", "reason"))
    jenis = _jenis(jenis)
    if not jenis:
        return RedirectResponse(BASE, 303)
    with transaction(svc.factory) as session:
        row = editor.rollback(
            session,
            svc.catalog,
            web.actor,
            jenis,
            versi[:12] if isinstance(versi, str) else "",
            reason=reason if isinstance(reason, str) else "",
        )
        version = row.version
    return RedirectResponse(f"{BASE}/versi?{urlencode({'jenis': jenis, 'kembali': version})}", 303)
