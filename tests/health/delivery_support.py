"""Real receivers for the delivery tests: an aiosmtpd SMTP server and an HTTP server with scripted answers,
plus notices and a delivery set up against the test's own migrated database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.settings import CommonSettings
from services.health.alerts.delivery import build_delivery
from services.health.alerts.delivery.sink import OutboxSink
from services.health.alerts.delivery.worker import DeliveryWorker
from services.health.alerts.notice import AlertNotice, AlertState, Severity
from services.health.registry.config import parse_config
from tests.support import serving

FAST_ROUTE = "  route: {group_wait: 0.5s, group_interval: 1s, repeat_interval: 3s}\n  retry: {initial: 0.3s, max: 1s}\n"


# -- SMTP -------------------------------------------------------------------------------------------


class _Collect:
    def __init__(self, box: list[EmailMessage]) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.box.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK queued as test"


@dataclass
class SmtpServer:
    """aiosmtpd in its own thread on a free port; `stop()`/`start()` keep the port (a server down, then back)."""

    port: int = 0
    tls_context: ssl.SSLContext | None = None
    require_starttls: bool = False
    implicit_tls: ssl.SSLContext | None = None  # SMTPS: TLS from the first byte
    credentials: tuple[str, str] | None = None
    received: list[EmailMessage] = field(default_factory=list)
    controller: Controller | None = None

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {}
        if self.tls_context is not None:
            kwargs.update(tls_context=self.tls_context, require_starttls=self.require_starttls)
        if self.implicit_tls is not None:
            kwargs.update(ssl_context=self.implicit_tls)
        if self.credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=self.tls_context is not None)  # fmt: skip
        if not self.port:  # aiosmtpd's Controller checks its own port by connecting: it needs a number up front
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
        self.controller = Controller(_Collect(self.received), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        self.port = self.controller.port
        return self

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == self.credentials
        return AuthResult(success=ok, handled=False)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


# -- HTTP -------------------------------------------------------------------------------------------


@dataclass
class HttpReceiver:
    """Records every POST it accepts (path, headers, JSON body); `script` holds what to do with the next
    requests: an HTTP status to answer, or a float = seconds to hang (then 504, the request not accepted).
    Empty script: 200."""

    script: list[int | float] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: Request) -> Response:
        action = self.script.pop(0) if self.script else 200
        if isinstance(action, float):
            await asyncio.sleep(action)
            action = 504
        body = await request.body()
        if action == 200:
            self.requests.append({"path": request.url.path, "headers": dict(request.headers), "body": json.loads(body),
                                  "at": time.monotonic()})  # fmt: skip
        self.answered.append(action)
        return JSONResponse({"status": "ok" if action == 200 else "scripted failure"}, status_code=action)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[HttpReceiver]:
        app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        async with serving(config) as port:
            self.port = port
            yield self


# -- notices and the delivery under test -----------------------------------------------------------


def notice(
    alert_id: str,
    state: AlertState = AlertState.FIRING,
    *,
    rule: str = "job_failed",
    severity: Severity = Severity.ERROR,
    episode: int = 1,
    silenced_by: str | None = None,
    acknowledged_by: str | None = None,
    **labels: str,
) -> AlertNotice:
    now = datetime.now(UTC)
    return AlertNotice(
        alert_id=alert_id,
        fingerprint=f"fp-{alert_id}",
        episode=episode,
        state=state,
        severity=severity,
        summary=f"{rule} {alert_id}",
        description=f"what happened to {alert_id}",
        labels={"rule": rule, "severity": str(severity), **labels},
        started_at=now,
        changed_at=now,
        resolved_at=now if state is AlertState.RESOLVED else None,
        acknowledged_by=acknowledged_by,
        silenced_by=silenced_by,
    )


async def submit(pool: asyncpg.Pool, sink: OutboxSink, notices: Sequence[AlertNotice]) -> None:
    """As the lifecycle does: inside its own transaction."""
    async with pool.acquire() as conn, conn.transaction():
        await sink.submit(conn, notices)


def delivery(
    settings: CommonSettings, pool: asyncpg.Pool, notifications_yaml: str, **environ: str
) -> tuple[OutboxSink, DeliveryWorker]:
    config = parse_config("notifications:\n" + notifications_yaml, Path("test.yaml"))
    return build_delivery(settings, pool, config, environ=environ, poll_seconds=0.05)


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)


async def count(pool: asyncpg.Pool, sql: str, *args: Any) -> int:
    return int(await pool.fetchval(sql, *args))
