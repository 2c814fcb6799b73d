"""The admin dashboard at `/`: the Vue app built into gateway/webapp/ (by `make install`, see
docs/adr), served with a strict Content-Security-Policy and nothing from outside this gateway.

`index.html` is never cached (it names the current bundle); the files under `/assets/` carry a content
hash in their names and are cached for a year. The app's own paths (`/jobs`, `/jobs/<id>`, …) answer
with index.html so links and reloads work. `/api/jobs.csv` is the job list's CSV export.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from gateway.jobs.export import export_jobs_csv

WEBAPP_DIR = Path(__file__).parent / "webapp"
APP_PATHS = (
    "/",
    "/sign-in",
    "/jobs",
    "/jobs/{rest:path}",
    "/services",
    "/services/{rest:path}",
    "/errors",
    "/errors/{rest:path}",
    "/alerts",
    "/alerts/{rest:path}",
)

# Scripts, styles, images and connections only from this origin ('self' covers ws:/wss: to it);
# no inline script or style elements, no plugins, no framing, no form posts elsewhere.
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
IMMUTABLE = "public, max-age=31536000, immutable"

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>B2X Monitoring</title></head>
<body><main><h1>The dashboard is not built</h1><p>Run <code>make install</code> (it builds <code>frontend/</code>
with Node.js 20.19 or newer) and reload. The API works meanwhile: <a href="/graphql">GraphQL</a>.</p></main>
</body></html>
"""


class Assets(StaticFiles):
    """Hashed bundle files: cached for a year, with the same security headers as the page."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                status = message.get("status")
                cache = IMMUTABLE if status in (200, 304) else "no-store"
                headers.append((b"cache-control", cache.encode()))
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)  # type: ignore[arg-type]


async def index(_: Request) -> Response:
    page = WEBAPP_DIR / "index.html"
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    if not page.is_file():
        return HTMLResponse(NOT_BUILT, 503, headers=headers)
    return HTMLResponse(page.read_bytes(), headers=headers)


def routes() -> list[BaseRoute]:
    """The dashboard's routes, mounted by gateway.app beside /graphql."""
    return [
        *(Route(path, index, methods=["GET", "HEAD"]) for path in APP_PATHS),
        Route("/favicon.svg", _favicon, methods=["GET", "HEAD"]),
        Route("/api/jobs.csv", export_jobs_csv, methods=["GET"]),
        Mount("/assets", Assets(directory=WEBAPP_DIR / "assets", check_dir=False), name="dashboard-assets"),
    ]


async def _favicon(_: Request) -> Response:
    icon = WEBAPP_DIR / "favicon.svg"
    if not icon.is_file():
        return Response(status_code=404)
    return Response(icon.read_bytes(), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
