"""Security headers on every answer: one reusable piece for all HTML the gateway serves.

Every response says `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`. HTML responses
also get a Content-Security-Policy (no inline or foreign scripts, no framing: `frame-ancestors 'none'`,
plus `X-Frame-Options: DENY` for old browsers). A route with a policy of its own sets its own
`Content-Security-Policy` header (e.g. from `html_headers(csp=...)`); the middleware keeps it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# GraphiQL needs inline *styles* (React sets style attributes) but no inline or foreign scripts.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))


def html_headers(csp: str = DEFAULT_CSP) -> dict[str, str]:
    """The headers an HTML page should carry, for routes that build their own response."""
    return {"Content-Security-Policy": csp, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"}


class SecurityHeadersMiddleware:
    """Adds the headers above to every HTTP response of the wrapped app."""

    def __init__(self, app: ASGIApp, csp: str = DEFAULT_CSP) -> None:
        self.app = app
        self.csp = csp.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in _ALWAYS if h[0] not in present]
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    if b"content-security-policy" not in present:
                        headers.append((b"content-security-policy", self.csp))
                    if b"x-frame-options" not in present:
                        headers.append((b"x-frame-options", b"DENY"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
