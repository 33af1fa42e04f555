"""Response headers every page gets (staff app, portal, API, docs), and the one rule for which
peer's X-Forwarded-For / X-Forwarded-Proto are believed.

- Content-Security-Policy: scripts only from this origin (htmx and app.js under /staf/static;
  no inline script or event handler anywhere), styles from this origin plus inline styles (the
  portal's pages carry their CSS inline), images from this origin and data: URLs, no plugins,
  forms only to this origin, `frame-ancestors 'none'`. /docs sets its own policy (the Swagger
  UI start-up script is allowed by its hash: see suratdesa.web.mount_api_docs).
- X-Frame-Options DENY (for browsers without frame-ancestors), X-Content-Type-Options nosniff.
- Referrer-Policy same-origin; no-referrer on /v/ and /V/ pages, whose URL holds a letter's code.
- Forwarded headers only from SURATDESA_TRUSTED_PROXIES (IPs / CIDRs; none by default). From any
  other peer they are ignored and the peer's own address is the client, so a spoofed
  X-Forwarded-For cannot dodge the per-address limits. `suratdesa serve` turns off uvicorn's own
  proxy-header handling (which trusts loopback peers by default) so this is the only rule.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def docs_csp(script_hashes: list[str]) -> str:
    """The /docs policy: Swagger UI's bundle from /docs-static and its inline start-up script
    by hash; it also draws data: images and inline styles."""
    scripts = " ".join(f"'sha256-{h}'" for h in script_hashes)
    return CSP.replace("script-src 'self'", f"script-src 'self' {scripts}".rstrip())


def _private_path(path: str) -> bool:
    return path.startswith(("/v/", "/V/"))


class SecurityHeaders:
    """Pure ASGI (streamed bodies pass untouched). A header a handler set itself is kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        referrer = "no-referrer" if _private_path(scope.get("path", "")) else "same-origin"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", referrer)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app, trusted_proxies: tuple[str, ...]) -> None:  # noqa: ANN001 - a FastAPI app
    """Add both middlewares, outermost: every response, errors included, gets the headers, and
    everything inside sees the client address this module decided on."""
    app.add_middleware(SecurityHeaders)
    if trusted_proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(trusted_proxies))
