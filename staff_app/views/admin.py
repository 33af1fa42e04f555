"""Staff pages: Regency admin: villages, users, signer certificates, workflows."""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from engine.bootstrap import enroll_signer
from engine.errors import Conflict, InvalidInput, NotFound
from engine.http_status import http_status
from engine.people import admin, signers
from engine.people.users import (
    ALL_ROLES,
    active_head,
    create_user,
    disable_user,
)
from engine.services import Services
from engine.storage.db import transaction
from engine.storage.models import Letter, LetterRequest, User, Village
from engine.timeutil import now_utc
from engine.trust import signer_limit
from staff_app.deps import Svc, WebDep, require, router
from staff_app.rendering import render
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
        requests_by = dict(
            session.execute(
                select(LetterRequest.village_code, func.count()).group_by(
                    LetterRequest.village_code
                )
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
            web=web,
            nav={},
            villages=villages,
            requests_by=requests_by,
            letters_by=letters_by,
        )


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


@router.get("/admin/pengguna")
def admin_users(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    require(web, "admin")
    with transaction(svc.factory) as session:
        return _users_page(request, session, web)


def _users_page(request, session, web, *, error=None, errors=None, values=None, status=200):
    users = list(
        session.scalars(select(User).order_by(User.village_code, User.username).limit(1000))
    )
    live = signers.live_key_holders(session, users)
    return render(
        request,
        "admin/users.html",
        status,
        web=web,
        nav={},
        users=users,
        live=live,
        locks=signer_limit.locked_users(session),
        roles=ALL_ROLES,
        error=error,
        errors=errors or {},
        values=values or {},
        today=now_utc(),
    )


@router.post("/admin/pengguna")
async def admin_users_post(request: Request, web: WebDep, svc: Svc) -> Response:
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    values = {
        k: str(form.get(k, "")).strip()
        for k in ("username", "full_name", "role", "village_code", "nip", "password")
    }
    try:

        def create() -> None:  # argon2: on the password thread pool, not the event loop
            with transaction(svc.factory) as session:
                create_user(
                    session,
                    by=web.actor,
                    username=values["username"],
                    full_name=values["full_name"] or values["username"],
                    role=values["role"],
                    village_code=values["village_code"] or None,
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
    try:
        with transaction(svc.factory) as session:
            user = session.get(User, user_id)
            if user is None:
                raise HTTPException(404)
            action(session, user, value)
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


@router.post("/admin/pengguna/{user_id}/cabut")
async def admin_revoke_certificate(
    request: Request, user_id: int, web: WebDep, svc: Svc
) -> Response:
    def revoke(session, user, reason):
        if not signers.has_live_key(session, user):
            raise InvalidInput(f"{user.username} tidak memegang kunci tanda tangan yang berlaku.")
        signers.revoke_key(session, web.actor, user, reason)

    return await _user_action(request, user_id, web, svc, revoke)


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
    require(web, "admin")
    return render(
        request, "admin/workflows.html", web=web, nav={}, specs=list(svc.catalog.specs.values())
    )
