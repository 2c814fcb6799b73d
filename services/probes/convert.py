"""Domain ⇄ protobuf for the probes service. Used by the gRPC API, the event publisher and the target source."""

from __future__ import annotations

from datetime import UTC, datetime

from b2x.monitoring.v1 import common_pb2, health_pb2, probes_pb2

from services.common.errors import FailedPreconditionError
from services.common.protoconv import ProtoEnum, from_timestamp, set_timestamp
from services.probes.domain import (
    BreakerState,
    CallFailure,
    CallFailureKind,
    Classification,
    CommunicationError,
    ConnectionTestMetrics,
    ConnectionTestResult,
    ErrorDetails,
    ErrorGroup,
    ErrorType,
    Phase,
    PhaseStatus,
    ProbeKind,
    ProbeOptions,
    ResourceSource,
    Severity,
    SpeedRating,
    Target,
    Thresholds,
    Timing,
)

DEFAULT_INTERVAL_SECONDS = 30
_SCHEME_KINDS = {
    "http": ProbeKind.HTTP,
    "https": ProbeKind.HTTP,
    "tcp": ProbeKind.TCP,
    "tls": ProbeKind.TCP,
    "postgres": ProbeKind.POSTGRES,
    "postgresql": ProbeKind.POSTGRES,
    "redis": ProbeKind.REDIS,
    "rediss": ProbeKind.REDIS,
    "grpc": ProbeKind.GRPC_HEALTH,
    "grpcs": ProbeKind.GRPC_HEALTH,
}


ERROR_TYPE = ProtoEnum(ErrorType, probes_pb2.CommunicationErrorType, "communication error type")
ERROR_GROUP = ProtoEnum(ErrorGroup, probes_pb2.CommunicationErrorGroup, "communication error group")
SEVERITY = ProtoEnum(Severity, common_pb2.ErrorSeverity, "error severity")
PROBE_KIND = ProtoEnum(ProbeKind, health_pb2.ProbeKind, "probe kind")
BREAKER = ProtoEnum(BreakerState, probes_pb2.CircuitBreakerState, "circuit breaker state")
SPEED = ProtoEnum(SpeedRating, probes_pb2.SpeedRating, "speed rating")
PHASE_STATUS = ProtoEnum(PhaseStatus, probes_pb2.PhaseStatus, "phase status")


def target_from_proto(target: health_pb2.ProbeTarget) -> Target:
    """A registry entry as the engine needs it; the kind is inferred from the scheme when unset."""
    definition = target.definition
    if (known := PROBE_KIND.from_proto(definition.probe_kind, "probe_kind")) is not None:
        kind = known
    else:
        scheme = definition.endpoint.split("://", 1)[0].lower() if "://" in definition.endpoint else ""
        if scheme not in _SCHEME_KINDS:
            raise FailedPreconditionError(
                f"service {definition.slug or target.service_id} has no probe kind and its endpoint scheme "
                f"{scheme or '(none)'!r} does not imply one; set probe_kind in its definition"
            )
        kind = _SCHEME_KINDS[scheme]
    probe = definition.probe
    options = ProbeOptions(
        http_method=probe.http_method or "GET",
        expected_statuses=tuple(probe.expected_statuses),
        body_contains=probe.body_contains,
        headers=tuple(sorted(probe.headers.items())),
        tls_skip_verify=probe.tls_skip_verify,
        ca_file=probe.ca_file,
        timeout_seconds=probe.timeout_seconds,
        max_retries=probe.max_retries if probe.HasField("max_retries") else None,
        grpc_service=probe.grpc_service,
    )
    return Target(
        target.service_id,
        definition.slug,
        definition.name,
        kind,
        definition.endpoint,
        options,
        interval_seconds=definition.check_interval_seconds or DEFAULT_INTERVAL_SECONDS,
        thresholds=thresholds_from_proto(definition.thresholds) if definition.HasField("thresholds") else Thresholds(),
        resources=ResourceSource(probe.metrics_url, probe.process_name.strip(), probe.process_pid),
    )


def thresholds_from_proto(t: health_pb2.ResourceThresholds) -> Thresholds:
    return Thresholds(
        cpu_percent=t.cpu_percent,
        cpu_sustained_seconds=t.cpu_sustained_seconds,
        memory_percent=t.memory_percent,
        memory_critical_percent=t.memory_critical_percent,
        pool_percent=t.pool_percent,
        queue_depth=t.queue_depth,
    )


def thresholds_to_proto(t: Thresholds) -> health_pb2.ResourceThresholds:
    return health_pb2.ResourceThresholds(
        cpu_percent=t.cpu_percent,
        cpu_sustained_seconds=t.cpu_sustained_seconds,
        memory_percent=t.memory_percent,
        memory_critical_percent=t.memory_critical_percent,
        pool_percent=t.pool_percent,
        queue_depth=t.queue_depth,
    )


def timing_to_proto(timing: Timing) -> probes_pb2.NetworkTimingMetrics:
    msg = probes_pb2.NetworkTimingMetrics(total_time_ms=timing.total_ms)
    for field, value in (
        ("dns_lookup_ms", timing.dns_ms),
        ("tcp_connection_ms", timing.tcp_ms),
        ("tls_handshake_ms", timing.tls_ms),
        ("time_to_first_byte_ms", timing.ttfb_ms),
        ("content_download_ms", timing.download_ms),
    ):
        if value is not None:
            setattr(msg, field, value)
    return msg


