"""The upload check: /verify and /api/public/verify, run first in a sandboxed worker
(verify_portal.worker), then against the registry."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import asdict
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser

from engine.ratelimit import hit
from engine.trust import pki
from engine.trust.registry import finish_verdict
from engine.trust.verification import Verdict
from verify_portal.common import (
    MAX_UPLOAD,
    NO_STORE,
    UPLOAD_VERDICTS,
    _client,
    _engine,
    _page,
    _portal,
    _too_many,
    router,
)
from verify_portal.worker import Busy, pool

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
        result = await run_in_threadpool(
            pool(request.app.state.services.settings).check, pdf, roots
        )
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
