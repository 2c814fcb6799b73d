"""Protobuf ⇄ domain for the alert lifecycle: alerts, episodes, silences, rules, and the feeds it reads
(the jobs' `JobOutcome` stream entries and the probes' `ResourceAlertTriggered` events)."""

from __future__ import annotations

from collections.abc import Mapping

from b2x.monitoring.v1 import alerts_pb2, common_pb2, events_pb2, health_pb2, job_outcomes_pb2, jobs_pb2, probes_pb2
from google.protobuf.message import DecodeError

from services.common.protoconv import ProtoEnum, bare_name, from_timestamp, set_timestamp
from services.health.aggregation.feeds import UndecodableFeed
from services.health.alerts.domain import Alert, AlertFilter, Episode, Silence
from services.health.alerts.notice import AlertState, ChannelTestResult, NotificationAttempt, Severity
from services.health.alerts.rules import ErrorSeen, JobOutcome, JobStatus, ResourceAlertSeen, RuleInfo
from services.health.domain import InvalidFieldError, Thresholds

STATE = ProtoEnum(AlertState, health_pb2.AlertStatus, "alert status")
_SEVERITY_TO_PROTO = {
    Severity.CRITICAL: common_pb2.ERROR_SEVERITY_CRITICAL,
    Severity.ERROR: common_pb2.ERROR_SEVERITY_ERROR,
    Severity.WARNING: common_pb2.ERROR_SEVERITY_WARNING,
    Severity.INFO: common_pb2.ERROR_SEVERITY_UNSPECIFIED,
}


def alert_to_proto(alert: Alert) -> health_pb2.Alert:
    e = alert.current
    msg = health_pb2.Alert(
        id=alert.id,
        rule=alert.rule,
        severity=_SEVERITY_TO_PROTO[e.severity],
        status=STATE.to_proto(e.state),
        title=e.summary,
        message=e.description,
        service_id=e.annotations.get("service_id", ""),
        tenant_id=alert.tenant,
        fingerprint=alert.fingerprint,
        occurrences=e.occurrences,
        acknowledged_by=e.acknowledged_by or "",
        labels=dict(alert.labels),
        episode=e.number,
        silenced_by=e.silenced_by or "",
        acknowledge_comment=e.ack_comment or "",
        resolved_by=e.resolved_by or "",
        resolve_comment=e.resolve_comment or "",
        annotations=dict(e.annotations),
    )
    set_timestamp(msg.first_fired_at, alert.created_at)
    set_timestamp(msg.last_fired_at, e.last_fired_at)
    set_timestamp(msg.acknowledged_at, e.acknowledged_at)
    set_timestamp(msg.resolved_at, e.resolved_at)
    set_timestamp(msg.changed_at, e.changed_at)
    set_timestamp(msg.episode_started_at, e.started_at)
    return msg


def episode_to_proto(e: Episode) -> alerts_pb2.AlertEpisode:
    msg = alerts_pb2.AlertEpisode(
        episode=e.number,
        status=STATE.to_proto(e.state),
        severity=e.severity.value,
        summary=e.summary,
        description=e.description,
        occurrences=e.occurrences,
        acknowledged_by=e.acknowledged_by or "",
        acknowledge_comment=e.ack_comment or "",
        resolved_by=e.resolved_by or "",
        resolve_comment=e.resolve_comment or "",
        silenced_by=e.silenced_by or "",
    )
    set_timestamp(msg.started_at, e.started_at)
    set_timestamp(msg.last_fired_at, e.last_fired_at)
    set_timestamp(msg.changed_at, e.changed_at)
    set_timestamp(msg.acknowledged_at, e.acknowledged_at)
    set_timestamp(msg.resolved_at, e.resolved_at)
    return msg


def silence_to_proto(s: Silence, active: bool) -> alerts_pb2.Silence:
    msg = alerts_pb2.Silence(
        id=s.id,
        matchers=[alerts_pb2.SilenceMatcher(name=m.name, op=m.op.value, value=m.value) for m in s.matchers],
        created_by=s.created_by,
        comment=s.comment,
        tenant_id=s.tenant,
        expired_by=s.expired_by or "",
        active=active,
    )
    set_timestamp(msg.starts_at, s.starts_at)
    set_timestamp(msg.ends_at, s.ends_at)
    set_timestamp(msg.created_at, s.created_at)
    return msg


def rule_to_proto(rule: RuleInfo) -> alerts_pb2.AlertRule:
    return alerts_pb2.AlertRule(
        name=rule.name, severity=rule.severity.value, description=rule.description, parameters=rule.parameters
    )


