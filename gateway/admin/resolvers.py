"""Admin queries and mutations: who am I, API keys, audit log."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from gateway.admin import types as t
from gateway.auth import ApiKeyRecord, Role
from gateway.context import Info
from gateway.errors import forbidden, gql_error, translate_domain_errors

MAX_AUDIT = 1000


def _key(record: ApiKeyRecord) -> t.ApiKey:
    return t.ApiKey(
        id=record.id,  # type: ignore[arg-type]
        name=record.name,
        role=t.Role(record.role.value),
        tenant_id=record.tenant_id,
        created_at=record.created_at,
        created_by=record.created_by,
        last_used_at=record.last_used_at,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
    )


@strawberry.type
class AdminQueries:
    @strawberry.field(description="The caller's own key: name, role and tenant scope")
    async def viewer(self, info: Info) -> t.Viewer:
        p = info.context.require()
        return t.Viewer(key_id=p.key_id, name=p.name, role=t.Role(p.role.value), tenant_id=p.tenant_id)

    @strawberry.field(description="API keys (admin); a tenant-scoped admin sees its tenant's keys only")
    async def api_keys(self, info: Info) -> list[t.ApiKey]:
        principal = info.context.require(Role.ADMIN)
        return [_key(r) for r in await info.context.state.keys.list(principal.tenant_id)]

    @strawberry.field(
        description="The newest audit entries, optionally for one target (admin); a tenant-scoped admin reads "
        "only entries made by its tenant's keys or about its tenant's jobs and keys"
    )
    async def audit_log(self, info: Info, target: str | None = None, limit: int = 100) -> list[t.AuditEntry]:
        principal = info.context.require(Role.ADMIN)
        if not 1 <= limit <= MAX_AUDIT:
            raise gql_error(f"limit must be between 1 and {MAX_AUDIT}", "BAD_USER_INPUT")
        entries = await info.context.state.audit.recent(limit, target, principal.tenant_id)
        return [
            t.AuditEntry(
                id=str(e.id),  # type: ignore[arg-type]
                at=e.at,
                key_id=e.key_id,
                key_name=e.key_name,
                role=e.role,
                tenant_id=e.tenant_id,
                action=e.action,
                target=e.target,
                arguments=JSON(e.arguments),
                outcome=e.outcome,
                error_code=e.error_code,
                target_tenant_id=e.target_tenant_id,
                request_id=e.request_id,
                client_ip=e.client_ip,
                trace_id=e.trace_id,
            )
            for e in entries
        ]


@strawberry.type
class AdminMutations:
    @strawberry.mutation(
        description="Create an API key (admin). The key is returned once. A tenant-scoped admin creates keys of "
        "its own tenant only (its tenant is the default); no key is ever given a role above its creator's."
    )
    async def create_api_key(
        self, info: Info, name: str, role: t.Role, tenant_id: str | None = None
    ) -> t.CreatedApiKey:
        ctx = info.context
        arguments = {"name": name, "role": role.value, "tenantId": tenant_id}
        async with ctx.audited("createApiKey", name, arguments) as audit:
            principal = ctx.require(Role.ADMIN)
            wanted = Role(role.value)
            if not principal.role.allows(wanted):
                raise forbidden(f"your key is a {principal.role.value}; it cannot create a {wanted.value} key")
            tenant = tenant_id if tenant_id is not None else principal.tenant_id
            if principal.tenant_id is not None and tenant != principal.tenant_id:
                raise forbidden(f"your key is limited to tenant {principal.tenant_id}; it creates keys of that "
                                "tenant only")  # fmt: skip
            audit.target_tenant = tenant
            with translate_domain_errors():
                plain, record = await ctx.state.keys.create(
                    name, wanted, tenant, created_by=f"{principal.name} ({principal.key_id})"
                )
        return t.CreatedApiKey(key=plain, api_key=_key(record))

    @strawberry.mutation(
        description="Revoke an API key (admin); it stops working at once, open subscriptions included. "
        "A tenant-scoped admin revokes its tenant's keys only."
    )
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> t.ApiKey:
        ctx = info.context
        async with ctx.audited("revokeApiKey", str(id)) as audit:
            principal = ctx.require(Role.ADMIN)
            if str(id) == principal.key_id:
                raise gql_error("you cannot revoke the key you are using", "FAILED_PRECONDITION")
            with translate_domain_errors():
                record = await ctx.state.keys.revoke(str(id), principal.tenant_id)
            audit.target_tenant = record.tenant_id
            await ctx.state.sockets.announce(record.id)
        return _key(record)
