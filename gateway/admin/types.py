"""GraphQL types of the admin domain."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON


@strawberry.enum(description="viewer < operator < admin")
class Role(Enum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


@strawberry.type(description="An API key; the secret is never shown after creation")
class ApiKey:
    id: strawberry.ID
    name: str
    role: Role
    tenant_id: str | None
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


@strawberry.type
class CreatedApiKey:
    key: str = strawberry.field(description="The full key. Store it now: it cannot be shown again.")
    api_key: ApiKey


@strawberry.type(description="Who did what, when, and how it ended")
class AuditEntry:
    id: strawberry.ID
    at: datetime
    key_id: str | None
    key_name: str | None
    role: str | None
    tenant_id: str | None
    action: str
    target: str | None
    arguments: JSON
    outcome: str
    error_code: str | None
    target_tenant_id: str | None = strawberry.field(description="The tenant of the job or key acted on")
    request_id: str | None = strawberry.field(description="The id of the request, as in the gateway log")
    client_ip: str | None = strawberry.field(description="The caller's address (behind trusted proxies only: "
                                             "the forwarded one)")  # fmt: skip
    trace_id: str | None = strawberry.field(
        default=None, description="W3C trace id of the request (when tracing is on): its spans in Jaeger"
    )


@strawberry.type(description="The caller, as the gateway sees its API key")
class Viewer:
    key_id: str
    name: str
    role: Role
    tenant_id: str | None
