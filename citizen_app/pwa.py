"""What makes /warga/ installable on a phone: the web manifest, the service worker (served from
/warga/sw.js so its scope is /warga/) and the offline page it shows when the network is cut."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from citizen_app.rendering import ENV
from citizen_app.session import PREFIX
from citizen_app.views import router

STATIC = Path(__file__).parent / "static"
# Bump when the shell changes: the service worker then drops the old cache.
SHELL_VERSION = "warga-shell-1"
SHELL = (
    f"{PREFIX}/luring",
    f"{PREFIX}/static/warga.css",
    f"{PREFIX}/static/warga.js",
    f"{PREFIX}/static/icon-192.png",
    f"{PREFIX}/static/icon-512.png",
)


@router.get("/manifest.webmanifest")
def manifest() -> Response:
    body = {
        "name": "Surat Desa — Layanan Warga",
        "short_name": "Surat Desa",
        "description": "Ajukan surat keterangan desa/kelurahan dari ponsel dan pantau statusnya.",
        "lang": "id",
        "start_url": f"{PREFIX}/",
        "scope": f"{PREFIX}/",
        "id": f"{PREFIX}/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#14532d",
        "icons": [
            {
                "src": f"{PREFIX}/static/icon-{size}.png",
                "sizes": f"{size}x{size}",
                "type": "image/png",
                "purpose": "any",
            }
            for size in (192, 512)
        ],
    }
    return JSONResponse(
        body, media_type="application/manifest+json", headers={"Cache-Control": "no-cache"}
    )


@router.get("/sw.js")
def service_worker() -> Response:
    script = (STATIC / "sw.js").read_text(encoding="utf-8")
    script = script.replace("__VERSION__", SHELL_VERSION).replace(
        "__SHELL__", ", ".join(f'"{path}"' for path in SHELL)
    )
    return Response(
        script,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": f"{PREFIX}/"},
    )


@router.get("/luring")
def offline_page(request: Request) -> HTMLResponse:
    """What the service worker shows for a page it cannot fetch (kept in its cache)."""
    html = ENV.get_template("offline.html").render(request=request)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})
