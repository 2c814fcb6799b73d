"""Domain ⇄ protobuf for the agents' state, patterns, histories, resources and agents."""

from __future__ import annotations

from datetime import datetime

from b2x.monitoring.v1 import health_pb2, probes_pb2
from google.protobuf import timestamp_pb2

from services.common.protoconv import ProtoEnum, set_timestamp
from services.probes.agent.leases import AgentRecord, LeaseKind
from services.probes.agent.records import CheckState
from services.probes.agent.resources.model import AlertType, ResourceAlert, ResourceMetrics, ServiceResources
from services.probes.convert import BREAKER, ERROR_GROUP, ERROR_TYPE, SPEED, thresholds_to_proto
from services.probes.insights.history import Bucket, LatencyPoint, ResourcePoint
from services.probes.insights.patterns import PatternReport, Trend
from services.probes.insights.service import ExportFormat


def check_state_to_proto(state: CheckState) -> probes_pb2.ServiceCheckState:
    msg = probes_pb2.ServiceCheckState(
        service_id=state.service_id,
        service_slug=state.service_slug,
        success=state.success,
        degraded=state.degraded,
        summary=state.summary,
        total_latency_ms=state.total_latency_ms,
        speed_rating=SPEED.to_proto(state.speed_rating),
        consecutive_failures=state.consecutive_failures,
        circuit_breaker=BREAKER.to_proto(state.breaker),
        agent_id=state.agent_id,
        interval_seconds=state.interval_seconds,
    )
    set_timestamp(msg.checked_at, state.checked_at)
    set_timestamp(msg.breaker_retry_at, state.breaker_retry_at)
    set_timestamp(msg.last_success_at, state.last_success_at)
    set_timestamp(msg.last_failure_at, state.last_failure_at)
    if state.error is not None:
        msg.error_type = ERROR_TYPE.to_proto(state.error.error_type)
        msg.error_group = ERROR_GROUP.to_proto(state.error.group)
    return msg


def resource_metrics_to_proto(m: ResourceMetrics) -> health_pb2.ResourceMetrics:
    msg = health_pb2.ResourceMetrics(
        cpu_percent=m.cpu_percent,
        cpu_average=m.cpu_average,
        cpu_peak=m.cpu_peak,
        memory_used_bytes=m.memory_used_bytes,
        memory_total_bytes=m.memory_total_bytes,
        memory_percent=m.memory_percent,
        memory_peak_bytes=m.memory_peak_bytes,
        connection_pool_active=m.connection_pool_active,
        connection_pool_total=m.connection_pool_total,
        thread_count=m.thread_count,
        queue_depth=m.queue_depth,
        processing_rate_per_minute=m.processing_rate_per_minute,
    )
    set_timestamp(msg.timestamp, m.timestamp)
    return msg


def resource_alert_to_proto(a: ResourceAlert) -> health_pb2.ResourceAlert:
    msg = health_pb2.ResourceAlert(
        id=a.id,
        service_id=a.service_id,
        alert_type=ALERT_TYPE.to_proto(a.alert_type),
        threshold_value=a.threshold_value,
        actual_value=a.actual_value,
        message=a.message,
    )
    set_timestamp(msg.triggered_at, a.triggered_at)
    set_timestamp(msg.resolved_at, a.resolved_at)
    return msg


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    set_timestamp(ts, value)
    return ts


TREND = ProtoEnum(Trend, probes_pb2.ErrorTrend, "error trend")
HISTORY_BUCKET = ProtoEnum(Bucket, probes_pb2.HistoryBucket, "history bucket")
EXPORT_FORMAT = ProtoEnum(ExportFormat, probes_pb2.ExportFormat, "export format")
ALERT_TYPE = ProtoEnum(AlertType, health_pb2.ResourceAlertType, "resource alert type")


def format_from_proto(value: int) -> ExportFormat:
    """JSON unless another format is asked for."""
    return EXPORT_FORMAT.from_proto(value, "format") or ExportFormat.JSON


