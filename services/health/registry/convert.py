"""Domain ⇄ protobuf for the registry. Used by the gRPC API only.

Two ways out: `service_to_proto` (every public read; endpoint and header secrets masked) and
`definition_to_proto(..., raw)` which only ListProbeTargets uses with the raw definition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from b2x.monitoring.v1 import common_pb2, health_pb2

from services.common.errors import InvalidArgumentError
from services.common.protoconv import set_timestamp
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

TYPE_TO_PROTO: dict[ServiceType, common_pb2.ServiceType.ValueType] = {
    ServiceType.ERP: common_pb2.SERVICE_TYPE_ERP,
    ServiceType.PIM: common_pb2.SERVICE_TYPE_PIM,
    ServiceType.CRM: common_pb2.SERVICE_TYPE_CRM,
    ServiceType.DATABASE: common_pb2.SERVICE_TYPE_DATABASE,
    ServiceType.MESSAGE_QUEUE: common_pb2.SERVICE_TYPE_MESSAGE_QUEUE,
    ServiceType.CACHE: common_pb2.SERVICE_TYPE_CACHE,
    ServiceType.OTHER: common_pb2.SERVICE_TYPE_OTHER,
}
TYPE_FROM_PROTO: dict[int, ServiceType] = {v: k for k, v in TYPE_TO_PROTO.items()}

STATUS_TO_PROTO: dict[ServiceStatus, common_pb2.ServiceStatus.ValueType] = {
    ServiceStatus.ONLINE: common_pb2.SERVICE_STATUS_ONLINE,
    ServiceStatus.DEGRADED: common_pb2.SERVICE_STATUS_DEGRADED,
    ServiceStatus.OFFLINE: common_pb2.SERVICE_STATUS_OFFLINE,
    ServiceStatus.UNKNOWN: common_pb2.SERVICE_STATUS_UNKNOWN,
}
STATUS_FROM_PROTO: dict[int, ServiceStatus] = {v: k for k, v in STATUS_TO_PROTO.items()}

PROBE_TO_PROTO: dict[ProbeKind, health_pb2.ProbeKind.ValueType] = {
    ProbeKind.HTTP: health_pb2.PROBE_KIND_HTTP,
    ProbeKind.TCP: health_pb2.PROBE_KIND_TCP,
    ProbeKind.POSTGRES: health_pb2.PROBE_KIND_POSTGRES,
    ProbeKind.REDIS: health_pb2.PROBE_KIND_REDIS,
    ProbeKind.GRPC: health_pb2.PROBE_KIND_GRPC_HEALTH,
    ProbeKind.ELASTICSEARCH: health_pb2.PROBE_KIND_ELASTICSEARCH,
}
PROBE_FROM_PROTO: dict[int, ProbeKind] = {v: k for k, v in PROBE_TO_PROTO.items()}

V = TypeVar("V")

SOURCE_TO_PROTO: dict[Source, health_pb2.ServiceSource.ValueType] = {
    Source.FILE: health_pb2.SERVICE_SOURCE_FILE,
    Source.API: health_pb2.SERVICE_SOURCE_API,
}


def _enum_from_proto(table: Mapping[int, V], value: int, field: str, what: str) -> V:
    try:
        return table[value]
    except KeyError:
        raise InvalidArgumentError(f"{field}: {value} is not a known {what}") from None


def statuses_from_proto(values: Iterable[int]) -> list[ServiceStatus]:
    """Filter values; UNSPECIFIED is refused rather than silently matching nothing."""
    return [_enum_from_proto(STATUS_FROM_PROTO, v, "statuses", "service status") for v in values]


def types_from_proto(values: Iterable[int]) -> list[ServiceType]:
    return [_enum_from_proto(TYPE_FROM_PROTO, v, "types", "service type") for v in values]


def definition_from_proto(msg: health_pb2.ServiceDefinition) -> ServiceDefinition:
    """Validate a RegisterService definition; zero values mean "the default"."""
    service_type: ServiceType | None = None
    if msg.type != common_pb2.SERVICE_TYPE_UNSPECIFIED:
        service_type = _enum_from_proto(TYPE_FROM_PROTO, msg.type, "type", "service type")
    probe_kind: ProbeKind | None = None
    if msg.probe_kind != health_pb2.PROBE_KIND_UNSPECIFIED:
        probe_kind = _enum_from_proto(PROBE_FROM_PROTO, msg.probe_kind, "probe_kind", "probe kind")
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
        type=TYPE_TO_PROTO[d.type],
        endpoint=d.endpoint,
        probe_kind=PROBE_TO_PROTO[d.probe_kind],
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
        type=TYPE_TO_PROTO[d.type],
        endpoint=visible_endpoint(d.endpoint),
        probe_kind=PROBE_TO_PROTO[d.probe_kind],
        status=STATUS_TO_PROTO[s.status],
        status_reason=s.status_reason,
        average_latency_ms=s.average_latency_ms or 0.0,
        uptime_percent=s.uptime_percent or 0.0,
        description=d.description,
        labels=dict(d.labels),
        check_interval_seconds=d.check_interval_seconds,
        thresholds=_thresholds_to_proto(d.thresholds),
        enabled=d.enabled,
        probe=_probe_to_proto(d.probe, raw=False),
        source=SOURCE_TO_PROTO[s.source],
    )
    set_timestamp(msg.last_checked, s.last_checked)
    set_timestamp(msg.last_successful, s.last_successful)
    set_timestamp(msg.created_at, s.created_at)
    set_timestamp(msg.updated_at, s.updated_at)
    set_timestamp(msg.status_changed_at, s.status_changed_at)
    if s.resources is not None:
        msg.resources.CopyFrom(snapshot_to_proto(s.resources))
    return msg
