"""probes.proto → GraphQL types: connection tests, communication errors, patterns, histories, check states,
resources and agents."""

from __future__ import annotations

from b2x.monitoring.v1 import common_pb2, health_pb2, probes_pb2
from strawberry.scalars import JSON

from gateway.enums import from_proto
from gateway.probes import types as t
from gateway.registry.convert import resources_to_gql, thresholds_to_gql
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


def _type(value: int) -> object:
    return from_proto(t.CommunicationErrorType, probes_pb2.CommunicationErrorType, value)


def _group(value: int) -> object:
    return from_proto(t.CommunicationErrorGroup, probes_pb2.CommunicationErrorGroup, value)


def patterns_to_gql(r: probes_pb2.GetErrorPatternsResponse) -> t.ErrorPatterns:
    return t.ErrorPatterns(
        fingerprints=[
            t.ErrorFingerprint(
                fingerprint=f.fingerprint, service_id=f.service_id, service_slug=f.service_slug,  # type: ignore[arg-type]
                error_type=_type(f.error_type), error_group=_group(f.error_group), endpoint=f.endpoint, count=f.count,
                previous_count=f.previous_count, first_seen=from_timestamp(f.first_seen),
                last_seen=from_timestamp(f.last_seen), trend=from_proto(t.ErrorTrend, probes_pb2.ErrorTrend, f.trend),
                change_percent=f.change_percent,
            )
            for f in r.fingerprints
        ],
        heatmap=[t.HeatmapCell(weekday=c.weekday, hour=c.hour, count=c.count) for c in r.heatmap],
        top_types=[
            t.ErrorTypeShare(error_type=_type(s.error_type), error_group=_group(s.error_group), count=s.count,
                             share_percent=s.share_percent)
            for s in r.top_types
        ],
        top_groups=[
            t.ErrorGroupShare(error_group=_group(s.error_group), count=s.count, share_percent=s.share_percent)
            for s in r.top_groups
        ],
        trend=[t.ErrorTrendPoint(start=from_timestamp(p.start), count=p.count) for p in r.trend],
        patterns=[
            t.DetectedPattern(
                kind=p.kind, service_id=p.service_id or None, service_slug=p.service_slug,  # type: ignore[arg-type]
                error_group=_group(p.error_group), start_hour=p.start_hour, end_hour=p.end_hour,
                days_matched=p.days_matched, days_considered=p.days_considered, ratio=p.ratio, text=p.text,
                advice=p.advice,
            )
            for p in r.patterns
        ],
        total_errors=r.total_errors,
        previous_total_errors=r.previous_total_errors,
        since=from_timestamp(r.time_range.start),
        until=from_timestamp(r.time_range.end),
        timezone=r.timezone,
    )  # fmt: skip


def latency_point(p: probes_pb2.LatencyPoint) -> t.LatencyPoint:
    return t.LatencyPoint(
        start=from_timestamp(p.start), checks=p.checks, failures=p.failures, skipped=p.skipped,
        availability_percent=p.availability_percent, avg_latency_ms=p.avg_latency_ms,
        p95_latency_ms=p.p95_latency_ms, max_latency_ms=p.max_latency_ms,
    )  # fmt: skip


def latency_to_gql(r: probes_pb2.GetLatencyHistoryResponse) -> t.LatencyHistory:
    return t.LatencyHistory(
        service_id=r.service_id,  # type: ignore[arg-type]
        bucket=from_proto(t.HistoryBucket, probes_pb2.HistoryBucket, r.bucket),
        points=[latency_point(p) for p in r.points],
        summary=latency_point(r.summary) if r.HasField("summary") else None,
    )


def check_state_to_gql(s: probes_pb2.ServiceCheckState) -> t.CheckState:
    return t.CheckState(
        service_id=s.service_id, service_slug=s.service_slug, checked_at=from_timestamp(s.checked_at),  # type: ignore[arg-type]
        success=s.success, degraded=s.degraded, error_type=_type(s.error_type), error_group=_group(s.error_group),
        summary=s.summary, total_latency_ms=s.total_latency_ms,
        speed_rating=from_proto(t.SpeedRating, probes_pb2.SpeedRating, s.speed_rating),
        consecutive_failures=s.consecutive_failures,
        circuit_breaker=from_proto(t.CircuitBreakerState, probes_pb2.CircuitBreakerState, s.circuit_breaker),
        breaker_retry_at=from_timestamp(s.breaker_retry_at), last_success_at=from_timestamp(s.last_success_at),
        last_failure_at=from_timestamp(s.last_failure_at), agent_id=s.agent_id, interval_seconds=s.interval_seconds,
    )  # fmt: skip


def alert_to_gql(a: health_pb2.ResourceAlert) -> t.ResourceAlert:
    return t.ResourceAlert(
        id=a.id, service_id=a.service_id,  # type: ignore[arg-type]
        alert_type=from_proto(t.ResourceAlertType, health_pb2.ResourceAlertType, a.alert_type),
        threshold_value=a.threshold_value, actual_value=a.actual_value, triggered_at=from_timestamp(a.triggered_at),
        resolved_at=from_timestamp(a.resolved_at), message=a.message,
    )  # fmt: skip


def resources_of(r: probes_pb2.ServiceResources) -> t.ServiceResources:
    return t.ServiceResources(
        service_id=r.service_id,  # type: ignore[arg-type]
        service_slug=r.service_slug,
        metrics=resources_to_gql(r.metrics) if r.HasField("metrics") else None,
        thresholds=thresholds_to_gql(r.thresholds) if r.HasField("thresholds") else None,
        source=r.source,
        active_alerts=[alert_to_gql(a) for a in r.active_alerts],
        stale=r.stale,
        sample_error=r.sample_error,
    )


def resource_history_to_gql(r: probes_pb2.GetResourceHistoryResponse) -> t.ResourceHistory:
    return t.ResourceHistory(
        service_id=r.service_id,  # type: ignore[arg-type]
        bucket=from_proto(t.HistoryBucket, probes_pb2.HistoryBucket, r.bucket),
        points=[
            t.ResourcePoint(
                start=from_timestamp(p.start), samples=p.samples, cpu_avg=p.cpu_avg, cpu_max=p.cpu_max,
                memory_percent_avg=p.memory_percent_avg, memory_percent_max=p.memory_percent_max,
                memory_used_avg_bytes=float(p.memory_used_avg_bytes),
                memory_used_max_bytes=float(p.memory_used_max_bytes),
                memory_total_bytes=float(p.memory_total_bytes), pool_active_max=p.pool_active_max,
                pool_total=p.pool_total, threads_max=p.threads_max, queue_depth_avg=p.queue_depth_avg,
                queue_depth_max=p.queue_depth_max,
            )
            for p in r.points
        ],
    )  # fmt: skip


def agent_to_gql(a: probes_pb2.ProbeAgent) -> t.ProbeAgent:
    return t.ProbeAgent(
        agent_id=a.agent_id, hostname=a.hostname, pid=a.pid, started_at=from_timestamp(a.started_at),
        heartbeat_at=from_timestamp(a.heartbeat_at), checks=[c.service_slug for c in a.checks],
        resources=[c.service_slug for c in a.resources], checks_run=a.checks_run, samples_taken=a.samples_taken,
    )  # fmt: skip
