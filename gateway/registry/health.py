"""System health: the summary (REQ-001 GET /health/summary, /health/components), history, live changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import strawberry
from b2x.monitoring.v1 import common_pb2, health_pb2, jobs_pb2, probes_pb2
from graphql import GraphQLError

from gateway.context import Context, Info
from gateway.enums import from_proto, mirror, to_proto
from gateway.registry.types import ServiceStatus, ServiceType
from services.common.events import Resync, Topic
from services.common.protoconv import from_timestamp, set_timestamp

T = TypeVar("T")
HealthHistoryBucket = strawberry.enum(mirror("HealthHistoryBucket", health_pb2.HealthHistoryBucket))


def _opt(message: object, field: str) -> float | None:
    return float(getattr(message, field)) if message.HasField(field) else None  # type: ignore[attr-defined]


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


def _point(p: health_pb2.HealthHistoryPoint) -> HealthHistoryPoint:
    return HealthHistoryPoint(
        bucket_start=from_timestamp(p.bucket_start), checks=p.checks, failures=p.failures,
        availability_percent=_opt(p, "availability_percent"), average_latency_ms=_opt(p, "average_latency_ms"),
    )  # fmt: skip


def _component(c: health_pb2.HealthComponent) -> HealthComponent:
    return HealthComponent(
        service_id=c.service_id, slug=c.slug, name=c.name,  # type: ignore[arg-type]
        type=from_proto(ServiceType, common_pb2.ServiceType, c.type),
        status=from_proto(ServiceStatus, common_pb2.ServiceStatus, c.status), status_reason=c.status_reason,
        average_latency_ms=_opt(c, "average_latency_ms"), uptime_percent=_opt(c, "uptime_percent"),
        cpu_percent=_opt(c, "cpu_percent"), memory_percent=_opt(c, "memory_percent"),
        last_checked=from_timestamp(c.last_checked), last_successful=from_timestamp(c.last_successful),
        status_changed_at=from_timestamp(c.status_changed_at), enabled=c.enabled,
    )  # fmt: skip


async def _job_counts(ctx: Context) -> tuple[int, int]:
    """(running now, failed in the last 24 h), within the caller's tenant scope."""
    clients = ctx.state.clients
    tenants = [ctx.principal.tenant_id] if ctx.principal and ctx.principal.tenant_id else []
    running = jobs_pb2.ListJobsRequest(
        filter=jobs_pb2.JobFilter(statuses=[jobs_pb2.JOB_STATUS_RUNNING], tenant_ids=tenants),
        page=common_pb2.PageRequest(page_size=1),
    )
    failed = jobs_pb2.ListJobsRequest(
        filter=jobs_pb2.JobFilter(statuses=[jobs_pb2.JOB_STATUS_FAILED], tenant_ids=tenants),
        page=common_pb2.PageRequest(page_size=1),
    )
    set_timestamp(failed.filter.updated.start, datetime.now(UTC) - timedelta(hours=24))
    a, b = await asyncio.gather(
        clients.call(clients.jobs, clients.jobs.stub.ListJobs, running),
        clients.call(clients.jobs, clients.jobs.stub.ListJobs, failed),
    )
    return int(a.page_info.total_count), int(b.page_info.total_count)


async def _active_alerts(ctx: Context) -> int:
    clients = ctx.state.clients
    response = await clients.call(
        clients.probes,
        clients.probes.stub.ListResourceAlerts,
        probes_pb2.ListResourceAlertsRequest(active_only=True, page=common_pb2.PageRequest(page_size=1)),
    )
    return int(response.page_info.total_count)


async def _unless_unavailable(work: Awaitable[T]) -> T | None:
    """The result, or None when the service behind it is unreachable (other errors still surface)."""
    try:
        return await work
    except GraphQLError as error:
        if (error.extensions or {}).get("code") != "SERVICE_UNAVAILABLE":
            raise
        return None


@strawberry.type
class HealthQueries:
    @strawberry.field(description="Overall health, per-service components, running/failed jobs and active alerts")
    async def health_summary(self, info: Info) -> HealthSummary:
        ctx = info.context
        ctx.require()
        clients = ctx.state.clients
        # The health view must survive a jobs or probes outage: their figures are then null, not an error.
        summary, jobs, alerts = await asyncio.gather(
            clients.call(clients.health, clients.health.stub.GetHealthSummary, health_pb2.GetHealthSummaryRequest()),
            _unless_unavailable(_job_counts(ctx)),
            _unless_unavailable(_active_alerts(ctx)),
        )
        running, failed = jobs if jobs is not None else (None, None)
        return HealthSummary(
            overall_status=from_proto(ServiceStatus, common_pb2.ServiceStatus, summary.overall_status),
            overall_reason=summary.overall_reason, online_count=summary.online_count,
            degraded_count=summary.degraded_count, offline_count=summary.offline_count,
            unknown_count=summary.unknown_count, disabled_count=summary.disabled_count,
            components=[_component(c) for c in summary.components], active_jobs=running, failed_jobs_24h=failed,
            active_alerts=alerts,
            generated_at=from_timestamp(summary.generated_at),
        )  # fmt: skip

    @strawberry.field(description="Availability and latency over time, for one service or all (1 h / 24 h / 7 d)")
    async def health_history(
        self,
        info: Info,
        service: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket: HealthHistoryBucket | None = None,  # type: ignore[valid-type]
        time_zone: str | None = None,
    ) -> HealthHistory:
        info.context.require()
        request = health_pb2.GetHealthHistoryRequest(
            service=service or "",
            bucket=to_proto(health_pb2.HealthHistoryBucket, bucket)
            if bucket
            else health_pb2.HEALTH_HISTORY_BUCKET_UNSPECIFIED,
            time_zone=time_zone or "",
        )
        if since or until:
            set_timestamp(request.range.start, since)
            set_timestamp(request.range.end, until)
        clients = info.context.state.clients
        r = await clients.call(clients.health, clients.health.stub.GetHealthHistory, request)
        return HealthHistory(
            service_id=r.service_id or None,
            service_slug=r.service_slug,
            bucket=from_proto(HealthHistoryBucket, health_pb2.HealthHistoryBucket, r.bucket),
            points=[_point(p) for p in r.points],
            total=_point(r.total) if r.HasField("total") else None,
        )


@strawberry.type
class HealthSubscriptions:
    @strawberry.subscription(description="A connected service changed status (SignalR HealthStatusChanged)")
    async def health_status_changed(
        self, info: Info, service_id: strawberry.ID | None = None
    ) -> AsyncGenerator[HealthStatusEvent, None]:
        info.context.require()
        subscription = await info.context.state.bus.subscribe(Topic.HEALTH_STATUS)
        try:
            async for item in subscription:
                if isinstance(item, Resync) or not item.HasField("health_status_changed"):
                    continue
                change = item.health_status_changed
                if service_id and change.service_id != str(service_id):
                    continue
                yield HealthStatusEvent(
                    service_id=change.service_id, service_slug=change.service_slug,  # type: ignore[arg-type]
                    component=change.component,
                    status=from_proto(ServiceStatus, common_pb2.ServiceStatus, change.status),
                    previous_status=from_proto(ServiceStatus, common_pb2.ServiceStatus, change.previous_status),
                    reason=change.reason, changed_at=from_timestamp(change.changed_at),
                )  # fmt: skip
        finally:
            await subscription.close()