def attempt_to_proto(a: NotificationAttempt) -> alerts_pb2.NotificationAttempt:
    msg = alerts_pb2.NotificationAttempt(
        channel=a.channel,
        notification_id=a.notification_id,
        attempt=a.attempt,
        status=a.status,
        error=a.error or "",
        duration_ms=a.duration_ms or 0.0,
    )
    set_timestamp(msg.at, a.at)
    return msg


def test_result_to_proto(r: ChannelTestResult) -> alerts_pb2.TestNotificationChannelResponse:
    return alerts_pb2.TestNotificationChannelResponse(
        channel=r.channel, delivered=r.delivered, detail=r.detail, duration_ms=r.duration_ms
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


def threshold_changes_from_proto(msg: alerts_pb2.ThresholdChanges) -> dict[str, float]:
    found: dict[str, float] = {}
    for descriptor, value in msg.ListFields():  # only the fields that were set
        found[descriptor.name] = float(value)
    return found


def filter_from_proto(msg: alerts_pb2.AlertFilter, tenant: str | None) -> AlertFilter:
    severities = []
    for value in msg.severities:
        try:
            severities.append(Severity(value.strip().lower()))
        except ValueError:
            raise InvalidFieldError("filter.severities", f"{value!r} is not critical, error, warning or info") from None
    states = tuple(STATE.require(v, "filter.statuses") for v in msg.statuses)
    return AlertFilter(
        states=states,
        severities=tuple(severities),
        rules=tuple(r for r in msg.rules if r),
        service=msg.service,
        since=from_timestamp(msg.since) if msg.HasField("since") else None,
        tenant=tenant,
    )


# -- feeds ------------------------------------------------------------------------------------------

_JOB_STATUS: Mapping[int, JobStatus] = {
    jobs_pb2.JOB_STATUS_COMPLETED: JobStatus.COMPLETED,
    jobs_pb2.JOB_STATUS_FAILED: JobStatus.FAILED,
    jobs_pb2.JOB_STATUS_CANCELLED: JobStatus.CANCELLED,
}


def job_outcome_from_bytes(payload: bytes) -> JobOutcome:
    """A serialized `JobOutcome` of the jobs' outcome stream."""
    msg = job_outcomes_pb2.JobOutcome()
    try:
        msg.ParseFromString(payload)
    except DecodeError as error:
        raise UndecodableFeed(f"not a JobOutcome: {error}") from None
    finished_at = from_timestamp(msg.finished_at)
    status = _JOB_STATUS.get(msg.status)
    if not msg.job_id or finished_at is None or status is None:
        raise UndecodableFeed("a job outcome without job_id, finished_at or a final status")
    return JobOutcome(
        job_id=msg.job_id,
        job_type=msg.job_type,
        tenant=msg.tenant_id,
        status=status,
        finished_at=finished_at,
        attempt=msg.attempt,
        max_attempts=msg.max_attempts,
        error_message=msg.error_message,
        error_category=msg.error_category,
        will_retry=msg.will_retry,
    )


def error_from_event(event: events_pb2.CommunicationErrorRecorded) -> ErrorSeen | None:
    """A periodic check's communication error; None for a connection test's (someone is looking already)."""
    error = event.error
    at = from_timestamp(error.timestamp)
    group = bare_name(probes_pb2.CommunicationErrorGroup, error.error_group)
    if at is None or not error.service_id or not group or error.connection_test_id:
        return None
    return ErrorSeen(service_id=error.service_id, group=group, at=at)


def resource_alert_from_event(event: events_pb2.ResourceAlertTriggered) -> ResourceAlertSeen | None:
    return resource_alert_from_proto(event.service_id, event.alert)


def open_resource_alerts(event: events_pb2.ResourceMetricsUpdated) -> list[ResourceAlertSeen]:
    """The alerts a live resource update says are open for its service (resolved ones left out)."""
    seen = [resource_alert_from_proto(event.service_id, alert) for alert in event.open_alerts]
    return [s for s in seen if s is not None and s.resolved_at is None]


def resource_alert_from_proto(service_id: str, alert: health_pb2.ResourceAlert) -> ResourceAlertSeen | None:
    triggered_at = from_timestamp(alert.triggered_at)
    if triggered_at is None or not alert.alert_type:
        return None
    kind = bare_name(health_pb2.ResourceAlertType, alert.alert_type).lower()
    return ResourceAlertSeen(
        service_id=service_id or alert.service_id,
        kind=kind,
        threshold=alert.threshold_value,
        actual=alert.actual_value,
        message=alert.message,
        triggered_at=triggered_at,
        resolved_at=from_timestamp(alert.resolved_at) if alert.HasField("resolved_at") else None,
    )
