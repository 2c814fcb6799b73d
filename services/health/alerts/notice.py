"""The hand-off from the alert lifecycle to notification delivery. No I/O here.

Every state change of an alert episode (it fires, is acknowledged, resolves, or fires again while
silenced) becomes one `AlertNotice`. The lifecycle calls `NotificationSink.submit` with the asyncpg
connection of the transaction that changed the alert, so the notice is stored (outbox) exactly when
the change is: a crash between the two can neither lose a notification nor invent one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Severity(StrEnum):
    """The four severities, most urgent first."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class AlertState(StrEnum):
    """Where an episode is in its lifecycle."""

    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """One state change of one alert episode, as delivery needs it.

    `fingerprint` identifies the alert (rule plus identifying labels) across episodes; `episode`
    counts its firings, so (fingerprint, episode, state) is a natural idempotency key.
    `labels` always hold `rule` and `severity`, and `service`, `tenant`, `job_type` where they apply.
    `silenced_by` names the silence that matched when the notice was made: delivery records the
    notice but sends nothing for it.
    """

    alert_id: str
    fingerprint: str
    episode: int
    state: AlertState
    severity: Severity
    summary: str
    description: str
    labels: Mapping[str, str]
    started_at: datetime
    changed_at: datetime
    occurrences: int = 1
    resolved_at: datetime | None = None
    acknowledged_by: str | None = None
    comment: str | None = None
    silenced_by: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NotificationAttempt:
    """One attempt to deliver one notification over one channel."""

    channel: str
    notification_id: str
    attempt: int
    status: str  # "sent", "failed", "suppressed" (silenced) or "pending"
    error: str | None
    duration_ms: float | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ChannelTestResult:
    """What `test_channel` found: delivered or not, and why not."""

    channel: str
    delivered: bool
    detail: str
    duration_ms: float


class NotificationSink(Protocol):
    """Delivery as the lifecycle sees it (implemented by the notification outbox)."""

    async def submit(self, connection: Any, notices: Sequence[AlertNotice]) -> None:
        """Store the notices for delivery inside the caller's transaction (`connection`)."""
        ...

    async def attempts(self, alert_id: str) -> Sequence[NotificationAttempt]:
        """Every delivery attempt made for the alert's episodes, oldest first."""
        ...

    async def test_channel(self, name: str) -> ChannelTestResult:
        """Send a test message over the named channel now; unknown names raise NotFoundError."""
        ...
