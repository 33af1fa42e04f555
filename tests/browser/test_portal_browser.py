"""Debian's Chromium opens the URL decoded from a freshly signed letter's QR: ASLI with the
right number; after the head revokes the letter, the same URL shows DICABUT."""

from __future__ import annotations

import httpx

from tests.letters import decode_qr
from tests.test_tamper import issue_letter


class _Client:
    """The Staff helper's client interface over a real HTTP connection to the live server."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=60)

    def post(self, path, json=None, headers=None, **kw):
        return self.http.post(path, json=json, headers=headers, **kw)

    def get(self, path, headers=None, **kw):
        return self.http.get(path, headers=headers, **kw)


def test_qr_opens_asli_then_dicabut(live_server, page, logins, passphrase):
    client = _Client(live_server)
    letter = issue_letter(client, logins, passphrase)
    (qr,) = decode_qr(letter["pdf"])
    assert qr.startswith(live_server.upper() + "/V/")  # alphanumeric mode: URL + seal
    page.goto(qr)
    assert page.locator("#verdict strong").inner_text() == "ASLI"
    assert page.locator("#number").inner_text() == letter["number"]
    assert "Segel elektronik pada QR sah" in page.content(), page.locator(
        "p.note"
    ).first.inner_text()

    token = next(row[3] for row in logins.rows if row[0] == "head.grogol")
    r = client.post(
        f"/api/requests/{letter['request_id']}/letter/revoke",
        json={"reason": "Data pekerjaan keliru"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    page.goto(qr)
    assert page.locator("#verdict strong").inner_text() == "DICABUT"
    assert "Data pekerjaan keliru" in page.locator("#verdict").inner_text()
