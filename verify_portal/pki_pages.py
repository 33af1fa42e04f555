"""The trust publication under /pki/: the CA certificates and CRL, the seal keys, the audit
checkpoints and every signer certificate ever issued."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from engine.people import signers
from engine.storage.db import transaction
from engine.trust import pki
from engine.trust.pki.ocsp import MAX_REQUEST as OCSP_MAX_REQUEST
from engine.trust.pki.ocsp import try_later as ocsp_try_later
from engine.trust.seal import build_key_list
from verify_portal.common import _client, _portal, _templates, router

# --------------------------------------------------------------------------- /pki/


def _keys_dir(request: Request) -> Path:
    return request.app.state.services.settings.keys_dir


@router.get("/pki/", response_class=HTMLResponse, include_in_schema=False)
@router.get("/pki", response_class=HTMLResponse, include_in_schema=False)
def pki_page(request: Request) -> HTMLResponse:
    root = pki.load_root_ca(_keys_dir(request))
    fingerprint = root.fingerprint(hashes.SHA256()).hex(":").upper()
    html = _templates.get_template("pki.html").render(root=root, fingerprint=fingerprint)
    return HTMLResponse(html)


def _cert(cert, name: str) -> Response:
    return Response(
        cert.public_bytes(serialization.Encoding.PEM),
        media_type="application/x-pem-file",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/pki/root-ca.pem", include_in_schema=False)
def root_pem(request: Request) -> Response:
    return _cert(pki.load_root_ca(_keys_dir(request)), "root-ca.pem")


@router.get("/pki/issuing-ca.pem", include_in_schema=False)
def issuing_pem(request: Request) -> Response:
    return _cert(pki.load_issuing_ca(_keys_dir(request)), "issuing-ca.pem")


@router.get("/pki/issuing-ca.cer", include_in_schema=False)
def issuing_der(request: Request) -> Response:
    """The issuing CA certificate in DER: the caIssuers address in every signer certificate."""
    der = pki.load_issuing_ca(_keys_dir(request)).public_bytes(serialization.Encoding.DER)
    return _cacheable(request, der, "application/pkix-cert", max_age=86400)


# --------------------------------------------------------------------------- CRLs and OCSP
# The addresses every certificate carries (engine.trust.pki.revocation). Cacheable: a strong
# ETag, Last-Modified, and a max-age that never reaches past the data's nextUpdate and stays
# short (MAX_AGE), so a revocation reaches HTTP caches within minutes.

MAX_AGE = 300
OCSP_RESPONSE = "application/ocsp-response"


def _max_age(next_update: datetime | None) -> int:
    if next_update is None:
        return 0
    return max(0, min(MAX_AGE, int((next_update - datetime.now(UTC)).total_seconds())))


def _cacheable(
    request: Request,
    body: bytes,
    media_type: str,
    *,
    max_age: int,
    last_modified: datetime | None = None,
) -> Response:
    etag = f'"{hashlib.sha256(body).hexdigest()}"'
    headers = {"Cache-Control": f"public, max-age={max_age}, no-transform", "ETag": etag}
    if last_modified is not None:
        headers["Last-Modified"] = format_datetime(last_modified.astimezone(UTC), usegmt=True)
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


@router.get(pki.CRL_PATH, include_in_schema=False)
def crl(request: Request) -> Response:
    """The issuing CA's CRL (DER), re-signed only when a certificate was revoked or hourly."""
    with transaction(request.app.state.services.factory) as session:
        published = signers.current_crl(session, _keys_dir(request))
    return _cacheable(
        request,
        published.der,
        "application/pkix-crl",
        max_age=_max_age(published.next_update),
        last_modified=published.this_update,
    )


@router.get(pki.ROOT_CRL_PATH, include_in_schema=False)
def root_crl(request: Request) -> Response:
    """The root's CRL (over the issuing CA), signed offline and installed in the key folder."""
    found = pki.root_crl(_keys_dir(request))
    if found is None:
        return Response("Tidak ada CRL root.", status_code=404, media_type="text/plain")
    return _cacheable(
        request,
        found.public_bytes(serialization.Encoding.DER),
        "application/pkix-crl",
        max_age=_max_age(found.next_update_utc),
        last_modified=found.last_update_utc,
    )


def _try_later() -> Response:
    """Over the per-address limit (the QR page's): HTTP 429 with an OCSP tryLater answer, so
    an OCSP client reads a reason it understands."""
    headers = {"Cache-Control": "no-store", "Retry-After": "60"}
    return Response(ocsp_try_later().der, 429, headers=headers, media_type=OCSP_RESPONSE)


def _ocsp(request: Request, der: bytes, *, get: bool) -> Response:
    portal = _portal(request)
    key = portal.counter.key(portal.limit_v, _client(request))
    if portal.counter.refused_already(portal.limit_v, key):
        return _try_later()
    with portal.reader.begin() as conn:
        if not portal.counter.count(conn, portal.limit_v, key, None):
            return _try_later()
        answer = signers.ocsp_answer(conn, _keys_dir(request), der)
    if not get or not answer.shared:  # POST, an error, or an answer echoing a nonce
        return Response(answer.der, media_type=OCSP_RESPONSE, headers={"Cache-Control": "no-store"})
    return _cacheable(
        request,
        answer.der,
        OCSP_RESPONSE,
        max_age=_max_age(answer.next_update),
        last_modified=answer.this_update,
    )


