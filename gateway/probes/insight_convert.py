"""probes.proto → GraphQL types for patterns, histories, check states, resources and agents."""

from __future__ import annotations

from b2x.monitoring.v1 import health_pb2, probes_pb2

from gateway.enums import from_proto
from gateway.probes import insight_types as t
from gateway.probes.types import CommunicationErrorGroup, CommunicationErrorType, SpeedRating
from gateway.registry.convert import resources_to_gql, thresholds_to_gql
from services.common.protoconv import from_timestamp


def _type(value: int) -> object:
    return from_proto(CommunicationErrorType, probes_pb2.CommunicationErrorType, value)


def _group(value: int) -> object:
    return from_proto(CommunicationErrorGroup, probes_pb2.CommunicationErrorGroup, value)


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
        speed_rating=from_proto(SpeedRating, probes_pb2.SpeedRating, s.speed_rating),
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
