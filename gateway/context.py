"""What every resolver gets: the app's shared state and the caller (a typed Strawberry context)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from gateway.audit import AuditLog, AuditScope
from gateway.auth import KeyStore, Principal, Role
from gateway.clients import ServiceClients
from gateway.errors import forbidden, unauthenticated
from gateway.limits import RequestLimiter
from gateway.revocations import SocketRegistry
from gateway.settings import GatewaySettings
from services.common.events import EventBus


@dataclass
class AppState:
    """Resources owned by the app's lifespan and shared by all requests."""

    settings: GatewaySettings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    bus: EventBus
    clients: ServiceClients
    keys: KeyStore
    audit: AuditLog
    limiter: RequestLimiter
    sockets: SocketRegistry


@dataclass
class Context:
    state: AppState
    request: Request | WebSocket
    response: Response | WebSocket | None
    principal: Principal | None = None
    connection_params: dict[str, Any] | None = field(default=None)
    api_key: str | None = None  # a websocket's key, verified again on every operation

    @property
    def client_ip(self) -> str | None:
        """The caller's address; X-Forwarded-For counts only from B2X_TRUSTED_PROXIES (uvicorn applies it)."""
        return self.request.client.host if self.request.client else None

    @property
    def request_id(self) -> str | None:
        """The id of the HTTP request or websocket operation, as bound for the log."""
        value = structlog.contextvars.get_contextvars().get("request_id")
        return str(value) if value else None

    def audited(
        self, action: str, target: str | None, arguments: dict[str, Any] | None = None
    ) -> AbstractAsyncContextManager[AuditScope]:
        """Write the mutation inside the block to the audit log, with its outcome, whatever happens."""
        return self.state.audit.action(
            self.require(), action, target, arguments or {}, client_ip=self.client_ip, request_id=self.request_id
        )

    def require(self, role: Role = Role.VIEWER) -> Principal:
        """The caller, who must hold at least `role`; raises UNAUTHENTICATED / FORBIDDEN."""
        if self.principal is None:
            raise unauthenticated()
        if not self.principal.role.allows(role):
            raise forbidden(f"this action needs the {role.value} role; your key '{self.principal.name}' is a "
                            f"{self.principal.role.value}")  # fmt: skip
        return self.principal


Info = StrawberryInfo[Context, None]
