"""Staff pages: Regency admin: villages, users, signer certificates, workflows."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from engine.bootstrap import enroll_signer
from engine.errors import Conflict, InvalidInput, NotFound
from engine.http_status import http_status
from engine.people import admin, signers, user_list
from engine.people.users import (
    ALL_ROLES,
    active_head,
    create_user,
    disable_user,
    enable_user,
    hash_password,
    reset_password,
    reset_password_check,
    signing_accounts,
)
from engine.services import Services
from engine.storage.db import transaction
from engine.storage.models import Letter, LetterRequest, User, Village
from engine.timeutil import now_utc
from engine.trust import signer_limit
from staff_app.deps import Svc, WebDep, require, router
from staff_app.i18n import _
from staff_app.rendering import ROLE_LABELS, STATE_LABELS, generic_titles, render
from staff_app.session import (
    PREFIX,
    Web,
    check_csrf,
    password_work,
)


@router.get("/admin")
def admin_home(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    require(web, "admin")
    with transaction(svc.factory) as session:
        return _admin_home(request, session, web)


def _admin_home(request, session, web, *, error=None, picked="", status=200) -> HTMLResponse:
    requests_by = dict(
        session.execute(
            select(LetterRequest.village_code, func.count()).group_by(LetterRequest.village_code)
        ).all()
    )
    letters_by = dict(
        session.execute(
            select(Letter.village_code, func.count()).group_by(Letter.village_code)
        ).all()
    )
    villages = list(session.scalars(select(Village).order_by(Village.code)))
    return render(
        request,
        "admin/home.html",
        status,
        web=web,
        nav={},
        villages=villages,
        requests_by=requests_by,
        letters_by=letters_by,
        choices=[admin.village_choice(v) for v in villages],
        error=error,
        picked=picked,
    )


@router.get("/admin/buka-desa")
def admin_open_village(request: Request, web: WebDep, svc: Svc, desa: str = "") -> Response:
    """The village picker on the admin home: open the village picked by name."""
    require(web, "admin")
    with transaction(svc.factory) as session:
        try:
            code = admin.resolve_village(session, desa)
        except InvalidInput as exc:
            return _admin_home(request, session, web, error=str(exc), picked=desa, status=422)
        if code is None:
            return RedirectResponse(f"{PREFIX}/admin", 303)
    return RedirectResponse(f"{PREFIX}/admin/desa/{code}", 303)


@router.get("/admin/desa/{code}")
def admin_village(request: Request, code: str, web: WebDep, svc: Svc, ok: str = "") -> HTMLResponse:
    require(web, "admin")
    with transaction(svc.factory) as session:
        return _village_page(request, session, web, code, ok=bool(ok))


def _village_page(request, session, web, code, *, ok=False, error=None, errors=None, status=200):
    village = session.get(Village, code)
    if village is None:
        raise HTTPException(404)
    return render(
        request,
        "admin/village.html",
        status,
        web=web,
        nav={},
        village=village,
        head=active_head(session, code),
        ok=ok,
        error=error,
        errors=errors or {},
    )


def _form_text(form, name: str) -> str | None:
    """A text field as typed, or None when the form did not send it (leave unchanged)."""
    value = form.get(name)
    return None if value is None else str(value)


@router.post("/admin/desa/{code}")
async def admin_village_post(request: Request, code: str, web: WebDep, svc: Svc) -> Response:
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    try:
        with transaction(svc.factory) as session:
            admin.update_village(
                session,
                web.actor,
                code,
                address=_form_text(form, "address"),
                phone=_form_text(form, "phone"),
                email=_form_text(form, "email"),
                website=_form_text(form, "website"),
                head_name=_form_text(form, "head_name"),
                head_nip=_form_text(form, "head_nip"),
            )
    except NotFound as exc:
        raise HTTPException(404) from exc
    except InvalidInput as exc:
        with transaction(svc.factory) as session:
            return _village_page(
                request, session, web, code, error=str(exc), errors=exc.errors, status=422
            )
    return RedirectResponse(f"{PREFIX}/admin/desa/{code}?ok=1", 303)


@router.get("/admin/cari-desa")
def admin_village_search(
    request: Request, web: WebDep, svc: Svc, q: str = "", village: str = "", desa: str = ""
) -> HTMLResponse:
    """The village picker's suggestions as the admin types (htmx refills the datalist with
    the typed field, `village` or `desa`; `q` for others): name, kecamatan and code; see
    engine.people.admin.search_villages."""
    require(web, "admin")
    typed = (q or village or desa)[:60]
    with transaction(svc.factory) as session:
        villages = admin.search_villages(session, typed)
        return render(
            request,
            "admin/_village_options.html",
            web=web,
            choices=[admin.village_choice(v) for v in villages],
        )


def village_choices(session) -> list[str]:
    """Every village as the picker offers it ("Desa Grogol, Kec. Weru (33.11.01.2001)")."""
    return [admin.village_choice(v) for v in admin.search_villages(session, "", limit=1000)]


@router.get("/admin/pengguna")
def admin_users(
    request: Request, web: WebDep, svc: Svc, desa: str = "", setelah: str = ""
) -> HTMLResponse:
    """One page of accounts (?setelah= holds the cursor), optionally of one village (?desa=).
    A village or cursor the engine refuses is a 422 page saying so (a bad cursor keeps the
    village filter)."""
    require(web, "admin")
    with transaction(svc.factory) as session:
        try:
            return _users_page(request, session, web, village=desa, after=setelah)
        except InvalidInput as exc:
            keep = desa if "cursor" in exc.errors else ""
            return _users_page(request, session, web, village=keep, error=str(exc), status=422)


def _users_page(
    request,
    session,
    web,
    *,
    error=None,
    errors=None,
    values=None,
    status=200,
    village: str = "",
    notice: str | None = None,
    new_password: dict | None = None,
    after: str = "",
):
    code = admin.resolve_village(session, village) if village else None
    page = user_list.users_page(session, village_code=code, after=after or None)
    users = page.rows
    keep = {"desa": village} if code else {}
    live = signers.live_key_holders(session, users)
    places = {
        v.code: admin.village_choice(v).rsplit(" (", 1)[0]
        for v in session.scalars(
            select(Village).where(Village.code.in_({u.village_code for u in users}))
        )
    }
    return render(
        request,
        "admin/users.html",
        status,
        web=web,
        nav={},
        users=users,
        first_url=f"?{urlencode(keep)}" if after else None,
        next_url=f"?{urlencode({**keep, 'setelah': page.next_cursor})}"
        if page.next_cursor
        else None,
        live=live,
        signers_=signing_accounts(session, users),
        places=places,
        choices=village_choices(session),
        filter_village=admin.village_choice(session.get(Village, code)) if code else "",
        locks=signer_limit.locked_users(session),
        revocation_reasons=signers.REVOCATION_REASONS,
        roles=ALL_ROLES,
        error=error,
        errors=errors or {},
        values=values or {},
        notice=notice,
        new_password=new_password,
        today=now_utc(),
    )


@router.post("/admin/pengguna")
async def admin_users_post(request: Request, web: WebDep, svc: Svc) -> Response:
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    values = {
        k: str(form.get(k, "")).strip()
        for k in ("username", "full_name", "role", "village", "nip", "password")
    }
    # the picker's text ("Desa Grogol, Kec. Weru (...)"), a typed name, or a bare code from a
    # script that still posts `village_code`
    values["village"] = values["village"] or str(form.get("village_code", "")).strip()
    try:

        def create() -> None:  # argon2: on the password thread pool, not the event loop
            with transaction(svc.factory) as session:
                role = values["role"]
                code = (
                    None if role == "admin" else admin.resolve_village(session, values["village"])
                )
                create_user(
                    session,
                    by=web.actor,
                    username=values["username"],
                    full_name=values["full_name"] or values["username"],
                    role=role,
                    village_code=code,
                    nip=values["nip"] or None,
                    password=values["password"],
                )

        await password_work(create)
    except (InvalidInput, Conflict) as exc:
        values.pop("password")
        with transaction(svc.factory) as session:
            return _users_page(
                request,
                session,
                web,
                error=str(exc),
                errors=getattr(exc, "errors", {}),
                values=values,
                status=http_status(exc),
            )
    return RedirectResponse(f"{PREFIX}/admin/pengguna", 303)


@router.post("/admin/pengguna/{user_id}/sertifikat")
async def admin_issue_certificate(
    request: Request, user_id: int, web: WebDep, svc: Svc
) -> Response:
    def enroll(session, user, passphrase):
        enroll_signer(session, svc.settings.keys_dir, user, passphrase, by=web.actor)

    return await _user_action(request, user_id, web, svc, enroll, field="passphrase")


async def _user_action(
    request: Request, user_id: int, web: Web, svc: Services, action, *, field: str = "reason"
) -> Response:
    """An admin action on one account that takes one form value (a reason, or the new key's
    passphrase): issue or revoke a certificate, disable, unlock. Errors re-render the page."""
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    value = str(form.get(field, ""))

    def act() -> None:
        with transaction(svc.factory) as session:
            user = session.get(User, user_id)
            if user is None:
                raise HTTPException(404)
            action(session, user, value)

    try:
        # Off the event loop: issuing or renewing a key builds a PKCS#12 (about a second of
        # key derivation), like a password hash.
        await password_work(act)
    except (InvalidInput, Conflict) as exc:
        with transaction(svc.factory) as session:
            return _users_page(
                request,
                session,
                web,
                error=str(exc),
                errors=getattr(exc, "errors", {}),
                status=http_status(exc),
            )
    return RedirectResponse(f"{PREFIX}/admin/pengguna", 303)


@router.post("/admin/pengguna/{user_id}/nonaktif")
async def admin_disable_user(request: Request, user_id: int, web: WebDep, svc: Svc) -> Response:
    return await _user_action(
        request,
        user_id,
        web,
        svc,
        lambda session, user, reason: disable_user(session, web.actor, user, reason),
    )


@router.post("/admin/pengguna/{user_id}/aktifkan")
async def admin_enable_user(request: Request, user_id: int, web: WebDep, svc: Svc) -> Response:
    """Re-enable a disabled account (audited; its old certificate stays revoked)."""
    return await _user_action(
        request,
        user_id,
        web,
        svc,
        lambda session, user, reason: enable_user(session, web.actor, user, reason),
    )


@router.post("/admin/pengguna/{user_id}/sandi")
async def admin_reset_password(request: Request, user_id: int, web: WebDep, svc: Svc) -> Response:
    """Reset an account's password to one the admin types, or to a generated one shown once
    on the answer page; the user's sessions end (engine.people.users.reset_password)."""
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    typed = str(form.get("password", ""))
    try:
        with transaction(svc.factory) as session:
            user = session.get(User, user_id)
            if user is None:
                raise HTTPException(404)
            password = reset_password_check(web.actor, user, typed)
            username = user.username
        new_hash = await password_work(hash_password, password)
        with transaction(svc.factory) as session:
            user = session.get(User, user_id)
            if user is None:
                raise HTTPException(404)
            reset_password(session, web.actor, user, new_hash, generated=not typed.strip())
    except (InvalidInput, Conflict) as exc:
        with transaction(svc.factory) as session:
            return _users_page(
                request,
                session,
                web,
                error=str(exc),
                errors=getattr(exc, "errors", {}),
                status=http_status(exc),
            )
    shown = {"username": username, "password": password} if not typed.strip() else None
    notice = _("Password of %(user)s reset; all their sessions have ended.") % {"user": username}
    with transaction(svc.factory) as session:
        page = _users_page(request, session, web, notice=notice, new_password=shown)
    page.headers["Cache-Control"] = "no-store"  # a generated password is shown once
    return page


