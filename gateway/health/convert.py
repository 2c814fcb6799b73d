"""health.proto → GraphQL types for the health summary, history and status changes."""

from __future__ import annotations

from b2x.monitoring.v1 import common_pb2, events_pb2, health_pb2

from gateway.enums import from_proto
from gateway.health import types as t
from gateway.registry.types import ServiceStatus, ServiceType
from services.common.protoconv import from_timestamp


def _opt(message: object, field: str) -> float | None:
    return float(getattr(message, field)) if message.HasField(field) else None  # type: ignore[attr-defined]


def point_to_gql(p: health_pb2.HealthHistoryPoint) -> t.HealthHistoryPoint:
    return t.HealthHistoryPoint(
        bucket_start=from_timestamp(p.bucket_start), checks=p.checks, failures=p.failures,
        availability_percent=_opt(p, "availability_percent"), average_latency_ms=_opt(p, "average_latency_ms"),
    )  # fmt: skip


def component_to_gql(c: health_pb2.HealthComponent) -> t.HealthComponent:
    return t.HealthComponent(
        service_id=c.service_id, slug=c.slug, name=c.name,  # type: ignore[arg-type]
        type=from_proto(ServiceType, common_pb2.ServiceType, c.type),
        status=from_proto(ServiceStatus, common_pb2.ServiceStatus, c.status), status_reason=c.status_reason,
        average_latency_ms=_opt(c, "average_latency_ms"), uptime_percent=_opt(c, "uptime_percent"),
        cpu_percent=_opt(c, "cpu_percent"), memory_percent=_opt(c, "memory_percent"),
        last_checked=from_timestamp(c.last_checked), last_successful=from_timestamp(c.last_successful),
        status_changed_at=from_timestamp(c.status_changed_at), enabled=c.enabled,
    )  # fmt: skip


def summary_to_gql(
    summary: health_pb2.GetHealthSummaryResponse,
    running: int | None,
    failed: int | None,
    alerts: int | None,
) -> t.HealthSummary:
    return t.HealthSummary(
        overall_status=from_proto(ServiceStatus, common_pb2.ServiceStatus, summary.overall_status),
        overall_reason=summary.overall_reason, online_count=summary.online_count,
        degraded_count=summary.degraded_count, offline_count=summary.offline_count,
        unknown_count=summary.unknown_count, disabled_count=summary.disabled_count,
        components=[component_to_gql(c) for c in summary.components], active_jobs=running, failed_jobs_24h=failed,
        active_alerts=alerts,
        generated_at=from_timestamp(summary.generated_at),
    )  # fmt: skip


def history_to_gql(r: health_pb2.GetHealthHistoryResponse) -> t.HealthHistory:
    return t.HealthHistory(
        service_id=r.service_id or None,  # type: ignore[arg-type]
        service_slug=r.service_slug,
        bucket=from_proto(t.HealthHistoryBucket, health_pb2.HealthHistoryBucket, r.bucket),
        points=[point_to_gql(p) for p in r.points],
        total=point_to_gql(r.total) if r.HasField("total") else None,
    )


def status_change_to_gql(change: events_pb2.HealthStatusChanged) -> t.HealthStatusEvent:
    return t.HealthStatusEvent(
        service_id=change.service_id, service_slug=change.service_slug,  # type: ignore[arg-type]
        component=change.component,
        status=from_proto(ServiceStatus, common_pb2.ServiceStatus, change.status),
        previous_status=from_proto(ServiceStatus, common_pb2.ServiceStatus, change.previous_status),
        reason=change.reason, changed_at=from_timestamp(change.changed_at),
    )  # fmt: skip
