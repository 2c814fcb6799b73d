"""GraphQL types of connected services (REQ-001 ConnectedService, ResourceMetrics)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from b2x.monitoring.v1 import common_pb2, health_pb2
from strawberry.scalars import JSON

from gateway.enums import mirror

ServiceType = strawberry.enum(mirror("ServiceType", common_pb2.ServiceType), description="ERP, PIM, CRM, …")
ServiceStatus = strawberry.enum(mirror("ServiceStatus", common_pb2.ServiceStatus), description="Availability")
ServiceSource = strawberry.enum(
    mirror("ServiceSource", health_pb2.ServiceSource),
    description="FILE: managed by the config file; API: by the API; SELF: B2X itself (B2X_HEALTH_SELF_MONITORING)",
)
ProbeKind = strawberry.enum(mirror("ProbeKind", health_pb2.ProbeKind), description="How the service is checked")


@strawberry.type(description="REQ-001 ResourceMetrics")
class ResourceMetrics:
    cpu_percent: float
    cpu_average: float
    cpu_peak: float
    memory_used_bytes: float
    memory_total_bytes: float
    memory_percent: float
    memory_peak_bytes: float
    connection_pool_active: int
    connection_pool_total: int
    thread_count: int
    queue_depth: int
    processing_rate_per_minute: float
    timestamp: datetime | None


@strawberry.type(description="Limits above which a resource alert fires; 0 = off")
class ResourceThresholds:
    cpu_percent: float
    cpu_sustained_seconds: int
    memory_percent: float
    memory_critical_percent: float
    pool_percent: float
    queue_depth: int


@strawberry.type(description="A connected service (REQ-001 ConnectedService)")
class ConnectedService:
    id: strawberry.ID
    slug: str
    name: str
    type: ServiceType | None  # type: ignore[valid-type]
    endpoint: str = strawberry.field(description="Sanitized: no credentials, no secret query values")
    probe_kind: ProbeKind | None  # type: ignore[valid-type]
    status: ServiceStatus | None  # type: ignore[valid-type]
    status_reason: str
    last_checked: datetime | None
    last_successful: datetime | None
    average_latency_ms: float
    uptime_percent: float
    resources: ResourceMetrics | None
    description: str
    labels: JSON
    check_interval_seconds: int
    thresholds: ResourceThresholds | None
    enabled: bool
    source: ServiceSource | None  # type: ignore[valid-type]
    created_at: datetime | None
    updated_at: datetime | None