@router.post(pki.OCSP_PATH, include_in_schema=False)
async def ocsp_post(request: Request) -> Response:
    """OCSP over POST (RFC 6960 A.1): the DER request as the body."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > OCSP_MAX_REQUEST:
            break
    return await run_in_threadpool(_ocsp, request, body, get=False)


@router.get(pki.OCSP_PATH + "/{encoded:path}", include_in_schema=False)
def ocsp_get(request: Request, encoded: str) -> Response:
    """OCSP over GET (RFC 6960 A.1): the DER request, base64, URL-encoded, as the path."""
    text = encoded.strip().replace(" ", "+")
    try:
        if "-" in text or "_" in text:
            der = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        else:
            der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        der = b""
    return _ocsp(request, der, get=True)


@router.get("/pki/seal-keys.cose", include_in_schema=False)
def seal_keys(request: Request) -> Response:
    return Response(
        build_key_list(_keys_dir(request)),
        media_type="application/cose",
        headers={"Content-Disposition": 'attachment; filename="seal-keys.cose"'},
    )


# --------------------------------------------------------------------------- /pki/audit/
# The audit log's checkpoints (engine.storage.audit), published read-only so anyone can keep a copy:
# a wipe or rewrite of the log would then contradict a signed, timestamped file held elsewhere.


def _audit_dir(request: Request) -> Path:
    return request.app.state.services.settings.audit_dir


@router.get("/pki/audit/", response_class=HTMLResponse, include_in_schema=False)
@router.get("/pki/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_checkpoints(request: Request) -> HTMLResponse:
    from engine.storage.audit_checkpoints import list_checkpoints, wib

    rows = [
        {
            "name": cp.name,
            "last_id": cp.last_id,
            "events": cp.events,
            "last_hash": cp.last_hash,
            "created": wib(cp.created_at) if cp.created_at else None,
            "error": cp.error,
        }
        for cp in list_checkpoints(_audit_dir(request))
    ]
    html = _templates.get_template("audit.html").render(checkpoints=rows)
    return HTMLResponse(html, headers={"Cache-Control": "max-age=60"})


@router.get("/pki/audit/{name}", include_in_schema=False)
def audit_checkpoint_file(request: Request, name: str) -> Response:
    from engine.storage.audit_checkpoints import read_checkpoint

    data = read_checkpoint(_audit_dir(request), name)
    if data is None:
        html = _templates.get_template("message.html").render(
            title="Tidak ditemukan", text="Titik periksa itu tidak ada."
        )
        return HTMLResponse(html, status_code=404)
    return Response(
        data,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            # A checkpoint file is never rewritten once made.
            "Cache-Control": "public, max-age=31536000, immutable",
        },
    )


# --------------------------------------------------------------------------- /pki/signers
# Every signer certificate ever issued (engine.people.signers.registry), so a key issued to anyone
# cannot stay hidden. HTML for people, JSON and CSV for whoever watches the list.

SIGNER_ROLES = {
    "head": "Kepala Desa/Lurah",
    "sekdes": "Sekretaris desa/kelurahan",
    "kasi": "Kepala seksi",
    "operator": "Staf",
}
SIGNER_STATUS = {
    "aktif": "berlaku",
    "dicabut": "dicabut",
    "kedaluwarsa": "kedaluwarsa",
    "diganti": "diganti kunci baru",
    "akun nonaktif": "akun nonaktif",
}
_SIGNERS_CACHE = {"Cache-Control": "max-age=60"}


def _signer_rows(request: Request) -> list[dict[str, Any]]:
    from engine.people.signers import registry

    with transaction(request.app.state.services.factory) as session:
        entries = registry(session)
    return [
        {
            "village_code": e.village_code,
            "village": e.village,
            "district": e.district,
            "role": e.role,
            "role_label": SIGNER_ROLES.get(e.role, e.role),
            "title": e.title,
            "name": e.name,
            "serial": e.serial,
            "fingerprint_sha256": e.fingerprint_sha256,
            "not_before": e.not_before.isoformat(),
            "not_after": e.not_after.isoformat(),
            "issued_at": e.issued_at.isoformat(),
            "key_storage": e.key_storage,
            "status": e.status,
            "status_label": SIGNER_STATUS.get(e.status, e.status),
            "revoked_at": e.revoked_at.isoformat() if e.revoked_at else None,
        }
        for e in entries
    ]


@router.get("/pki/signers", response_class=HTMLResponse, include_in_schema=False)
def signers_page(request: Request) -> HTMLResponse:
    from engine.dates import WIB

    def day(iso: str | None) -> str:
        return datetime.fromisoformat(iso).astimezone(WIB).strftime("%d-%m-%Y") if iso else ""

    rows = _signer_rows(request)
    html = _templates.get_template("signers.html").render(rows=rows, day=day)
    return HTMLResponse(html, headers=_SIGNERS_CACHE)


@router.get("/pki/signers.json", tags=["public"])
def signers_json(request: Request) -> Response:
    """Every signer certificate this deployment ever issued, with its status."""
    rows = _signer_rows(request)
    for row in rows:
        del row["role_label"], row["status_label"]
    return JSONResponse({"signers": rows, "count": len(rows)}, headers=_SIGNERS_CACHE)


@router.get("/pki/signers.csv", include_in_schema=False)
def signers_csv(request: Request) -> Response:
    import csv
    import io

    rows = _signer_rows(request)
    columns = [
        "village_code",
        "village",
        "role",
        "title",
        "name",
        "serial",
        "fingerprint_sha256",
        "not_before",
        "not_after",
        "issued_at",
        "key_storage",
        "status",
        "revoked_at",
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="penanda-tangan.csv"'},
    )
