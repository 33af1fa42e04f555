"""The ways a notice leaves the building: e-mail over SMTP, and a signed JSON webhook that a
WhatsApp/SMS gateway receives. Each transport's `send` returns on success and raises
`DeliveryError` (or any OSError / smtplib error) on failure; the dispatcher records either.

The webhook POSTs a JSON object (notice id, kind, audience, recipient address, subject, text,
link, request id, village code, created time) with these headers:

- ``X-SuratDesa-Timestamp``: Unix seconds when it was sent;
- ``X-SuratDesa-Signature``: ``sha256=`` + hex HMAC-SHA256 under the shared secret over
  ``timestamp + "." + body`` (the exact bytes sent), so a receiver can check both who sent it and
  that it is fresh (`verify_signature`);
- ``X-SuratDesa-Notice``: the notice id, the same on every retry, so a receiver can drop a
  repeat (delivery is at least once: a crash after the gateway answered and before the outcome
  was written sends the notice again).

Only https URLs are accepted, and plain http to 127.0.0.1 / [::1] (a gateway on the same machine,
and the tests): `engine.config.check_webhook_url`. Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

from engine.config import Settings, check_webhook_url
from engine.errors import SuratDesaError

SIGNATURE_HEADER = "X-SuratDesa-Signature"
TIMESTAMP_HEADER = "X-SuratDesa-Timestamp"
NOTICE_HEADER = "X-SuratDesa-Notice"
TIMEOUT_SECONDS = 20.0


class DeliveryError(SuratDesaError):
    """A transport could not hand the notice over; the text says why."""


@dataclass(frozen=True)
class Outgoing:
    """A notice as a transport sends it (a plain copy: no database session is held)."""

    id: int
    kind: str
    audience: str
    address: str
    subject: str
    text: str
    link: str | None  # absolute URL, or None
    request_id: int | None
    village_code: str | None
    created_at: str  # ISO 8601, UTC


class Transport(Protocol):
    name: str

    def send(self, notice: Outgoing) -> None: ...


class SmtpTransport:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        user: str | None = None,
        password: str | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.user, self.password, self.timeout = starttls, user, password, timeout

    def message(self, notice: Outgoing) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = notice.address
        msg["Subject"] = notice.subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(idstring=f"notice-{notice.id}")
        msg[NOTICE_HEADER] = str(notice.id)
        text = notice.text + (f"\n\n{notice.link}" if notice.link else "")
        msg.set_content(text + "\n\n-- \nSurat Desa (pesan otomatis, mohon tidak dibalas)\n")
        return msg

    def send(self, notice: Outgoing) -> None:
        msg = self.message(notice)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password or "")
            refused = smtp.send_message(msg)
        if refused:
            raise DeliveryError(f"recipient refused: {refused}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        raise DeliveryError(f"webhook answered a redirect ({code}) to {newurl}; not followed")


class WebhookTransport:
    name = "webhook"

    def __init__(self, url: str, secret: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        check_webhook_url(url)
        if not secret:
            raise ValueError("the webhook needs a shared secret")
        self.url, self.secret, self.timeout = url, secret.encode(), timeout
        self._opener = urllib.request.build_opener(_NoRedirect())

    def body(self, notice: Outgoing) -> bytes:
        payload = {
            "id": notice.id,
            "kind": notice.kind,
            "audience": notice.audience,
            "to": notice.address,
            "subject": notice.subject,
            "text": notice.text,
            "link": notice.link,
            "request_id": notice.request_id,
            "village_code": notice.village_code,
            "created_at": notice.created_at,
        }
        return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()

    def send(self, notice: Outgoing) -> None:
        body = self.body(notice)
        timestamp = str(int(time.time()))
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "SuratDesa-Notify/1",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: "sha256=" + sign(self.secret, timestamp, body),
                NOTICE_HEADER: str(notice.id),
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"webhook answered HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise DeliveryError(f"webhook unreachable: {exc.reason}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook answered HTTP {status}")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance: float = 300.0,
) -> bool:
    """What a receiver checks: the signature over timestamp and body, and a timestamp within
    ``tolerance`` seconds of now (a replayed old message fails)."""
    if not signature.startswith("sha256="):
        return False
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    expected = sign(secret, timestamp, body)
    return age <= tolerance and hmac.compare_digest(expected, signature.removeprefix("sha256="))


def transports_from_settings(settings: Settings) -> dict[str, Transport]:
    """The transports this deployment configured, by name ("email", "webhook")."""
    found: dict[str, Transport] = {}
    if settings.smtp_host:
        found["email"] = SmtpTransport(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            starttls=settings.smtp_starttls,
            user=settings.smtp_user,
            password=settings.smtp_password,
        )
    if settings.notify_webhook_url:
        found["webhook"] = WebhookTransport(
            settings.notify_webhook_url, settings.notify_webhook_secret
        )
    return found
