"""Domain ⇄ protobuf for the registry. Used by the gRPC API; its enum tables by every health converter.

Two ways out: `service_to_proto` (every public read; endpoint and header secrets masked) and
`definition_to_proto(..., raw)` which only ListProbeTargets uses with the raw definition.
"""

from __future__ import annotations

from collections.abc import Iterable

from b2x.monitoring.v1 import common_pb2, health_pb2

from services.common.protoconv import ProtoEnum, set_timestamp
from services.health.domain import (
    DEFAULT_MAX_RETRIES,
    ConnectedService,
    ProbeKind,
    ProbeOptions,
    ResourceSnapshot,
    ServiceDefinition,
    ServiceStatus,
    ServiceType,
    Source,
    Thresholds,
    visible_endpoint,
    visible_headers,
)
from services.health.registry.rules import define_service

SERVICE_TYPE = ProtoEnum(ServiceType, common_pb2.ServiceType, "service type")
SERVICE_STATUS = ProtoEnum(ServiceStatus, common_pb2.ServiceStatus, "service status")
PROBE_KIND = ProtoEnum(ProbeKind, health_pb2.ProbeKind, "probe kind", aliases={"GRPC": "GRPC_HEALTH"})
SOURCE = ProtoEnum(Source, health_pb2.ServiceSource, "service source")


def statuses_from_proto(values: Iterable[int]) -> list[ServiceStatus]:
    """Filter values; UNSPECIFIED is refused rather than silently matching nothing."""
    return [SERVICE_STATUS.require(v, "statuses") for v in values]


def types_from_proto(values: Iterable[int]) -> list[ServiceType]:
    return [SERVICE_TYPE.require(v, "types") for v in values]


def definition_from_proto(msg: health_pb2.ServiceDefinition) -> ServiceDefinition:
    """Validate a RegisterService definition; zero values mean "the default"."""
    service_type = SERVICE_TYPE.from_proto(msg.type, "type")
    probe_kind = PROBE_KIND.from_proto(msg.probe_kind, "probe_kind")
    thresholds = None
    if msg.HasField("thresholds"):
        t = msg.thresholds
        thresholds = Thresholds(
            cpu_percent=t.cpu_percent,
            cpu_sustained_seconds=t.cpu_sustained_seconds,
            memory_percent=t.memory_percent,
            memory_critical_percent=t.memory_critical_percent,
            pool_percent=t.pool_percent,
            queue_depth=t.queue_depth,
        )
    p = msg.probe
    probe = ProbeOptions(
        http_method=p.http_method or "GET",
        expected_statuses=tuple(p.expected_statuses),
        body_contains=p.body_contains,
        headers=dict(p.headers),
        tls_skip_verify=p.tls_skip_verify,
        ca_file=p.ca_file,
        timeout_seconds=p.timeout_seconds,
        max_retries=p.max_retries if p.HasField("max_retries") else DEFAULT_MAX_RETRIES,
        grpc_service=p.grpc_service,
        metrics_url=p.metrics_url,
        process_name=p.process_name,
        process_pid=p.process_pid,
    )
    return define_service(
        slug=msg.slug,
        name=msg.name,
        type=service_type,
        endpoint=msg.endpoint,
        probe_kind=probe_kind,
        description=msg.description,
        labels=dict(msg.labels),
        check_interval_seconds=msg.check_interval_seconds,
        thresholds=thresholds,
        enabled=msg.enabled if msg.HasField("enabled") else True,
        probe=probe,
    )


def _thresholds_to_proto(t: Thresholds) -> health_pb2.ResourceThresholds:
    return health_pb2.ResourceThresholds(
        cpu_percent=t.cpu_percent,
        cpu_sustained_seconds=t.cpu_sustained_seconds,
        memory_percent=t.memory_percent,
        memory_critical_percent=t.memory_critical_percent,
        pool_percent=t.pool_percent,
        queue_depth=t.queue_depth,
    )


def _probe_to_proto(p: ProbeOptions, *, raw: bool) -> health_pb2.ProbeOptions:
    return health_pb2.ProbeOptions(
        http_method=p.http_method,
        expected_statuses=list(p.expected_statuses),
        body_contains=p.body_contains,
        headers=dict(p.headers) if raw else visible_headers(p.headers),
        tls_skip_verify=p.tls_skip_verify,
        ca_file=p.ca_file,
        timeout_seconds=p.timeout_seconds,
        max_retries=p.max_retries,
        grpc_service=p.grpc_service,
        metrics_url=p.metrics_url if raw else visible_endpoint(p.metrics_url),
        process_name=p.process_name,
        process_pid=p.process_pid,
    )


def definition_to_proto(d: ServiceDefinition) -> health_pb2.ServiceDefinition:
    """The definition exactly as configured, secrets included: for probe agents (ListProbeTargets) only."""
    return health_pb2.ServiceDefinition(
        slug=d.slug,
        name=d.name,
        type=SERVICE_TYPE.to_proto(d.type),
        endpoint=d.endpoint,
        probe_kind=PROBE_KIND.to_proto(d.probe_kind),
        description=d.description,
        labels=dict(d.labels),
        check_interval_seconds=d.check_interval_seconds,
        thresholds=_thresholds_to_proto(d.thresholds),
        enabled=d.enabled,
        probe=_probe_to_proto(d.probe, raw=True),
    )


def snapshot_to_proto(s: ResourceSnapshot) -> health_pb2.ResourceMetrics:
    msg = health_pb2.ResourceMetrics(
        cpu_percent=s.cpu_percent,
        cpu_average=s.cpu_average,
        cpu_peak=s.cpu_peak,
        memory_used_bytes=s.memory_used_bytes,
        memory_total_bytes=s.memory_total_bytes,
        memory_percent=s.memory_percent,
        memory_peak_bytes=s.memory_peak_bytes,
        connection_pool_active=s.connection_pool_active,
        connection_pool_total=s.connection_pool_total,
        thread_count=s.thread_count,
        queue_depth=s.queue_depth,
        processing_rate_per_minute=s.processing_rate_per_minute,
    )
    set_timestamp(msg.timestamp, s.sampled_at)
    return msg


def service_to_proto(s: ConnectedService) -> health_pb2.ConnectedService:
    """The public view of a service: endpoint sanitized, secret header values masked."""
    d = s.definition
    msg = health_pb2.ConnectedService(
        id=s.id,
        slug=d.slug,
        name=d.name,
        type=SERVICE_TYPE.to_proto(d.type),
        endpoint=visible_endpoint(d.endpoint),
        probe_kind=PROBE_KIND.to_proto(d.probe_kind),
        status=SERVICE_STATUS.to_proto(s.status),
        status_reason=s.status_reason,
        average_latency_ms=s.average_latency_ms or 0.0,
        uptime_percent=s.uptime_percent or 0.0,
        description=d.description,
        labels=dict(d.labels),
        check_interval_seconds=d.check_interval_seconds,
        thresholds=_thresholds_to_proto(d.thresholds),
        enabled=d.enabled,
        probe=_probe_to_proto(d.probe, raw=False),
        source=SOURCE.to_proto(s.source),
    )
    set_timestamp(msg.last_checked, s.last_checked)
    set_timestamp(msg.last_successful, s.last_successful)
    set_timestamp(msg.created_at, s.created_at)
    set_timestamp(msg.updated_at, s.updated_at)
    set_timestamp(msg.status_changed_at, s.status_changed_at)
    if s.resources is not None:
        msg.resources.CopyFrom(snapshot_to_proto(s.resources))
    return msg
