"""Domain ⇄ protobuf for the health summary and history. Used by the gRPC API only."""

from __future__ import annotations

from datetime import datetime

from b2x.monitoring.v1 import health_pb2

from services.common.protoconv import ProtoEnum, set_timestamp
from services.health.domain import ServiceStatus
from services.health.overview.history import HistoryBucket, Tally
from services.health.overview.service import HealthHistory
from services.health.overview.summary import Component, HealthSummary
from services.health.registry.convert import SERVICE_STATUS, SERVICE_TYPE

HISTORY_BUCKET = ProtoEnum(HistoryBucket, health_pb2.HealthHistoryBucket, "history bucket")


def component_to_proto(c: Component) -> health_pb2.HealthComponent:
    msg = health_pb2.HealthComponent(
        service_id=c.service_id,
        slug=c.slug,
        name=c.name,
        type=SERVICE_TYPE.to_proto(c.type),
        status=SERVICE_STATUS.to_proto(c.status),
        status_reason=c.status_reason,
        enabled=c.enabled,
    )
    for field, value in (
        ("average_latency_ms", c.average_latency_ms),
        ("uptime_percent", c.uptime_percent),
        ("cpu_percent", c.cpu_percent),
        ("memory_percent", c.memory_percent),
    ):
        if value is not None:
            setattr(msg, field, value)
    set_timestamp(msg.last_checked, c.last_checked)
    set_timestamp(msg.last_successful, c.last_successful)
    set_timestamp(msg.status_changed_at, c.status_changed_at)
    return msg


def summary_to_proto(s: HealthSummary) -> health_pb2.GetHealthSummaryResponse:
    msg = health_pb2.GetHealthSummaryResponse(
        overall_status=SERVICE_STATUS.to_proto(s.overall_status),
        overall_reason=s.overall_reason,
        online_count=s.counts[ServiceStatus.ONLINE],
        degraded_count=s.counts[ServiceStatus.DEGRADED],
        offline_count=s.counts[ServiceStatus.OFFLINE],
        unknown_count=s.counts[ServiceStatus.UNKNOWN],
        disabled_count=s.disabled,
        components=[component_to_proto(c) for c in s.components],
    )
    set_timestamp(msg.generated_at, s.generated_at)
    return msg


def point_to_proto(bucket_start: datetime | None, tally: Tally) -> health_pb2.HealthHistoryPoint:
    msg = health_pb2.HealthHistoryPoint(checks=tally.checks, failures=tally.failures)
    set_timestamp(msg.bucket_start, bucket_start)
    if (availability := tally.availability_percent) is not None:
        msg.availability_percent = availability
    if (latency := tally.average_latency_ms) is not None:
        msg.average_latency_ms = latency
    return msg


def history_to_proto(h: HealthHistory) -> health_pb2.GetHealthHistoryResponse:
    points = h.points
    return health_pb2.GetHealthHistoryResponse(
        service_id=h.service.id if h.service else "",
        service_slug=h.service.slug if h.service else "",
        bucket=HISTORY_BUCKET.to_proto(h.bucket),
        points=[point_to_proto(p.bucket_start, p.tally) for p in points],
        total=point_to_proto(points[0].bucket_start if points else None, h.total),
    )
