"""`NotificationSink` as the lifecycle uses it: the outbox write, the attempt history, channel tests."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.errors import NotFoundError
from services.health.alerts.delivery.domain import Channel, DeliveryError, Message, MessageAlert, rfc3339
from services.health.alerts.delivery.outbox import Outbox, insert_notices
from services.health.alerts.notice import AlertNotice, ChannelTestResult, NotificationAttempt


def probe_message(channel: str, dashboard_url: str = "") -> Message:
    """One harmless alert that says it is a test (Alertmanager lets it end by itself a minute later)."""
    now = datetime.now(UTC)
    alert = MessageAlert(
        alert_id="test",
        fingerprint="b2x-test-notification",
        status="firing",
        state="firing",
        severity="info",
        summary="Test notification from B2X Monitoring",
        description=f"Sent by testNotificationChannel({channel!r}); nothing is wrong.",
        labels={"rule": "test_notification", "severity": "info"},
        annotations={},
        started_at=rfc3339(now) or "",
        ended_at=rfc3339(now + timedelta(minutes=1)),
    )
    key = f"test/{channel}/{now.timestamp():.6f}"
    return Message(key, channel, f"test:{channel}", {"rule": "test_notification"}, [alert], dashboard_url, test=True)


class OutboxSink:
    """The delivery side of the seam (services/health/alerts/notice.py)."""

    def __init__(self, outbox: Outbox, channels: Mapping[str, Channel], dashboard_url: str = "") -> None:
        self._outbox = outbox
        self._channels = channels
        self._dashboard_url = dashboard_url

    async def submit(self, connection: Any, notices: Sequence[AlertNotice]) -> None:
        await insert_notices(connection, notices)

    async def attempts(self, alert_id: str) -> Sequence[NotificationAttempt]:
        return await self._outbox.attempts(alert_id)

    async def test_channel(self, name: str) -> ChannelTestResult:
        channel = self._channels.get(name)
        if channel is None:
            known = ", ".join(sorted(self._channels)) or "none configured"
            raise NotFoundError(f"no notification channel named {name!r} (channels: {known})")
        started = time.monotonic()
        try:
            detail = await channel.send(probe_message(name, self._dashboard_url))
            delivered = True
        except DeliveryError as error:
            detail, delivered = error.detail, False
        return ChannelTestResult(name, delivered, detail, (time.monotonic() - started) * 1000)
