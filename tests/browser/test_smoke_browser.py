"""The browser harness itself: Debian's Chromium opens the live app."""

from __future__ import annotations


def test_chromium_opens_an_unknown_code_page(live_server, page):
    page.goto(f"{live_server}/v/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert page.locator("strong").first.inner_text() == "TIDAK DITEMUKAN"
