"""health.proto → GraphQL types for connected services."""

from __future__ import annotations

from b2x.monitoring.v1 import common_pb2, health_pb2
from strawberry.scalars import JSON

from gateway.enums import from_proto
from gateway.registry import types as t
from services.common.protoconv import from_timestamp


def resources_to_gql(m: health_pb2.ResourceMetrics) -> t.ResourceMetrics:
    return t.ResourceMetrics(
        cpu_percent=m.cpu_percent, cpu_average=m.cpu_average, cpu_peak=m.cpu_peak,
        memory_used_bytes=float(m.memory_used_bytes), memory_total_bytes=float(m.memory_total_bytes),
        memory_percent=m.memory_percent, memory_peak_bytes=float(m.memory_peak_bytes),
        connection_pool_active=m.connection_pool_active, connection_pool_total=m.connection_pool_total,
        thread_count=m.thread_count, queue_depth=m.queue_depth,
        processing_rate_per_minute=m.processing_rate_per_minute, timestamp=from_timestamp(m.timestamp),
    )  # fmt: skip


def thresholds_to_gql(th: health_pb2.ResourceThresholds) -> t.ResourceThresholds:
    return t.ResourceThresholds(
        cpu_percent=th.cpu_percent, cpu_sustained_seconds=th.cpu_sustained_seconds, memory_percent=th.memory_percent,
        memory_critical_percent=th.memory_critical_percent, pool_percent=th.pool_percent, queue_depth=th.queue_depth,
    )  # fmt: skip


def service_to_gql(s: health_pb2.ConnectedService) -> t.ConnectedService:
    return t.ConnectedService(
        id=s.id,  # type: ignore[arg-type]
        slug=s.slug,
        name=s.name,
        type=from_proto(t.ServiceType, common_pb2.ServiceType, s.type),
        endpoint=s.endpoint,
        probe_kind=from_proto(t.ProbeKind, health_pb2.ProbeKind, s.probe_kind),
        status=from_proto(t.ServiceStatus, common_pb2.ServiceStatus, s.status),
        status_reason=s.status_reason,
        last_checked=from_timestamp(s.last_checked),
        last_successful=from_timestamp(s.last_successful),
        average_latency_ms=s.average_latency_ms,
        uptime_percent=s.uptime_percent,
        resources=resources_to_gql(s.resources) if s.HasField("resources") else None,
        description=s.description,
        labels=JSON(dict(s.labels)),
        check_interval_seconds=s.check_interval_seconds,
        thresholds=thresholds_to_gql(s.thresholds) if s.HasField("thresholds") else None,
        enabled=s.enabled,
        source=from_proto(t.ServiceSource, health_pb2.ServiceSource, s.source),
        created_at=from_timestamp(s.created_at),
        updated_at=from_timestamp(s.updated_at),
    )