@router.post("/admin/pengguna/{user_id}/cabut")
async def admin_revoke_certificate(
    request: Request, user_id: int, web: WebDep, svc: Svc
) -> Response:
    code = str((await request.form()).get("code", signers.DEFAULT_REASON))

    def revoke(session, user, reason):
        signers.revoke_live_key(session, web.actor, user, reason, code=code)

    return await _user_action(request, user_id, web, svc, revoke)


@router.post("/admin/pengguna/{user_id}/perbarui")
async def admin_renew_certificate(
    request: Request, user_id: int, web: WebDep, svc: Svc
) -> Response:
    """A new certificate for a signer who holds one, with the passphrase the signer types (as
    for issuing); the old one left to expire or revoked as superseded, with a note (audited:
    engine.people.signers.renew)."""
    form = await request.form()
    revoke_old = str(form.get("old", "")) == "cabut"
    note = str(form.get("reason", ""))

    def renew(session, user, passphrase):
        signers.renew(
            session, svc.settings, user, passphrase, by=web.actor, revoke_old=revoke_old, note=note
        )

    return await _user_action(request, user_id, web, svc, renew, field="passphrase")


@router.post("/admin/pengguna/{user_id}/buka-kunci")
async def admin_unlock_signer(request: Request, user_id: int, web: WebDep, svc: Svc) -> Response:
    """Lift the lock set after too many wrong signing passphrases (audited)."""
    return await _user_action(
        request,
        user_id,
        web,
        svc,
        lambda session, user, reason: signer_limit.unlock_signer(session, web.actor, user, reason),
    )


