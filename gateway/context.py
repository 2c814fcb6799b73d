"""What every resolver gets: the app's shared state and the caller (a typed Strawberry context)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from gateway.audit import AuditLog
from gateway.auth import KeyStore, Principal, Role
from gateway.clients import ServiceClients
from gateway.errors import forbidden, unauthenticated
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


@dataclass
class Context:
    state: AppState
    request: Request | WebSocket
    response: Response | WebSocket | None
    principal: Principal | None = None
    connection_params: dict[str, Any] | None = field(default=None)

    @property
    def client_ip(self) -> str | None:
        return self.request.client.host if self.request.client else None

    def require(self, role: Role = Role.VIEWER) -> Principal:
        """The caller, who must hold at least `role`; raises UNAUTHENTICATED / FORBIDDEN."""
        if self.principal is None:
            raise unauthenticated()
        if not self.principal.role.allows(role):
            raise forbidden(f"this action needs the {role.value} role; your key '{self.principal.name}' is a "
                            f"{self.principal.role.value}")  # fmt: skip
        return self.principal


Info = StrawberryInfo[Context, None]
