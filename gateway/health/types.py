"""GraphQL types of system health (REQ-001 HealthSummary, HealthComponent, health history)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from b2x.monitoring.v1 import health_pb2

from gateway.enums import mirror
from gateway.registry.types import ServiceStatus, ServiceType

HealthHistoryBucket = strawberry.enum(mirror("HealthHistoryBucket", health_pb2.HealthHistoryBucket))


@strawberry.type(description="One connected service in the health overview")
class HealthComponent:
    service_id: strawberry.ID
    slug: str
    name: str
    type: ServiceType | None
    status: ServiceStatus | None
    status_reason: str
    average_latency_ms: float | None = strawberry.field(description="Successful checks of the last 24 h")
    uptime_percent: float | None = strawberry.field(description="Checks of the last 7 days")
    cpu_percent: float | None
    memory_percent: float | None
    last_checked: datetime | None
    last_successful: datetime | None
    status_changed_at: datetime | None
    enabled: bool


@strawberry.type(description="The whole system at a glance (the seed's management dashboard and `b2c monitor health`)")
class HealthSummary:
    overall_status: ServiceStatus | None
    overall_reason: str
    online_count: int
    degraded_count: int
    offline_count: int
    unknown_count: int
    disabled_count: int
    components: list[HealthComponent]
    active_jobs: int | None = strawberry.field(
        description="Jobs running now (for the caller's tenant scope); null while the jobs service is unreachable"
    )
    failed_jobs_24h: int | None = strawberry.field(description="Jobs that failed in the last 24 hours")
    active_alerts: int | None = strawberry.field(
        description="Resource alerts firing now; null while the probes service is unreachable"
    )
    generated_at: datetime | None


@strawberry.type
class HealthHistoryPoint:
    bucket_start: datetime | None
    checks: int
    failures: int
    availability_percent: float | None
    average_latency_ms: float | None


@strawberry.type(description="Availability over time from hourly rollups (REQ-001 GET /health/history)")
class HealthHistory:
    service_id: strawberry.ID | None
    service_slug: str
    bucket: HealthHistoryBucket | None  # type: ignore[valid-type]
    points: list[HealthHistoryPoint]
    total: HealthHistoryPoint | None


@strawberry.type(description="SignalR HealthStatusChanged(component, status)")
class HealthStatusEvent:
    service_id: strawberry.ID
    service_slug: str
    component: str
    status: ServiceStatus | None
    previous_status: ServiceStatus | None
    reason: str
    changed_at: datetime | None
