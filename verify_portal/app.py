"""The public verification portal: the page a QR opens (/v/{code}), the upload check
(/verify and /api/public/verify), and the trust publication (/pki/).

Privacy (UU 27/2022): a letter is found only by its unguessable code; no search by name or NIK;
the NIK is masked. Abuse: per-address rate limits counted in the database (all processes).
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser

from engine import pki
from engine.db import transaction
from engine.models import RevokedCertificate
from engine.public import (
    PublicLetter,
    StaleConnection,
    lookup_public_letter,
    normalize_code,
    pdf_offered,
    public_pdf,
    scan,
)
from engine.ratelimit import Limit, SharedCounter, hit, limit_from_env
from engine.registry import finish_verdict
from engine.seal import SealVerdict, build_key_list, local_keys, seal_verdict
from engine.verification import Verdict
from verify_portal.worker import Busy, pool

MAX_UPLOAD = 10 * 1024 * 1024  # a one-page letter is ~100 KB

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,  # compiled once per process; no stat() per page
)
VERDICTS = {
    "active": ("ASLI", "Surat ini asli dan tercatat aktif.", "ok"),
    "revoked": ("DICABUT", "Surat ini sudah dicabut dan tidak berlaku lagi.", "bad"),
    "replaced": ("DIGANTI", "Surat ini sudah diganti dengan surat pembetulan.", "warn"),
}
UPLOAD_VERDICTS = {
    "VALID": ("ASLI", "Tanda tangan sah, dokumen utuh, dan surat tercatat aktif.", "ok"),
    "INVALID": ("TIDAK SAH", "Berkas ini tidak dapat diterima sebagai surat asli.", "bad"),
    "REVOKED": ("DICABUT", "Berkas asli, tetapi surat ini sudah dicabut.", "bad"),
    "REPLACED": ("DIGANTI", "Berkas asli, tetapi surat ini sudah diganti.", "warn"),
    "UNKNOWN": ("TIDAK DIKENAL", "Surat ini tidak tercatat di registri.", "bad"),
}
NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
router = APIRouter()


def _engine(request: Request) -> Engine:
    return request.app.state.services.factory.kw["bind"]


@dataclass
class _Portal:
    """Per app process: the limits (SURATDESA_RATE_V / _VERIFY, read when the app first
    serves the portal), the buffered /v/ counter and the engine the QR page reads with."""

    limit_v: Limit
    limit_verify: Limit
    counter: SharedCounter
    reader: Engine
    inline: bool  # scans may run on the event loop (PostgreSQL autocommit reader)


_portal_lock = threading.Lock()


@lru_cache(maxsize=4)
def _reader(url: str) -> Engine | None:
    """PostgreSQL: an autocommit engine for the QR page (one statement, one round trip; no
    BEGIN/COMMIT, no pre-ping; the only writes are rate counts, which need no WAL flush).
    SQLite: None (the app's engine is used)."""
    if not url.startswith("postgresql"):
        return None
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=20)

    @event.listens_for(engine, "connect")
    def _no_wal_wait(dbapi_conn, _record) -> None:
        dbapi_conn.execute("SET synchronous_commit TO off")

    return engine


def _portal(request: Request) -> _Portal:
    state = request.app.state
    portal = getattr(state, "portal", None)
    if portal is None:
        with _portal_lock:
            portal = getattr(state, "portal", None)
            if portal is None:
                url = state.services.settings.database_url
                pg = _reader(url)
                reader = pg or _engine(request)
                portal = _Portal(
                    limit_from_env("v", 120),
                    limit_from_env("verify", 20),
                    SharedCounter(reader),
                    reader,
                    inline=pg is not None,
                )
                state.portal = portal
    return portal


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    html = _templates.get_template(name).render(**ctx)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


def _too_many(json_body: bool) -> Response:
    headers = {**NO_STORE, "Retry-After": "60"}
    message = "Terlalu banyak permintaan dari alamat Anda. Coba lagi dalam satu menit."
    if json_body:
        return JSONResponse({"status": "rate_limited", "detail": message}, 429, headers=headers)
    html = _templates.get_template("message.html").render(title="Terlalu banyak", text=message)
    return HTMLResponse(html, status_code=429, headers=headers)


# --------------------------------------------------------------------------- /v/{code}


