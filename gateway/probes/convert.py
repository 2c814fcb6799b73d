"""probes.proto → GraphQL types."""

from __future__ import annotations

from b2x.monitoring.v1 import common_pb2, health_pb2, probes_pb2
from strawberry.scalars import JSON

from gateway.enums import from_proto
from gateway.probes import types as t
from gateway.registry.types import ProbeKind
from services.common.protoconv import from_timestamp


def _opt(message: object, field: str) -> float | None:
    return float(getattr(message, field)) if message.HasField(field) else None  # type: ignore[attr-defined]


def timing_to_gql(m: probes_pb2.NetworkTimingMetrics) -> t.NetworkTiming:
    return t.NetworkTiming(
        dns_lookup_ms=_opt(m, "dns_lookup_ms"),
        tcp_connection_ms=_opt(m, "tcp_connection_ms"),
        tls_handshake_ms=_opt(m, "tls_handshake_ms"),
        time_to_first_byte_ms=_opt(m, "time_to_first_byte_ms"),
        content_download_ms=_opt(m, "content_download_ms"),
        total_time_ms=m.total_time_ms,
    )


def details_to_gql(d: probes_pb2.CommunicationErrorDetails) -> t.CommunicationDetails:
    return t.CommunicationDetails(
        http_method=d.http_method,
        endpoint_url=d.endpoint_url,
        http_status_code=d.http_status_code if d.HasField("http_status_code") else None,
        request_headers=JSON(dict(d.request_headers)),
        request_payload_summary=d.request_payload_summary,
        request_payload_size_bytes=_opt(d, "request_payload_size_bytes"),
        response_headers=JSON(dict(d.response_headers)),
        response_body_summary=d.response_body_summary,
        response_payload_size_bytes=_opt(d, "response_payload_size_bytes"),
        timing=timing_to_gql(d.timing) if d.HasField("timing") else None,
        retry_attempt=d.retry_attempt,
        max_retries=d.max_retries,
        retry_history=[
            t.RetryAttempt(
                attempt_number=r.attempt_number,
                attempted_at=from_timestamp(r.attempted_at),
                error_message=r.error_message,
                duration_ms=r.duration_ms,
                delay_before_retry_ms=r.delay_before_retry_ms,
            )
            for r in d.retry_history
        ],
        correlation_id=d.correlation_id,
        trace_id=d.trace_id,
        span_id=d.span_id,
    )


def error_to_gql(e: probes_pb2.CommunicationError) -> t.CommunicationError:
    return t.CommunicationError(
        id=e.id,  # type: ignore[arg-type]
        service_id=e.service_id,  # type: ignore[arg-type]
        timestamp=from_timestamp(e.timestamp),
        error_type=from_proto(t.CommunicationErrorType, probes_pb2.CommunicationErrorType, e.error_type),
        error_group=from_proto(t.CommunicationErrorGroup, probes_pb2.CommunicationErrorGroup, e.error_group),
        error_code=e.error_code,
        message=e.message,
        stack_trace=e.stack_trace or None,
        severity=from_proto(t.ErrorSeverity, common_pb2.ErrorSeverity, e.severity),
        correlated_job_id=e.correlated_job_id or None,  # type: ignore[arg-type]
        connection_test_id=e.connection_test_id or None,  # type: ignore[arg-type]
        recommendations=list(e.recommendations),
        details=details_to_gql(e.details) if e.HasField("details") else None,
    )


def phase_to_gql(p: probes_pb2.ConnectionTestPhase) -> t.ConnectionTestPhase:
    return t.ConnectionTestPhase(
        name=p.name,
        status=from_proto(t.PhaseStatus, probes_pb2.PhaseStatus, p.status),
        duration_ms=p.duration_ms,
        detail=p.detail,
        attempt=p.attempt,
    )


def result_to_gql(r: probes_pb2.ConnectionTestResult) -> t.ConnectionTestResult:
    m = r.metrics
    return t.ConnectionTestResult(
        id=r.id,  # type: ignore[arg-type]
        service_id=r.service_id,  # type: ignore[arg-type]
        service_slug=r.service_slug,
        executed_at=from_timestamp(r.executed_at),
        success=r.success,
        degraded=r.degraded,
        summary=r.summary,
        endpoint=r.endpoint,
        probe_kind=from_proto(ProbeKind, health_pb2.ProbeKind, r.probe_kind),
        metrics=t.ConnectionTestMetrics(
            dns_resolution_ms=m.dns_resolution_ms,
            tcp_connection_ms=m.connection_ms,
            tls_handshake_ms=m.tls_handshake_ms,
            time_to_first_byte_ms=m.time_to_first_byte_ms,
            content_download_ms=m.content_download_ms,
            response_ms=m.response_ms,
            total_latency_ms=m.total_latency_ms,
            throughput_kbps=m.throughput_kbps,
            bytes_downloaded=float(m.bytes_downloaded),
            requests_per_second=m.requests_per_second,
        )
        if r.HasField("metrics")
        else None,
        phases=[phase_to_gql(p) for p in r.phases],
        speed_rating=from_proto(t.SpeedRating, probes_pb2.SpeedRating, r.speed_rating),
        recommendations=list(r.recommendations),
        error_message=r.error_message or None,
        error_type=from_proto(t.CommunicationErrorType, probes_pb2.CommunicationErrorType, r.error_type),
        error_group=from_proto(t.CommunicationErrorGroup, probes_pb2.CommunicationErrorGroup, r.error_group),
        severity=from_proto(t.ErrorSeverity, common_pb2.ErrorSeverity, r.severity),
        correlation_id=r.correlation_id,
        communication_error_id=r.communication_error_id or None,  # type: ignore[arg-type]
        evidence=details_to_gql(r.evidence) if r.HasField("evidence") else None,
    )
