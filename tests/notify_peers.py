"""Real peers for notices, on 127.0.0.1: an SMTP server (aiosmtpd) and an HTTP webhook
receiver (the standard library's http.server in a thread). Use them from any test file:

    from tests.notify_peers import smtp_server, webhook_receiver, with_notify  # noqa: F401

- ``smtp_server``: started; ``.messages`` (a list of ``email.message.EmailMessage``, each also
  with ``.rcpt_tos`` / ``.mail_from`` attributes of the envelope), ``.host``, ``.port``,
  ``.start()`` / ``.stop()`` (a server that is down refuses connections on its port).
- ``webhook_receiver``: started; ``.requests`` (a list of `Received`: path, headers, body, and
  ``.json()``), ``.url``, ``.secret`` (the shared secret to configure), ``.status`` (what it
  answers, 200 unless a test changes it) and ``.verify(received)`` (the signature check a
  gateway makes, through engine.notify.transports.verify_signature).
- ``with_notify(settings, smtp_server, webhook_receiver)``: the settings with both transports
  pointed at the peers.
- ``wait_for(predicate)``: wait for a condition (never a fixed sleep).
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from engine.config import Settings
from engine.notify.transports import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

HOST = "127.0.0.1"
WEBHOOK_SECRET = "peer-webhook-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition"):
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class _Collect:
    def __init__(self, messages: list) -> None:
        self.messages = messages

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message.rcpt_tos = list(envelope.rcpt_tos)
        message.mail_from = envelope.mail_from
        self.messages.append(message)
        return "250 Message accepted for delivery"


class SmtpPeer:
    """A real SMTP server on 127.0.0.1 that keeps what it receives."""

    def __init__(self, port: int | None = None) -> None:
        self.host = HOST
        self.port = port or free_port()
        self.messages: list[email.message.EmailMessage] = []
        self._controller: Controller | None = None

    def start(self) -> SmtpPeer:
        if self._controller is None:
            self._controller = Controller(
                _Collect(self.messages), hostname=self.host, port=self.port, ready_timeout=10
            )
            self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class WebhookPeer:
    """A real HTTP server on 127.0.0.1 that records every POST and answers ``status``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.secret = WEBHOOK_SECRET
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = peer.status
                if status < 300:
                    peer.requests.append(Received(self.path, dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> WebhookPeer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def verify(self, received: Received) -> bool:
        headers = {k.lower(): v for k, v in received.headers.items()}
        return verify_signature(
            self.secret.encode(),
            headers.get(TIMESTAMP_HEADER.lower(), ""),
            received.body,
            headers.get(SIGNATURE_HEADER.lower(), ""),
        )


@pytest.fixture
def smtp_server() -> Iterator[SmtpPeer]:
    peer = SmtpPeer().start()
    yield peer
    peer.stop()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookPeer]:
    peer = WebhookPeer().start()
    yield peer
    peer.stop()


def with_notify(
    settings: Settings, smtp: SmtpPeer | None = None, webhook: WebhookPeer | None = None, **more
) -> Settings:
    """``settings`` with e-mail and/or the webhook pointed at the peers (and fast retries)."""
    changes: dict = {"notify_retry_seconds": 0.2, **more}
    if smtp is not None:
        changes.update(smtp_host=smtp.host, smtp_port=smtp.port, smtp_from="surat@desa.test")
    if webhook is not None:
        changes.update(notify_webhook_url=webhook.url, notify_webhook_secret=webhook.secret)
    return replace(settings, **changes)