def _scan(request: Request, code: str) -> tuple[bool, PublicLetter | None]:
    """(within the rate limit, the letter): one statement reads both; a client near its
    limit is also counted synchronously (engine.ratelimit.SharedCounter)."""
    portal = _portal(request)
    key = portal.counter.key(portal.limit_v, _client(request))
    if portal.counter.refused_already(portal.limit_v, key):
        return False, None
    for attempt in (1, 2):
        try:
            with portal.reader.begin() as conn:
                letter, shared = scan(conn, code, key)
                return portal.counter.count(conn, portal.limit_v, key, shared), letter
        except (DBAPIError, StaleConnection) as e:  # a pooled connection the server closed
            if attempt == 2 or not getattr(e, "connection_invalidated", True):
                raise
    raise AssertionError("unreachable")


def _letter_view(request: Request, code: str, seal: str | None) -> Response:
    allowed, letter = _scan(request, code)
    if not allowed:
        return _too_many(False)
    if letter is None:
        return _page("letter.html", 404, letter=None, verdict=None, seal=None)
    sealed = _check_seal(request, code, seal, letter) if seal is not None else None
    if sealed is not None and not sealed.valid:
        # A broken seal is its own verdict: the paper is suspect, whatever the registry says.
        return _page("seal.html", seal=sealed)
    return _page(
        "letter.html",
        letter=letter,
        verdict=VERDICTS[letter.status],
        seal=sealed,
        code=code,
        pdf=pdf_offered(letter, request.app.state.services.settings.public_pdf),
    )


async def _letter_view_async(request: Request, code: str, seal: str | None) -> Response:
    """On PostgreSQL the one short autocommit statement runs right on the event loop (no
    thread-pool hop). On SQLite a scan may wait for a signing transaction's write lock, so it
    waits in the thread pool instead of stalling every other request."""
    if _portal(request).inline:
        return _letter_view(request, code, seal)
    return await run_in_threadpool(_letter_view, request, code, seal)


def _check_seal(request: Request, code: str, seal: str, letter: PublicLetter) -> SealVerdict:
    """The engine's seal verdict for the seal under the letter's code, against the registry."""
    keys = _local_keys(str(request.app.state.services.settings.keys_dir))
    norm = normalize_code(code) or code
    return seal_verdict(norm, seal, keys, registry=letter.seal_record())


@lru_cache(maxsize=4)
def _local_keys(keys_dir: str):
    return local_keys(Path(keys_dir))


def _typed_code(text: str) -> str | None:
    """A code typed from the paper: spaces, dashes and lower case tolerated, or the whole
    printed URL (its part after /v/)."""
    text = text.strip()
    if "/" in text:
        parts = text.rstrip("/").split("/")
        marks = [i for i, part in enumerate(parts) if part.lower() == "v"]
        text = parts[marks[-1] + 1] if marks and marks[-1] + 1 < len(parts) else ""
    return normalize_code("".join(ch for ch in text if ch not in " -\t.") or "-")


@router.get("/v", response_class=HTMLResponse, include_in_schema=False)
def code_entry(request: Request, kode: str | None = None) -> Response:
    """The box for a code typed from the paper: a well-formed code goes to its page."""
    if kode is None or not kode.strip():
        return _page("code.html", kode="", error=None)
    code = _typed_code(kode[:200])
    if code is None:
        error = "Kode tidak dikenali. Kode terdiri dari 32 huruf A-Z dan angka 2-7."
        return _page("code.html", 400, kode=kode[:200], error=error)
    return RedirectResponse(f"/v/{code}", status_code=303, headers=NO_STORE)


