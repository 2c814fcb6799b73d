"""The audit log: who did what, when, and how it ended, for every mutation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from graphql import GraphQLError

from gateway.auth import Principal
from services.common.logging import get_logger
from services.common.masking import mask_value
from services.common.tracing import current_ids

log = get_logger(__name__)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    key_id: str | None
    key_name: str | None
    role: str | None
    tenant_id: str | None
    action: str
    target: str | None
    arguments: dict[str, Any]
    outcome: str
    error_code: str | None
    trace_id: str | None = None


class AuditLog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(
        self,
        principal: Principal | None,
        *,
        action: str,
        target: str | None,
        arguments: dict[str, Any],
        outcome: str,
        error_code: str | None = None,
        client_ip: str | None = None,
        request_id: str | None = None,
    ) -> None:
        trace_id = current_ids()[0] or None
        await self._pool.execute(
            "INSERT INTO gateway.audit_log (key_id, key_name, role, tenant_id, action, target, arguments,"
            " outcome, error_code, client_ip, request_id, trace_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
            principal.key_id if principal else None,
            principal.name if principal else None,
            principal.role.value if principal else None,
            principal.tenant_id if principal else None,
            action,
            target,
            mask_value(arguments),
            outcome,
            error_code,
            client_ip,
            request_id,
            trace_id,
        )
        log.info("audit", action=action, target=target, outcome=outcome, error_code=error_code)

    @asynccontextmanager
    async def action(
        self,
        principal: Principal | None,
        action: str,
        target: str | None,
        arguments: dict[str, Any],
        client_ip: str | None = None,
    ) -> AsyncIterator[None]:
        """Record the action with outcome ok, or error plus its GraphQL code, whatever happens."""
        try:
            yield
        except GraphQLError as error:
            code = (error.extensions or {}).get("code", "INTERNAL_SERVER_ERROR")
            await self.record(
                principal, action=action, target=target, arguments=arguments, outcome="error",
                error_code=str(code), client_ip=client_ip,
            )  # fmt: skip
            raise
        except Exception:
            await self.record(
                principal, action=action, target=target, arguments=arguments, outcome="error",
                error_code="INTERNAL_SERVER_ERROR", client_ip=client_ip,
            )  # fmt: skip
            raise
        await self.record(
            principal, action=action, target=target, arguments=arguments, outcome="ok", client_ip=client_ip
        )

    async def recent(self, limit: int = 100, target: str | None = None) -> list[AuditEntry]:
        rows = await self._pool.fetch(
            "SELECT * FROM gateway.audit_log WHERE ($1::text IS NULL OR target = $1) ORDER BY at DESC, id DESC"
            " LIMIT $2",
            target,
            limit,
        )
        return [
            AuditEntry(
                id=r["id"],
                at=r["at"],
                key_id=r["key_id"],
                key_name=r["key_name"],
                role=r["role"],
                tenant_id=r["tenant_id"],
                action=r["action"],
                target=r["target"],
                arguments=r["arguments"],
                outcome=r["outcome"],
                error_code=r["error_code"],
                trace_id=r["trace_id"],
            )
            for r in rows
        ]
