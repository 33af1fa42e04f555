"""The browser harness itself, and the API docs served without a CDN."""

from __future__ import annotations


def test_chromium_opens_an_unknown_code_page(live_server, page):
    page.goto(f"{live_server}/v/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert page.locator("strong").first.inner_text() == "TIDAK DITEMUKAN"


def test_api_docs_render_offline(live_server, page):
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(live_server) else None,
    )
    page.goto(f"{live_server}/docs")
    page.get_by_text("/api/requests/{request_id}/sign").first.wait_for(timeout=15000)
    assert outside == []