def patterns_to_proto(report: PatternReport) -> probes_pb2.GetErrorPatternsResponse:
    msg = probes_pb2.GetErrorPatternsResponse(
        total_errors=report.total,
        previous_total_errors=report.previous_total,
        timezone=report.timezone,
        heatmap=[probes_pb2.HeatmapCell(weekday=d, hour=h, count=n) for d, h, n in report.heatmap],
        top_types=[
            probes_pb2.ErrorTypeShare(
                error_type=ERROR_TYPE.to_proto(s.error_type), error_group=ERROR_GROUP.to_proto(s.group), count=s.count,
                share_percent=s.share_percent,
            )
            for s in report.top_types
            if s.error_type is not None
        ],
        top_groups=[
            probes_pb2.ErrorGroupShare(
                error_group=ERROR_GROUP.to_proto(s.group), count=s.count, share_percent=s.share_percent
            )
            for s in report.top_groups
        ],
        trend=[probes_pb2.ErrorTrendPoint(start=_ts(at), count=n) for at, n in report.trend],
        patterns=[
            probes_pb2.DetectedPattern(
                kind=p.kind, error_group=ERROR_GROUP.to_proto(p.group), start_hour=p.start_hour, end_hour=p.end_hour,
                days_matched=p.days_matched, days_considered=p.days_considered, ratio=p.ratio, text=p.text,
                advice=p.advice, service_id=p.service_id, service_slug=p.service_slug,
            )
            for p in report.patterns
        ],
    )  # fmt: skip
    set_timestamp(msg.time_range.start, report.start)
    set_timestamp(msg.time_range.end, report.end)
    for f in report.fingerprints:
        msg.fingerprints.add(
            fingerprint=f.fingerprint, service_id=f.service_id, service_slug=f.service_slug,
            error_type=ERROR_TYPE.to_proto(f.error_type), error_group=ERROR_GROUP.to_proto(f.group),
            endpoint=f.endpoint,
            count=f.count, previous_count=f.previous_count, first_seen=_ts(f.first_seen), last_seen=_ts(f.last_seen),
            trend=TREND.to_proto(f.trend), change_percent=f.change_percent,
        )  # fmt: skip
    return msg


def latency_point_to_proto(p: LatencyPoint) -> probes_pb2.LatencyPoint:
    return probes_pb2.LatencyPoint(
        start=_ts(p.start), checks=p.checks, failures=p.failures, skipped=p.skipped,
        availability_percent=p.availability_percent, avg_latency_ms=p.avg_latency_ms,
        p95_latency_ms=p.p95_latency_ms, max_latency_ms=p.max_latency_ms,
    )  # fmt: skip


def resource_point_to_proto(p: ResourcePoint) -> probes_pb2.ResourcePoint:
    return probes_pb2.ResourcePoint(
        start=_ts(p.start), samples=p.samples, cpu_avg=p.cpu_avg, cpu_max=p.cpu_max,
        memory_percent_avg=p.memory_percent_avg, memory_percent_max=p.memory_percent_max,
        memory_used_avg_bytes=p.memory_used_avg_bytes, memory_used_max_bytes=p.memory_used_max_bytes,
        memory_total_bytes=p.memory_total_bytes, pool_active_max=p.pool_active_max, pool_total=p.pool_total,
        threads_max=p.threads_max, queue_depth_avg=p.queue_depth_avg, queue_depth_max=p.queue_depth_max,
    )  # fmt: skip


def service_resources_to_proto(r: ServiceResources) -> probes_pb2.ServiceResources:
    return probes_pb2.ServiceResources(
        service_id=r.service_id, service_slug=r.service_slug, metrics=resource_metrics_to_proto(r.metrics),
        thresholds=thresholds_to_proto(r.thresholds), source=r.source,
        active_alerts=[resource_alert_to_proto(a) for a in r.active_alerts], stale=r.stale,
        sample_error=r.sample_error,
    )  # fmt: skip


def agent_to_proto(a: AgentRecord) -> probes_pb2.ProbeAgent:
    def leased(kind: LeaseKind) -> list[probes_pb2.LeasedTarget]:
        return [probes_pb2.LeasedTarget(service_id=i, service_slug=s) for i, s in a.leases.get(kind, [])]

    return probes_pb2.ProbeAgent(
        agent_id=a.agent_id, hostname=a.hostname, pid=a.pid, started_at=_ts(a.started_at),
        heartbeat_at=_ts(a.heartbeat_at), checks=leased(LeaseKind.CHECK), resources=leased(LeaseKind.RESOURCE),
        checks_run=a.checks_run, samples_taken=a.samples_taken,
    )  # fmt: skip
