"""The two halves together: rules and lifecycle hand their notices to the real notification outbox, and
a real HTTP receiver gets Alertmanager's webhook payload; the alert's notification history shows it."""

from __future__ import annotations

from pathlib import Path

from b2x.monitoring.v1 import alerts_pb2

from tests.health.alert_helpers import TIMEOUT, append_outcomes, eventually, one_alert, outcome, start_alerting
from tests.health.delivery_support import FAST_ROUTE, HttpReceiver
from tests.support import ServiceHarness


async def test_failing_jobs_reach_a_webhook_and_the_attempt_shows_in_the_alert(
    harness: ServiceHarness, tmp_path: Path
) -> None:
    async with HttpReceiver().running() as receiver:
        config = tmp_path / "services.yaml"
        config.write_text(
            f"services: []\nnotifications:\n  channels:\n    webhook: {{url: '{receiver.url}/hook'}}\n{FAST_ROUTE}"
        )
        _, alerts = await start_alerting(harness, config_file=config)
        await append_outcomes(harness, outcome("ERP_STOCK_SYNC", "acme"))
        alert = await one_alert(alerts, "jobs.failed")

        async def delivered() -> bool:
            return len(receiver.requests) >= 1

        await eventually(delivered)
        body = receiver.requests[0]["body"]
        (sent,) = body["alerts"]
        assert body["version"] == "4" and body["status"] == "firing"
        assert sent["labels"]["rule"] == "jobs.failed" and sent["labels"]["job_type"] == "ERP_STOCK_SYNC"
        assert sent["labels"]["tenant"] == "acme"

        async def recorded() -> list[alerts_pb2.NotificationAttempt]:
            answer = await alerts.ListAlertNotifications(
                alerts_pb2.ListAlertNotificationsRequest(alert_id=alert.id), timeout=TIMEOUT
            )
            return [a for a in answer.attempts if a.status == "sent"]

        (attempt,) = await eventually(recorded)
        assert attempt.channel == "webhook"

        # Resolving by hand sends the resolution too.
        await alerts.ResolveAlert(alerts_pb2.ResolveAlertRequest(id=alert.id, actor="ops"), timeout=TIMEOUT)

        async def resolved_sent() -> bool:
            return any(r["body"]["status"] == "resolved" for r in receiver.requests)

        await eventually(resolved_sent)