for prefix in ("/v", "/V"):

    @router.get(prefix + "/{code}/surat.pdf", include_in_schema=False)
    def letter_pdf(code: str, request: Request) -> Response:
        """The signed PDF, only where the deployment chose to publish it (SURATDESA_PUBLIC_PDF)
        and only for a letter in force; otherwise a page that says why."""
        enabled = request.app.state.services.settings.public_pdf
        if not enabled:
            return _page(
                "message.html",
                404,
                title="PDF tidak tersedia",
                text="Portal ini tidak menyediakan berkas PDF surat, karena berisi data pribadi. "
                "Keaslian surat dapat diperiksa pada halaman kodenya, atau dengan mengunggah "
                "berkas yang Anda terima di halaman periksa berkas (/verify).",
            )
        portal = _portal(request)
        key = portal.counter.key(portal.limit_v, _client(request))
        if portal.counter.refused_already(portal.limit_v, key):
            return _too_many(False)
        with portal.reader.begin() as conn:
            if not portal.counter.count(conn, portal.limit_v, key, None):
                return _too_many(False)
            found = public_pdf(conn, code, enabled=enabled)
            letter = lookup_public_letter(conn, code) if found is None else None
        if found is None and letter is not None:  # revoked or replaced: never served
            gone = "dicabut" if letter.status == "revoked" else "diganti dengan surat lain"
            return _page(
                "message.html",
                410,
                title="PDF tidak tersedia",
                text=f"Surat nomor {letter.number} telah {gone}; berkasnya tidak disediakan. "
                f"Lihat status surat di /v/{normalize_code(code)}.",
            )
        if found is None:
            return _page("letter.html", 404, letter=None, verdict=None, seal=None)
        number, pdf = found
        filename = number.replace("/", "-") + ".pdf"
        return Response(
            pdf,
            media_type="application/pdf",
            headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @router.get(prefix + "/{code}", response_class=HTMLResponse, include_in_schema=False)
    async def letter_page(code: str, request: Request) -> Response:
        return await _letter_view_async(request, code, None)

    @router.get(prefix + "/{code}/{seal}", response_class=HTMLResponse, include_in_schema=False)
    async def letter_page_sealed(code: str, seal: str, request: Request) -> Response:
        return await _letter_view_async(request, code, seal)

    @router.get(prefix + "/{rest:path}", response_class=HTMLResponse, include_in_schema=False)
    async def letter_page_malformed(rest: str, request: Request) -> Response:
        """Any other path under /v/ (extra segments, encoded slashes, dot-dot): not found."""
        return await _letter_view_async(request, "", None)


def _seal_json(sealed: SealVerdict) -> dict[str, Any]:
    return {"valid": sealed.valid, "reason": sealed.reason}


@router.get("/api/public/letters/{code}", tags=["public"])
async def letter_json(code: str, request: Request, seal: str | None = None) -> Response:
    """The letter a code names. With ``seal`` (the last part of a QR URL) the seal is checked
    first: a broken seal answers ``{"status": "seal_invalid", "seal": {...}}`` and nothing else."""
    if _portal(request).inline:
        allowed, letter = _scan(request, code)
    else:
        allowed, letter = await run_in_threadpool(_scan, request, code)
    if not allowed:
        return _too_many(True)
    if letter is None:
        return JSONResponse({"status": "not_found"}, status_code=404, headers=NO_STORE)
    sealed = _check_seal(request, code, seal, letter) if seal is not None else None
    if sealed is not None and not sealed.valid:
        return JSONResponse(
            {"status": "seal_invalid", "seal": _seal_json(sealed)}, headers=NO_STORE
        )
    base = request.app.state.services.settings.public_url
    return JSONResponse(
        {
            "status": letter.status,
            "seal": _seal_json(sealed) if sealed is not None else None,
            "facts": list(letter.facts) if letter.facts is not None else None,
            "title": letter.title,
            "number": letter.number,
            "issued_at": letter.issued_at.isoformat(),
            "village": letter.village,
            "district": letter.district,
            "signer": {"name": letter.signer_name, "capacity": letter.signer_capacity},
            "subject": {"name": letter.subject_name, "nik": letter.subject_nik_masked},
            "purpose": letter.purpose,
            "pdf_sha256": letter.pdf_sha256,
            "revoked_at": letter.revoked_at.isoformat() if letter.revoked_at else None,
            "revoke_reason": letter.revoke_reason,
            "replaced_by": (
                f"{base}/v/{letter.replaced_by_code}" if letter.replaced_by_code else None
            ),
        },
        headers=NO_STORE,
    )


# --------------------------------------------------------------------------- /verify


class UploadRefused(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def _read_limited(request: Request) -> bytes:
    """The request body, refused as soon as it passes MAX_UPLOAD (never read whole first)."""
    declared = request.headers.get("content-length")
    too_big = f"Berkas terlalu besar (maksimal {MAX_UPLOAD // (1024 * 1024)} MB)."
    if declared and declared.isdigit() and int(declared) > MAX_UPLOAD + 64 * 1024:
        raise UploadRefused(too_big, 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD + 64 * 1024:
            raise UploadRefused(too_big, 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def _uploaded_pdf(request: Request) -> bytes:
    body = await _read_limited(request)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):

        async def stream() -> AsyncGenerator[bytes, None]:
            yield body

        try:
            form = await MultiPartParser(
                Headers(raw=request.headers.raw),
                stream(),
                max_files=1,
                max_fields=5,
                max_part_size=MAX_UPLOAD,
            ).parse()
        except MultiPartException as e:
            raise UploadRefused(f"Formulir unggahan tidak dapat dibaca: {e.message}") from e
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise UploadRefused("Pilih berkas PDF surat yang akan diperiksa.")
        data = await upload.read()
        await form.close()
    else:
        data = body
    if not data:
        raise UploadRefused("Berkas kosong. Pilih berkas PDF surat.")
    if len(data) > MAX_UPLOAD:
        raise UploadRefused(f"Berkas terlalu besar (maksimal {MAX_UPLOAD // 1048576} MB).", 413)
    if b"%PDF-" not in data[:1024]:
        raise UploadRefused("Berkas ini bukan PDF. Hanya berkas PDF yang dapat diperiksa.", 415)
    return data


@lru_cache(maxsize=4)
def _roots_der(keys_dir: str) -> tuple[bytes, ...]:
    return tuple(
        c.public_bytes(serialization.Encoding.DER) for c in pki.load_trust_roots(Path(keys_dir))
    )


def _finish(request: Request, result) -> Verdict:
    return finish_verdict(result, request.app.state.services.factory)


async def _verify_upload(request: Request) -> tuple[Verdict | None, str | None, int]:
    """(verdict, refusal message, HTTP status)."""
    with _engine(request).begin() as conn:
        allowed = hit(conn, _portal(request).limit_verify, _client(request))
    if not allowed:
        return None, None, 429
    try:
        pdf = await _uploaded_pdf(request)
    except UploadRefused as e:
        return None, str(e), e.status
    roots = list(_roots_der(str(request.app.state.services.settings.keys_dir)))
    try:
        result = await run_in_threadpool(pool().check, pdf, roots)
    except Busy:
        return None, "Server sedang sibuk. Coba lagi sebentar lagi.", 503
    verdict = await run_in_threadpool(_finish, request, result)
    return verdict, None, 200


@router.get("/verify", response_class=HTMLResponse, include_in_schema=False)
async def verify_form() -> HTMLResponse:
    return _page("verify.html", verdict=None, refusal=None)


@router.post("/verify", response_class=HTMLResponse, include_in_schema=False)
async def verify_upload(request: Request) -> Response:
    verdict, refusal, status = await _verify_upload(request)
    if status == 429:
        return _too_many(False)
    if verdict is None:
        return _page("verify.html", status, verdict=None, refusal=refusal)
    base = request.app.state.services.settings.public_url
    return _page(
        "verify.html",
        verdict=verdict,
        label=UPLOAD_VERDICTS[verdict.status],
        refusal=None,
        base=base,
    )


def verdict_json(verdict: Verdict, base: str) -> dict[str, Any]:
    data = json.loads(json.dumps(asdict(verdict), default=_iso))
    if verdict.registry is not None:
        data["registry"] = {
            "status": verdict.registry.status,
            "number": verdict.registry.number,
            "url": f"{base}/v/{verdict.registry.verify_code}",
        }
    return data


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@router.post("/api/public/verify", tags=["public"])
async def verify_api(request: Request) -> Response:
    """Upload a PDF (raw `application/pdf` body, or multipart field `file`); the verdict."""
    verdict, refusal, status = await _verify_upload(request)
    if status == 429:
        return _too_many(True)
    if verdict is None:
        return JSONResponse({"status": "refused", "detail": refusal}, status, headers=NO_STORE)
    base = request.app.state.services.settings.public_url
    return JSONResponse(verdict_json(verdict, base), headers=NO_STORE)


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
# The audit log's checkpoints (engine.audit), published read-only so anyone can keep a copy:
# a wipe or rewrite of the log would then contradict a signed, timestamped file held elsewhere.


def _audit_dir(request: Request) -> Path:
    return request.app.state.services.settings.audit_dir


@router.get("/pki/audit/", response_class=HTMLResponse, include_in_schema=False)
@router.get("/pki/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_checkpoints(request: Request) -> HTMLResponse:
    from engine.audit import list_checkpoints, wib

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
    from engine.audit import read_checkpoint

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
# Every signer certificate ever issued (engine.signers.registry), so a key issued to anyone
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
    from engine.signers import registry

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