@router.get("/admin/alur")
def admin_workflows(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    """Every letter type's steps in Bahasa Indonesia, with the generic titles (Kepala
    Desa/Lurah): who acts at each step and where each action leads."""
    require(web, "admin")
    return render(
        request,
        "admin/workflows.html",
        web=web,
        nav={},
        specs=[_workflow_view(spec) for spec in svc.catalog.specs.values()],
    )


def _workflow_view(spec) -> dict:
    def step_label(state: str) -> str:
        step = spec.steps.get(state)
        if step is not None and step.label:
            return generic_titles(step.label)
        return STATE_LABELS.get(state, state)

    steps = [
        {
            "label": step_label(name),
            "role": ROLE_LABELS.get(step.role, step.role),
            "actions": [
                (WORKFLOW_ACTIONS.get(action, action), step_label(target))
                for action, target in step.actions.items()
            ],
        }
        for name, step in spec.steps.items()
    ]
    return {"title": spec.title, "id": spec.id, "version": spec.version, "steps": steps}


# What each action does, as a verb (the button's word where there is one).
WORKFLOW_ACTIONS = {
    "submit": _("Submit"),
    "approve": _("Approve"),
    "return": _("Return for revision"),
    "reject": _("Reject"),
    "cancel": _("Cancel request"),
    "sign": _("Sign"),
}
