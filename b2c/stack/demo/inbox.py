"""The demo's receiving end of notifications: `python -m b2c.stack.demo.inbox`.

Two real servers on loopback, so `b2c up --demo` shows alerts arriving the way an operator would get them:

    SMTP     an aiosmtpd catcher on B2X_DEMO_SMTP_PORT (default 18025): every message accepted is written
             to <B2X_DEMO_INBOX_DIR>/mail/<time>-<n>.eml (open it with any mail client, or read it)
    HTTP     a webhook sink on B2X_DEMO_WEBHOOK_PORT (default 18084): every POST body is appended, one JSON
             object per line, to <B2X_DEMO_INBOX_DIR>/webhooks.jsonl; GET / lists what arrived, newest
             first, GET /mail/<name> shows one message

Nothing is relayed anywhere; the catcher accepts any sender and recipient.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import html
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

_MAX_BODY = 5 * 1024 * 1024


class Mailbox:
    """aiosmtpd handler that keeps every message as an .eml file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._count = len(list(directory.glob("*.eml")))

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._count += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
        path = self.directory / f"{stamp}-{self._count:05d}.eml"
        content = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        path.write_bytes(content)
        return "250 OK kept in the demo mailbox"


def _summary(path: Path) -> dict[str, str]:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return {"file": path.name, "subject": str(message["Subject"] or ""), "to": str(message["To"] or ""),
            "date": str(message["Date"] or "")}  # fmt: skip


class WebhookSink:
    """The HTTP side: records POSTs and shows what arrived."""

    def __init__(self, directory: Path) -> None:
        self.mail = directory / "mail"
        self.log = directory / "webhooks.jsonl"
        directory.mkdir(parents=True, exist_ok=True)

    async def receive(self, request: Request) -> Response:
        raw = await request.body()
        if len(raw) > _MAX_BODY:
            return PlainTextResponse("too large", status_code=413)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        entry = {
            "received_at": datetime.now(UTC).isoformat(),
            "path": request.url.path,
            "idempotency_key": request.headers.get("idempotency-key", ""),
            "body": body,
        }
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        return JSONResponse({"status": "received"})

    def _webhooks(self, limit: int = 50) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()[-limit:]
        return [json.loads(line) for line in reversed(lines) if line.strip()]

    async def index(self, request: Request) -> Response:
        mails = sorted(self.mail.glob("*.eml"), reverse=True)[:50]
        rows = "".join(
            f"<tr><td>{html.escape(s['date'])}</td><td><a href='/mail/{html.escape(s['file'])}'>"
            f"{html.escape(s['subject'])}</a></td><td>{html.escape(s['to'])}</td></tr>"
            for s in map(_summary, mails)
        )
        hooks = "".join(
            f"<tr><td>{html.escape(h['received_at'])}</td><td>{html.escape(h['path'])}</td>"
            f"<td><pre>{html.escape(json.dumps(h['body'], indent=1)[:4000])}</pre></td></tr>"
            for h in self._webhooks()
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>B2X demo inbox</title></head><body>"
            f"<h1>B2X demo inbox</h1><p>Mailbox: <code>{html.escape(str(self.mail))}</code> · webhooks: "
            f"<code>{html.escape(str(self.log))}</code></p>"
            f"<h2>E-mail</h2><table border='1' cellpadding='4'><tr><th>Date</th><th>Subject</th><th>To</th></tr>"
            f"{rows or '<tr><td colspan=3>none yet</td></tr>'}</table>"
            f"<h2>Webhook calls</h2><table border='1' cellpadding='4'><tr><th>Received</th><th>Path</th>"
            f"<th>Body</th></tr>{hooks or '<tr><td colspan=3>none yet</td></tr>'}</table></body></html>"
        )
        return HTMLResponse(page)

    async def show_mail(self, request: Request) -> Response:
        name = request.path_params["name"]
        path = self.mail / name
        if "/" in name or not name.endswith(".eml") or not path.is_file():
            return PlainTextResponse("no such message", status_code=404)
        return PlainTextResponse(path.read_text(encoding="utf-8", errors="replace"))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/", self.index, methods=["GET"]),
                Route("/mail/{name}", self.show_mail, methods=["GET"]),
                Route("/{path:path}", self.receive, methods=["POST"]),
            ]
        )


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SystemExit(f"b2x-demo-inbox: cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.listen(64)
    sock.setblocking(False)
    return sock


async def serve(directory: Path, smtp_socket: socket.socket, http_socket: socket.socket) -> None:
    """Both servers in this event loop until cancelled (SIGTERM stops uvicorn, then the SMTP server)."""
    import uvicorn  # noqa: PLC0415 - only the process itself needs the server
    from aiosmtpd.smtp import SMTP  # noqa: PLC0415

    mailbox = Mailbox(directory / "mail")
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(lambda: SMTP(mailbox, hostname="b2x-demo-inbox"), sock=smtp_socket)
    sink = WebhookSink(directory)
    config = uvicorn.Config(sink.app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    try:
        await uvicorn.Server(config).serve(sockets=[http_socket])
    finally:
        smtp.close()
        await smtp.wait_closed()


def main() -> None:
    from b2c.stack.settings import StackPorts  # noqa: PLC0415

    ports = StackPorts.from_env()
    directory = Path(os.environ.get("B2X_DEMO_INBOX_DIR") or "demo-inbox").resolve()
    host = ports.local_host
    print(f"Demo SMTP catcher  smtp://{host}:{ports.demo_smtp}  -> {directory / 'mail'}/*.eml", flush=True)
    print(f"Demo webhook sink  http://{host}:{ports.demo_webhook}/  -> {directory / 'webhooks.jsonl'}", flush=True)
    sockets = listen(host, ports.demo_smtp), listen(host, ports.demo_webhook)
    asyncio.run(serve(directory, *sockets))


if __name__ == "__main__":
    main()
