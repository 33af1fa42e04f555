"""The page a QR opens (/v/{code}, with its seal), the code entry form (/v) and the public JSON
of a letter (/api/public/letters/{code})."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DBAPIError

from engine.letters.public import (
    PublicLetter,
    StaleConnection,
    lookup_public_letter,
    normalize_code,
    pdf_offered,
    public_pdf,
    scan,
)
from engine.trust.seal import SealVerdict, local_keys, seal_verdict
from verify_portal.common import NO_STORE, VERDICTS, _client, _page, _portal, _too_many, router

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
            "signer": {
                "name": letter.signer_name,
                "capacity": letter.signer_capacity,
                # set when the signing certificate was revoked after the letter (still genuine)
                "certificate_revoked_at": (
                    letter.signer_revoked_at.isoformat() if letter.signer_revoked_at else None
                ),
            },
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
