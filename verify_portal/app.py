"""Public verification: the page a QR code opens. First cut: registry status and the minimum a
reader needs to compare with the paper in hand. No search, masked NIK, no sequential ids."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from engine.db import transaction
from engine.public import find_public_letter

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
VERDICTS = {
    "active": ("ASLI", "Surat ini asli dan tercatat aktif.", "ok"),
    "revoked": ("DICABUT", "Surat ini tercatat sudah dicabut dan tidak berlaku.", "bad"),
}
router = APIRouter()


@router.get("/v/{code}", response_class=HTMLResponse, include_in_schema=False)
def letter_page(code: str, request: Request) -> HTMLResponse:
    with transaction(request.app.state.services.factory) as session:
        letter = find_public_letter(session, code)
    if letter is None:
        html = _templates.get_template("letter.html").render(letter=None, verdict=None)
        return HTMLResponse(html, status_code=404)
    verdict = VERDICTS[letter.status]
    html = _templates.get_template("letter.html").render(letter=letter, verdict=verdict)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/api/public/letters/{code}", tags=["public"])
def letter_json(code: str, request: Request) -> JSONResponse:
    with transaction(request.app.state.services.factory) as session:
        letter = find_public_letter(session, code)
    if letter is None:
        return JSONResponse({"status": "not_found"}, status_code=404)
    return JSONResponse(
        {
            "status": letter.status,
            "title": letter.title,
            "number": letter.number,
            "issued_at": letter.issued_at.isoformat(),
            "village": letter.village,
            "district": letter.district,
            "signer": {"name": letter.signer_name, "capacity": letter.signer_capacity},
            "subject": {"name": letter.subject_name, "nik": letter.subject_nik_masked},
            "pdf_sha256": letter.pdf_sha256,
        }
    )
