"""A size limit on every request body, as ASGI middleware: 413 early, never the whole body read.

A declared Content-Length over the limit is answered at once, before the application runs. A
body without one (chunked) is counted as it arrives; the chunk that passes the limit raises
`BodyTooLarge` (an HTTPException, so FastAPI's body parsing and the staff app's error pages pass
it on as a 413) and the middleware answers 413 itself if nothing else did.

Limits: JSON and form posts are small (a request's fields, a reason); uploads (multipart forms
with attachments, a raw PDF to the portal) get room for their own per-file limits, which stay
where they are (engine.attachments: 2 MB a file, 5 a request; the portal: 10 MB a PDF).
"""

from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORM_LIMIT = 1024 * 1024  # JSON bodies and url-encoded forms
UPLOAD_LIMIT = 12 * 1024 * 1024  # multipart forms (5 x 2 MB attachments) and raw PDF uploads
_UPLOAD_TYPES = ("multipart/form-data", "application/pdf")


def _mb(limit: int) -> str:
    return f"{limit / (1024 * 1024):g} MB"


def message_for(limit: int) -> str:
    return f"Isi permintaan terlalu besar (maksimal {_mb(limit)})."


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, message_for(limit))
        self.limit = limit


def limit_for(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            kind = value.decode("latin-1").split(";", 1)[0].strip().lower()
            return UPLOAD_LIMIT if kind in _UPLOAD_TYPES else FORM_LIMIT
    return FORM_LIMIT


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, form_limit: int = FORM_LIMIT) -> None:
        self.app = app
        self.form_limit = form_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope)
        if limit == FORM_LIMIT:
            limit = self.form_limit
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, send, limit)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        message = message_for(limit)
        if scope.get("path", "").startswith("/api"):
            body = json.dumps({"detail": message}).encode()
            kind = b"application/json"
        else:
            body = (
                '<!doctype html><html lang="id"><meta charset="utf-8">'
                f"<title>413</title><p>{message}</p></html>"
            ).encode()
            kind = b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", kind),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
