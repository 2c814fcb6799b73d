"""The audit log: who did what, when, and how it ended, for every mutation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from graphql import GraphQLError

from gateway.auth import Principal
from services.common.logging import get_logger
from services.common.masking import clean_value
from services.common.tracing import current_ids

log = get_logger(__name__)
MAX_TARGET = 300


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
    target_tenant_id: str | None = None
    request_id: str | None = None
    client_ip: str | None = None
    trace_id: str | None = None


@dataclass
class AuditScope:
    """What a mutation learns while it runs and the entry should carry: the tenant its target belongs to,
    and the target's full id when the caller named it by a prefix (the CLI's short ids)."""

    target_tenant: str | None = field(default=None)
    target: str | None = field(default=None)


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
        target_tenant: str | None = None,
    ) -> None:
        """Append one entry; target and arguments are masked and their control characters escaped."""
        clean_target = clean_value(target[:MAX_TARGET]) if target is not None else None
        trace_id = current_ids()[0] or None
        await self._pool.execute(
            "INSERT INTO gateway.audit_log (key_id, key_name, role, tenant_id, action, target, arguments,"
            " outcome, error_code, client_ip, request_id, target_tenant_id, trace_id)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
            principal.key_id if principal else None,
            principal.name if principal else None,
            principal.role.value if principal else None,
            principal.tenant_id if principal else None,
            action,
            clean_target,
            clean_value(arguments),
            outcome,
            error_code,
            client_ip,
            request_id,
            target_tenant,
            trace_id,
        )
        log.info("audit", action=action, target=clean_target, outcome=outcome, error_code=error_code)

    @asynccontextmanager
    async def action(
        self,
        principal: Principal | None,
        action: str,
        target: str | None,
        arguments: dict[str, Any],
        *,
        client_ip: str | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[AuditScope]:
        """Record the action with outcome ok, or error plus its GraphQL code, whatever happens."""
        scope = AuditScope(target_tenant=principal.tenant_id if principal else None)

        async def write(outcome: str, error_code: str | None = None) -> None:
            await self.record(
                principal, action=action, target=scope.target or target, arguments=arguments, outcome=outcome,
                error_code=error_code, client_ip=client_ip, request_id=request_id, target_tenant=scope.target_tenant,
            )  # fmt: skip

        try:
            yield scope
        except GraphQLError as error:
            await write("error", str((error.extensions or {}).get("code", "INTERNAL_SERVER_ERROR")))
            raise
        except Exception:
            await write("error", "INTERNAL_SERVER_ERROR")
            raise
        await write("ok")

    async def recent(self, limit: int = 100, target: str | None = None, tenant: str | None = None) -> list[AuditEntry]:
        """The newest entries; with `tenant`, only those made by that tenant's keys or about its jobs and keys."""
        rows = await self._pool.fetch(
            "SELECT * FROM gateway.audit_log WHERE ($1::text IS NULL OR target = $1)"
            " AND ($3::text IS NULL OR tenant_id = $3 OR target_tenant_id = $3)"
            " ORDER BY at DESC, id DESC LIMIT $2",
            target,
            limit,
            tenant,
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
                target_tenant_id=r["target_tenant_id"],
                request_id=r["request_id"],
                client_ip=r["client_ip"],
                trace_id=r["trace_id"],
            )
            for r in rows
        ]
