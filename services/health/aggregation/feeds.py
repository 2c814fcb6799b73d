"""Protobuf ⇄ domain for what the aggregation consumes and announces.

In: `ServiceCheckState` (the probes' check-states stream) and `ResourceMetrics` (ResourceMetricsUpdated
events). Out: `HealthStatusChanged` events. A payload that cannot be decoded raises `UndecodableFeed`,
which the consumer acknowledges and counts instead of retrying it forever.
"""

from __future__ import annotations

from datetime import UTC, datetime

from b2x.monitoring.v1 import events_pb2, health_pb2, probes_pb2
from google.protobuf.message import DecodeError

from services.common.protoconv import ProtoEnum, bare_name, from_timestamp, set_timestamp
from services.health.domain import ResourceSnapshot, StatusChange
from services.health.registry.convert import SERVICE_STATUS
from services.health.status import BreakerState, CheckState, SpeedRating

# The probes may know values this service does not (a newer sender): those read as "not given".
_SPEED = ProtoEnum(SpeedRating, probes_pb2.SpeedRating, "speed rating")
_BREAKER = ProtoEnum(BreakerState, probes_pb2.CircuitBreakerState, "circuit breaker state")


class UndecodableFeed(ValueError):
    """A stream entry or event that is not what the probes send."""


def check_state_from_bytes(payload: bytes) -> CheckState:
    """A serialized `ServiceCheckState` as the status rules read it."""
    msg = probes_pb2.ServiceCheckState()
    try:
        msg.ParseFromString(payload)
    except DecodeError as error:
        raise UndecodableFeed(f"not a ServiceCheckState: {error}") from None
    checked_at = from_timestamp(msg.checked_at)
    if not msg.service_id or checked_at is None:
        raise UndecodableFeed("a check state without service_id or checked_at")
    return CheckState(
        service_id=msg.service_id,
        slug=msg.service_slug,
        checked_at=checked_at,
        success=msg.success,
        latency_ms=max(msg.total_latency_ms, 0.0),
        degraded=msg.degraded,
        summary=msg.summary,
        speed=_SPEED.get(msg.speed_rating),
        consecutive_failures=max(msg.consecutive_failures, 0),
        breaker=_BREAKER.get(msg.circuit_breaker),
        error_type=bare_name(probes_pb2.CommunicationErrorType, msg.error_type),
        tls_not_after=from_timestamp(msg.tls_not_after) if msg.HasField("tls_not_after") else None,
    )


def snapshot_from_proto(msg: health_pb2.ResourceMetrics, received_at: datetime | None = None) -> ResourceSnapshot:
    """A ResourceMetrics message; an unset timestamp means "when it was received"."""
    return ResourceSnapshot(
        sampled_at=from_timestamp(msg.timestamp) or received_at or datetime.now(UTC),
        cpu_percent=msg.cpu_percent,
        cpu_average=msg.cpu_average,
        cpu_peak=msg.cpu_peak,
        memory_used_bytes=msg.memory_used_bytes,
        memory_total_bytes=msg.memory_total_bytes,
        memory_percent=msg.memory_percent,
        memory_peak_bytes=msg.memory_peak_bytes,
        connection_pool_active=msg.connection_pool_active,
        connection_pool_total=msg.connection_pool_total,
        thread_count=msg.thread_count,
        queue_depth=msg.queue_depth,
        processing_rate_per_minute=msg.processing_rate_per_minute,
    )


def status_change_to_proto(change: StatusChange) -> events_pb2.HealthStatusChanged:
    msg = events_pb2.HealthStatusChanged(
        service_id=change.service_id,
        component=change.name,
        status=SERVICE_STATUS.to_proto(change.status),
        previous_status=SERVICE_STATUS.to_proto(change.previous_status),
        reason=change.reason,
        service_slug=change.slug,
    )
    set_timestamp(msg.changed_at, change.changed_at)
    return msg
