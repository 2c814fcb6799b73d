"""Protobuf (AlertsService) → GraphQL types of the alert lifecycle, and GraphQL inputs → protobuf."""

from __future__ import annotations

from b2x.monitoring.v1 import alerts_pb2, health_pb2
from strawberry.scalars import JSON

from gateway.alerts import types as t
from gateway.enums import from_proto, to_proto
from services.common.protoconv import from_timestamp, set_timestamp


def _severity(value: str) -> t.AlertSeverity | None:
    try:
        return t.AlertSeverity(value)
    except ValueError:
        return None


def _text(value: str) -> str | None:
    return value or None


def alert_to_gql(a: health_pb2.Alert) -> t.Alert:
    return t.Alert(
        id=a.id,  # type: ignore[arg-type]
        rule=a.rule,
        severity=_severity(a.labels.get("severity", "")),
        status=from_proto(t.AlertStatus, health_pb2.AlertStatus, a.status),
        summary=a.title,
        description=a.message,
        fingerprint=a.fingerprint,
        occurrences=a.occurrences,
        episode=a.episode,
        labels=JSON(dict(a.labels)),
        annotations=JSON(dict(a.annotations)),
        tenant_id=_text(a.tenant_id),
        service=_text(a.labels.get("service", "")),
        job_type=_text(a.labels.get("job_type", "")),
        first_fired_at=from_timestamp(a.first_fired_at) if a.HasField("first_fired_at") else None,
        episode_started_at=from_timestamp(a.episode_started_at) if a.HasField("episode_started_at") else None,
        last_fired_at=from_timestamp(a.last_fired_at) if a.HasField("last_fired_at") else None,
        changed_at=from_timestamp(a.changed_at) if a.HasField("changed_at") else None,
        acknowledged_at=from_timestamp(a.acknowledged_at) if a.HasField("acknowledged_at") else None,
        acknowledged_by=_text(a.acknowledged_by),
        acknowledge_comment=_text(a.acknowledge_comment),
        resolved_at=from_timestamp(a.resolved_at) if a.HasField("resolved_at") else None,
        resolved_by=_text(a.resolved_by),
        resolve_comment=_text(a.resolve_comment),
        silenced_by=_text(a.silenced_by),
    )


def episode_to_gql(e: alerts_pb2.AlertEpisode) -> t.AlertEpisode:
    return t.AlertEpisode(
        episode=e.episode,
        status=from_proto(t.AlertStatus, health_pb2.AlertStatus, e.status),
        severity=_severity(e.severity),
        summary=e.summary,
        description=e.description,
        occurrences=e.occurrences,
        started_at=from_timestamp(e.started_at) if e.HasField("started_at") else None,
        last_fired_at=from_timestamp(e.last_fired_at) if e.HasField("last_fired_at") else None,
        changed_at=from_timestamp(e.changed_at) if e.HasField("changed_at") else None,
        acknowledged_at=from_timestamp(e.acknowledged_at) if e.HasField("acknowledged_at") else None,
        acknowledged_by=_text(e.acknowledged_by),
        acknowledge_comment=_text(e.acknowledge_comment),
        resolved_at=from_timestamp(e.resolved_at) if e.HasField("resolved_at") else None,
        resolved_by=_text(e.resolved_by),
        resolve_comment=_text(e.resolve_comment),
        silenced_by=_text(e.silenced_by),
    )


def attempt_to_gql(a: alerts_pb2.NotificationAttempt) -> t.NotificationAttempt:
    return t.NotificationAttempt(
        channel=a.channel,
        notification_id=a.notification_id,
        attempt=a.attempt,
        status=a.status,
        error=_text(a.error),
        duration_ms=a.duration_ms or None,
        at=from_timestamp(a.at) if a.HasField("at") else None,
    )


def silence_to_gql(s: alerts_pb2.Silence) -> t.Silence:
    return t.Silence(
        id=s.id,  # type: ignore[arg-type]
        matchers=[t.SilenceMatcher(name=m.name, op=m.op, value=m.value) for m in s.matchers],
        starts_at=from_timestamp(s.starts_at) if s.HasField("starts_at") else None,
        ends_at=from_timestamp(s.ends_at) if s.HasField("ends_at") else None,
        created_by=s.created_by,
        comment=s.comment,
        tenant_id=_text(s.tenant_id),
        created_at=from_timestamp(s.created_at) if s.HasField("created_at") else None,
        expired_by=_text(s.expired_by),
        active=s.active,
    )


def rule_to_gql(r: alerts_pb2.AlertRule) -> t.AlertRule:
    return t.AlertRule(
        name=r.name, severity=_severity(r.severity), description=r.description, parameters=JSON(dict(r.parameters))
    )


ACTIVE = (health_pb2.ALERT_STATUS_FIRING, health_pb2.ALERT_STATUS_ACKNOWLEDGED)


def filter_to_proto(f: t.AlertFilter | None) -> alerts_pb2.AlertFilter:
    msg = alerts_pb2.AlertFilter()
    if f is None:
        return msg
    if f.statuses:
        msg.statuses.extend(to_proto(health_pb2.AlertStatus, s) for s in f.statuses)
    elif f.active:
        msg.statuses.extend(ACTIVE)
    elif f.active is False:
        msg.statuses.append(health_pb2.ALERT_STATUS_RESOLVED)
    msg.severities.extend(s.value for s in f.severities or [])
    msg.rules.extend(f.rules or [])
    msg.service = f.service or ""
    if f.since is not None:
        set_timestamp(msg.since, f.since)
    return msg


def thresholds_to_proto(th: t.ThresholdsInput) -> alerts_pb2.ThresholdChanges:
    msg = alerts_pb2.ThresholdChanges()
    for name in (
        "cpu_percent",
        "cpu_sustained_seconds",
        "memory_percent",
        "memory_critical_percent",
        "pool_percent",
        "queue_depth",
    ):
        value = getattr(th, name)
        if value is not None:
            setattr(msg, name, value)
    return msg
