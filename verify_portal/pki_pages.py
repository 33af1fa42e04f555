"""The trust publication under /pki/: the CA certificates and CRL, the seal keys, the audit
checkpoints and every signer certificate ever issued."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select

from engine.storage.db import transaction
from engine.storage.models import RevokedCertificate
from engine.trust import pki
from engine.trust.seal import build_key_list
from verify_portal.common import _templates, router

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


@router.get("/pki/issuing-ca.crl", include_in_schema=False)
def crl(request: Request) -> Response:
    with transaction(request.app.state.services.factory) as session:
        rows = session.scalars(select(RevokedCertificate)).all()
        revoked = [(int(r.serial, 16), r.revoked_at) for r in rows]
    return Response(
        pki.build_crl(_keys_dir(request), revoked),
        media_type="application/pkix-crl",
        headers={"Cache-Control": "max-age=300"},
    )


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
    "head": "Kepala desa/lurah",
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