def details_to_proto(details: ErrorDetails) -> probes_pb2.CommunicationErrorDetails:
    msg = probes_pb2.CommunicationErrorDetails(
        http_method=details.http_method,
        endpoint_url=details.endpoint_url,
        request_headers=details.request_headers,
        request_payload_summary=details.request_payload_summary,
        response_headers=details.response_headers,
        response_body_summary=details.response_body_summary,
        timing=timing_to_proto(details.timing),
        retry_attempt=details.retry_attempt,
        max_retries=details.max_retries,
        correlation_id=details.correlation_id,
        trace_id=details.trace_id,
        span_id=details.span_id,
    )
    if details.http_status_code is not None:
        msg.http_status_code = details.http_status_code
    if details.request_payload_size_bytes is not None:
        msg.request_payload_size_bytes = details.request_payload_size_bytes
    if details.response_payload_size_bytes is not None:
        msg.response_payload_size_bytes = details.response_payload_size_bytes
    for attempt in details.retry_history:
        log = msg.retry_history.add(
            attempt_number=attempt.attempt_number,
            error_message=attempt.error_message,
            duration_ms=attempt.duration_ms,
            delay_before_retry_ms=attempt.delay_before_retry_ms,
        )
        set_timestamp(log.attempted_at, attempt.attempted_at)
    return msg


def phase_to_proto(phase: Phase) -> probes_pb2.ConnectionTestPhase:
    return probes_pb2.ConnectionTestPhase(
        name=phase.name.value,
        status=PHASE_STATUS.to_proto(phase.status),
        duration_ms=phase.duration_ms,
        detail=phase.detail,
        attempt=phase.attempt,
    )


def metrics_to_proto(metrics: ConnectionTestMetrics) -> probes_pb2.ConnectionTestMetrics:
    return probes_pb2.ConnectionTestMetrics(
        dns_resolution_ms=metrics.dns_resolution_ms,
        tls_handshake_ms=metrics.tls_handshake_ms,
        connection_ms=metrics.connection_ms,
        response_ms=metrics.response_ms,
        total_latency_ms=metrics.total_latency_ms,
        throughput_kbps=metrics.throughput_kbps,
        time_to_first_byte_ms=metrics.time_to_first_byte_ms,
        content_download_ms=metrics.content_download_ms,
        bytes_downloaded=metrics.bytes_downloaded,
        requests_per_second=metrics.requests_per_second,
    )


def _set_classification(msg: probes_pb2.ConnectionTestResult, error: Classification) -> None:
    msg.error_type = ERROR_TYPE.to_proto(error.error_type)
    msg.error_group = ERROR_GROUP.to_proto(error.group)
    msg.severity = SEVERITY.to_proto(error.severity)
    msg.error_message = error.message


def result_to_proto(result: ConnectionTestResult) -> probes_pb2.ConnectionTestResult:
    msg = probes_pb2.ConnectionTestResult(
        id=result.id,
        service_id=result.service_id,
        success=result.success,
        metrics=metrics_to_proto(result.metrics),
        recommendations=result.recommendations,
        phases=[phase_to_proto(p) for p in result.phases],
        endpoint=result.endpoint,
        probe_kind=PROBE_KIND.to_proto(result.kind),
        correlation_id=result.correlation_id,
        service_slug=result.service_slug,
        degraded=result.degraded,
        summary=result.summary,
        evidence=details_to_proto(result.evidence),
        communication_error_id=result.communication_error_id or "",
        circuit_breaker=BREAKER.to_proto(result.breaker),
    )
    set_timestamp(msg.executed_at, result.executed_at)
    msg.speed_rating = SPEED.to_proto(result.speed_rating)
    if result.error is not None:
        _set_classification(msg, result.error)
    return msg


def error_to_proto(error: CommunicationError) -> probes_pb2.CommunicationError:
    c = error.classification
    msg = probes_pb2.CommunicationError(
        id=error.id,
        service_id=error.service_id,
        error_type=ERROR_TYPE.to_proto(c.error_type),
        error_group=ERROR_GROUP.to_proto(c.group),
        error_code=c.code,
        message=c.message,
        severity=SEVERITY.to_proto(c.severity),
        correlated_job_id=error.correlated_job_id or "",
        details=details_to_proto(error.details),
        connection_test_id=error.connection_test_id or "",
        recommendations=error.recommendations,
        tenant_id=error.tenant_id or "",
    )
    set_timestamp(msg.timestamp, error.timestamp)
    return msg


CALL_FAILURE_KIND = ProtoEnum(CallFailureKind, probes_pb2.CallFailureKind, "call failure kind")


def call_failure_from_proto(msg: probes_pb2.CallFailure, n: int) -> CallFailure:
    """A reported failed call; the use case validates the values, this only names the field of a bad enum."""
    return CallFailure(
        job_id=msg.job_id.strip(),
        service=msg.service,
        occurred_at=from_timestamp(msg.occurred_at) or datetime.now(UTC),
        kind=CALL_FAILURE_KIND.require(msg.kind, f"failures[{n}].kind"),
        http_method=msg.http_method,
        url=msg.url,
        request_headers=tuple(msg.request_headers.items()),
        status_code=msg.status_code if msg.HasField("status_code") else None,
        reason_phrase=msg.reason_phrase,
        response_headers=tuple(msg.response_headers.items()),
        response_body=msg.response_body,
        response_size_bytes=msg.response_size_bytes if msg.HasField("response_size_bytes") else None,
        request_size_bytes=msg.request_size_bytes if msg.HasField("request_size_bytes") else None,
        error_message=msg.error_message,
        os_errno=msg.os_errno,
        duration_ms=msg.duration_ms,
        traceparent=msg.traceparent,
        timeout_seconds=msg.timeout_seconds,
        failure_id=msg.failure_id.strip().lower(),
    )
