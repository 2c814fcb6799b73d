"""GraphQL types of the alert lifecycle: alerts with their episodes and notifications, rules, silences."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from b2x.monitoring.v1 import health_pb2
from strawberry.scalars import JSON

from gateway.enums import mirror
from gateway.jobs.types import PageInfo
from gateway.registry.types import ResourceThresholds

AlertStatus = strawberry.enum(
    mirror("AlertStatus", health_pb2.AlertStatus), description="Firing, acknowledged (someone is on it), resolved"
)


@strawberry.enum(description="How urgent an alert is, most urgent first")
class AlertSeverity(Enum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@strawberry.type(description="One firing of an alert, from its first signal to its resolution")
class AlertEpisode:
    episode: int
    status: AlertStatus | None  # type: ignore[valid-type]
    severity: AlertSeverity | None
    summary: str
    description: str
    occurrences: int
    started_at: datetime | None
    last_fired_at: datetime | None
    changed_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledge_comment: str | None
    resolved_at: datetime | None
    resolved_by: str | None = strawberry.field(description="null with resolvedAt set: resolved automatically")
    resolve_comment: str | None
    silenced_by: str | None = strawberry.field(description="The silence that suppressed its notifications")


@strawberry.type(description="One attempt to deliver a notification of the alert over one channel")
class NotificationAttempt:
    channel: str
    notification_id: str
    attempt: int
    status: str = strawberry.field(description="sent, failed, suppressed (silenced) or pending")
    error: str | None
    duration_ms: float | None
    at: datetime | None


@strawberry.type(description="An alert: one problem (rule + labels), deduplicated, with its current episode")
class Alert:
    id: strawberry.ID
    rule: str = strawberry.field(description="jobs.failure_rate, jobs.failed, service.offline, resource.cpu_high...")
    severity: AlertSeverity | None
    status: AlertStatus | None  # type: ignore[valid-type]
    summary: str
    description: str
    fingerprint: str
    occurrences: int = strawberry.field(description="How often the current episode fired")
    episode: int = strawberry.field(description="Which firing this is; re-firing after resolution starts a new one")
    labels: JSON
    annotations: JSON
    tenant_id: str | None
    service: str | None = strawberry.field(description="The connected service's slug, for service and resource rules")
    job_type: str | None
    first_fired_at: datetime | None
    episode_started_at: datetime | None
    last_fired_at: datetime | None
    changed_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledge_comment: str | None
    resolved_at: datetime | None
    resolved_by: str | None = strawberry.field(description="null with resolvedAt set: resolved automatically")
    resolve_comment: str | None
    silenced_by: str | None = strawberry.field(
        description="The silence matching it: its notifications are suppressed, the alert stays visible"
    )


@strawberry.type(description="An alert with every episode (newest first) and every notification attempt")
class AlertDetails:
    alert: Alert
    episodes: list[AlertEpisode]
    notifications: list[NotificationAttempt]


@strawberry.type
class AlertEdge:
    cursor: str
    node: Alert


@strawberry.type(description="A page of alerts, most recently changed first, with the total matching the filter")
class AlertConnection:
    edges: list[AlertEdge]
    page_info: PageInfo
    total_count: int

    @strawberry.field(description="The alerts of this page, without cursors")
    def nodes(self) -> list[Alert]:
        return [edge.node for edge in self.edges]


@strawberry.input(description="Empty fields match everything")
class AlertFilter:
    active: bool | None = strawberry.field(default=None, description="true: firing or acknowledged only")
    statuses: list[AlertStatus] | None = None  # type: ignore[valid-type]
    severities: list[AlertSeverity] | None = None
    rules: list[str] | None = None
    service: str | None = strawberry.field(default=None, description="A connected service's slug")
    since: datetime | None = strawberry.field(default=None, description="Changed at or after (history)")


@strawberry.type(description="An alert rule and its parameters (the declarative file's `alerts:` section)")
class AlertRule:
    name: str
    severity: AlertSeverity | None
    description: str
    parameters: JSON


@strawberry.type(description="A label condition: = != =~ !~")
class SilenceMatcher:
    name: str
    op: str
    value: str


@strawberry.type(description="Notifications of matching alerts are suppressed until endsAt; the alerts stay visible")
class Silence:
    id: strawberry.ID
    matchers: list[SilenceMatcher]
    starts_at: datetime | None
    ends_at: datetime | None
    created_by: str
    comment: str
    tenant_id: str | None = strawberry.field(description="Set for a tenant key's silence: only that tenant's alerts")
    created_at: datetime | None
    expired_by: str | None
    active: bool


@strawberry.input
class CreateSilenceInput:
    matchers: list[str] = strawberry.field(description='All must match: "service=crm", "job_type=~ERP_.*"')
    duration: str = strawberry.field(description='"2h", "30m", "1d"')
    comment: str


@strawberry.input(description="Only the thresholds given change; 0 turns a limit off")
class ThresholdsInput:
    cpu_percent: float | None = None
    cpu_sustained_seconds: int | None = None
    memory_percent: float | None = None
    memory_critical_percent: float | None = None
    pool_percent: float | None = None
    queue_depth: int | None = None


@strawberry.type
class UpdateThresholdsResult:
    service: str
    thresholds: ResourceThresholds


@strawberry.type(description="What a test message over a notification channel did")
class ChannelTestResult:
    channel: str
    delivered: bool
    detail: str
    duration_ms: float
