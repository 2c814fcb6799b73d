"""The alert lifecycle over gRPC against a real health service, PostgreSQL and Redis: fire, repeat,
acknowledge, resolve (by hand and automatically), new episodes, silences, tenant scope, bad input.
Notices reach the notification sink in the transaction of the change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import pytest
from b2x.monitoring.v1 import alerts_pb2, health_pb2, jobs_pb2

from services.common.runtime import Resources
from services.health.alerts.notice import (
    AlertNotice,
    AlertState,
    ChannelTestResult,
    NotificationAttempt,
    NotificationSink,
)
from services.health.main import build_server
from services.health.registry.config import HealthConfig
from services.health.settings import HealthSettings
from tests.health.alert_helpers import TIMEOUT, alerts_by_rule, append_outcomes, one_alert, outcome
from tests.support import ServiceHarness

FIRING, ACKED, RESOLVED = (
    health_pb2.ALERT_STATUS_FIRING,
    health_pb2.ALERT_STATUS_ACKNOWLEDGED,
    health_pb2.ALERT_STATUS_RESOLVED,
)


class RecordingSink:
    """A NotificationSink that stores each notice through the caller's connection (so only committed
    changes leave a row) and answers attempts and channel tests from memory."""

    def __init__(self) -> None:
        self.submitted: list[AlertNotice] = []
        self.fail_next = False

    async def submit(self, connection: Any, notices: Sequence[AlertNotice]) -> None:
        await connection.execute("CREATE TABLE IF NOT EXISTS health.test_notices (alert_id text, state text)")
        for notice in notices:
            await connection.execute(
                "INSERT INTO health.test_notices VALUES ($1, $2)", notice.alert_id, notice.state.value
            )
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("outbox refused the notice")
        self.submitted.extend(notices)

    async def attempts(self, alert_id: str) -> Sequence[NotificationAttempt]:
        return [
            NotificationAttempt("mail", f"{n.alert_id}:{n.episode}:{n.state}", 1, "sent", None, 12.5, n.changed_at)
            for n in self.submitted
            if n.alert_id == alert_id
        ]

    async def test_channel(self, name: str) -> ChannelTestResult:
        from services.common.errors import NotFoundError

        if name != "mail":
            raise NotFoundError(f"notification channel {name} not found")
        return ChannelTestResult("mail", True, "250 accepted", 3.0)


async def start(harness: ServiceHarness, sink: RecordingSink) -> Any:
    from b2x.monitoring.v1 import alerts_pb2_grpc

    def factory(resources: Resources, config: HealthConfig | None) -> NotificationSink:
        return sink

    settings = harness.settings_for(HealthSettings, health_stream_block_ms=100)
    address = await harness.serve("health", lambda r, s: build_server(r, s, sink=factory), settings)
    return alerts_pb2_grpc.AlertsServiceStub(harness.channel(address))


async def test_an_alert_is_acknowledged_then_resolved_by_hand_and_firing_again_opens_episode_two(
    harness: ServiceHarness,
) -> None:
    sink = RecordingSink()
    stub = await start(harness, sink)
    await append_outcomes(harness, outcome("ERP_STOCK_SYNC", "acme"))
    alert = await one_alert(stub, "jobs.failed", status=FIRING)
    assert [n.state for n in sink.submitted] == [AlertState.FIRING]

    acked = (
        await stub.AcknowledgeAlert(
            alerts_pb2.AcknowledgeAlertRequest(id=alert.id[:8], actor="ops-key", comment="looking at the ERP"),
            timeout=TIMEOUT,
        )
    ).alert
    assert acked.status == ACKED and acked.acknowledged_by == "ops-key"
    assert acked.acknowledge_comment == "looking at the ERP" and acked.HasField("acknowledged_at")

    # A repeat while acknowledged counts, and pages nobody.
    await append_outcomes(harness, outcome("ERP_STOCK_SYNC", "acme"))
    await one_alert(stub, "jobs.failed", occurrences=2, status=ACKED)

    resolved = (
        await stub.ResolveAlert(alerts_pb2.ResolveAlertRequest(id=alert.id, actor="ops-key"), timeout=TIMEOUT)
    ).alert
    assert resolved.status == RESOLVED and resolved.resolved_by == "ops-key"

    await append_outcomes(harness, outcome("ERP_STOCK_SYNC", "acme"))
    again = await one_alert(stub, "jobs.failed", status=FIRING)
    assert again.id == alert.id and again.episode == 2 and again.occurrences == 1

    detail = await stub.GetAlert(alerts_pb2.GetAlertRequest(id=alert.id), timeout=TIMEOUT)
    assert [e.episode for e in detail.episodes] == [2, 1]
    first = detail.episodes[1]
    assert first.status == RESOLVED and first.occurrences == 2 and first.acknowledged_by == "ops-key"
    assert [(n.episode, n.state) for n in sink.submitted] == [
        (1, AlertState.FIRING),
        (1, AlertState.ACKNOWLEDGED),
        (1, AlertState.RESOLVED),
        (2, AlertState.FIRING),
    ]
    notifications = await stub.ListAlertNotifications(
        alerts_pb2.ListAlertNotificationsRequest(alert_id=alert.id), timeout=TIMEOUT
    )
    assert len(notifications.attempts) == 4 and notifications.attempts[0].status == "sent"


async def test_acknowledging_twice_or_a_resolved_alert_is_a_failed_precondition(harness: ServiceHarness) -> None:
    stub = await start(harness, RecordingSink())
    await append_outcomes(harness, outcome("PIM_EXPORT"))
    alert = await one_alert(stub, "jobs.failed")
    ack = alerts_pb2.AcknowledgeAlertRequest(id=alert.id, actor="ops")
    await stub.AcknowledgeAlert(ack, timeout=TIMEOUT)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.AcknowledgeAlert(ack, timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already acknowledged by ops" in (error.value.details() or "")
    await stub.ResolveAlert(alerts_pb2.ResolveAlertRequest(id=alert.id, actor="ops"), timeout=TIMEOUT)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ResolveAlert(alerts_pb2.ResolveAlertRequest(id=alert.id, actor="ops"), timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_change_whose_notice_the_sink_refuses_is_rolled_back_with_it(harness: ServiceHarness) -> None:
    sink = RecordingSink()
    stub = await start(harness, sink)
    await append_outcomes(harness, outcome("PIM_EXPORT"))
    alert = await one_alert(stub, "jobs.failed")
    sink.fail_next = True
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.AcknowledgeAlert(alerts_pb2.AcknowledgeAlertRequest(id=alert.id, actor="ops"), timeout=TIMEOUT)
    still = (await stub.GetAlert(alerts_pb2.GetAlertRequest(id=alert.id), timeout=TIMEOUT)).alert
    assert still.status == FIRING and still.acknowledged_by == ""
    pool = (await harness.resources("health")).pool
    rows = await pool.fetch("SELECT state FROM health.test_notices WHERE alert_id = $1", alert.id)
    assert [r["state"] for r in rows] == ["firing"]  # the refused acknowledgement left no notice


async def test_a_silence_suppresses_notifications_but_the_alert_stays_visible(harness: ServiceHarness) -> None:
    sink = RecordingSink()
    stub = await start(harness, sink)
    silence = (
        await stub.CreateSilence(
            alerts_pb2.CreateSilenceRequest(
                matchers=["job_type=~ERP_.*", "tenant=acme"], duration="2h", comment="ERP maintenance",
                created_by="ops",
            ),
            timeout=TIMEOUT,
        )
    ).silence  # fmt: skip
    assert silence.active and [m.op for m in silence.matchers] == ["=~", "="]
    assert (silence.ends_at.seconds - silence.starts_at.seconds) == 7200

    await append_outcomes(harness, outcome("ERP_STOCK_SYNC", "acme"), outcome("ERP_STOCK_SYNC", "globex"))
    silenced = await one_alert_with(stub, "jobs.failed", tenant="acme")
    loud = await one_alert_with(stub, "jobs.failed", tenant="globex")
    assert silenced.silenced_by == silence.id and silenced.status == FIRING
    assert loud.silenced_by == ""
    by_alert = {n.alert_id: n.silenced_by for n in sink.submitted}
    assert by_alert == {silenced.id: silence.id, loud.id: None}

    expired = (
        await stub.ExpireSilence(alerts_pb2.ExpireSilenceRequest(id=silence.id, actor="ops"), timeout=TIMEOUT)
    ).silence
    assert not expired.active and expired.expired_by == "ops"
    listed = await stub.ListSilences(alerts_pb2.ListSilencesRequest(), timeout=TIMEOUT)
    assert list(listed.silences) == []
    listed = await stub.ListSilences(alerts_pb2.ListSilencesRequest(include_expired=True), timeout=TIMEOUT)
    assert [s.id for s in listed.silences] == [silence.id]
    # After expiry the acknowledgement is notified.
    await stub.AcknowledgeAlert(alerts_pb2.AcknowledgeAlertRequest(id=silenced.id, actor="ops"), timeout=TIMEOUT)
    assert sink.submitted[-1].silenced_by is None


async def one_alert_with(stub: Any, rule: str, tenant: str) -> health_pb2.Alert:
    from tests.health.alert_helpers import eventually

    async def probe() -> health_pb2.Alert | None:
        found = [a for a in await alerts_by_rule(stub, rule) if a.tenant_id == tenant]
        return found[0] if found else None

    return await eventually(probe)


async def test_a_tenant_scope_sees_its_own_alerts_and_those_of_no_tenant_only(harness: ServiceHarness) -> None:
    stub = await start(harness, RecordingSink())
    await append_outcomes(
        harness, outcome("ERP_STOCK_SYNC", "acme"), outcome("ERP_STOCK_SYNC", "globex"), outcome("ERP_STOCK_SYNC")
    )
    await one_alert_with(stub, "jobs.failed", tenant="")
    await one_alert_with(stub, "jobs.failed", tenant="globex")
    acme = await one_alert_with(stub, "jobs.failed", tenant="acme")
    seen = await alerts_by_rule(stub, "jobs.failed", tenant_scope="globex")
    assert sorted(a.tenant_id for a in seen) == ["", "globex"]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetAlert(alerts_pb2.GetAlertRequest(id=acme.id, tenant_scope="globex"), timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.AcknowledgeAlert(
            alerts_pb2.AcknowledgeAlertRequest(id=acme.id, actor="globex-key", tenant_scope="globex"), timeout=TIMEOUT
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND

    # A tenant's silence is scoped to the tenant whatever its matchers say.
    scoped = (
        await stub.CreateSilence(
            alerts_pb2.CreateSilenceRequest(
                matchers=["job_type=ERP_STOCK_SYNC"], duration="1h", comment="ours", created_by="globex-key",
                tenant_scope="globex",
            ),
            timeout=TIMEOUT,
        )
    ).silence  # fmt: skip
    assert scoped.tenant_id == "globex"
    await append_outcomes(harness, outcome("ERP_STOCK_SYNC", "acme", status=jobs_pb2.JOB_STATUS_COMPLETED))
    await append_outcomes(harness, outcome("ERP_STOCK_SYNC", "acme"))  # episode 2 of acme's: not silenced
    again = await one_alert_with(stub, "jobs.failed", tenant="acme")
    for _ in range(50):
        again = await one_alert_with(stub, "jobs.failed", tenant="acme")
        if again.episode == 2:
            break
        import asyncio

        await asyncio.sleep(0.1)
    assert again.episode == 2 and again.silenced_by == ""
    others = await stub.ListSilences(alerts_pb2.ListSilencesRequest(tenant_scope="acme"), timeout=TIMEOUT)
    assert list(others.silences) == []
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ExpireSilence(
            alerts_pb2.ExpireSilenceRequest(id=scoped.id, actor="acme-key", tenant_scope="acme"), timeout=TIMEOUT
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"matchers": ["service crm"], "duration": "2h", "comment": "x"}, "matchers[0]"),
        ({"matchers": ["job_type=~(unclosed"], "duration": "2h", "comment": "x"}, "matchers[0]"),
        ({"matchers": [], "duration": "2h", "comment": "x"}, "matchers"),
        ({"matchers": ["service=crm"], "duration": "two hours", "comment": "x"}, "duration"),
        ({"matchers": ["service=crm"], "duration": "400d", "comment": "x"}, "duration"),
        ({"matchers": ["service=crm"], "duration": "2h", "comment": ""}, "comment"),
    ],
)
async def test_a_bad_silence_is_invalid_argument_naming_the_field(
    harness: ServiceHarness, request_fields: dict[str, Any], field: str
) -> None:
    stub = await start(harness, RecordingSink())
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.CreateSilence(alerts_pb2.CreateSilenceRequest(created_by="ops", **request_fields), timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith(f"{field}:")


async def test_unknown_alerts_channels_and_bad_filters_are_answered_precisely(harness: ServiceHarness) -> None:
    stub = await start(harness, RecordingSink())
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetAlert(alerts_pb2.GetAlertRequest(id="0123abcd"), timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetAlert(alerts_pb2.GetAlertRequest(id="not an id"), timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ListAlerts(
            alerts_pb2.ListAlertsRequest(filter=alerts_pb2.AlertFilter(severities=["loud"])), timeout=TIMEOUT
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith("filter.severities:")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ListAlerts(alerts_pb2.ListAlertsRequest(after="garbage"), timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.TestNotificationChannel(alerts_pb2.TestNotificationChannelRequest(name="pager"), timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    result = await stub.TestNotificationChannel(alerts_pb2.TestNotificationChannelRequest(name="mail"), timeout=TIMEOUT)
    assert result.delivered and result.detail == "250 accepted"


async def test_pages_of_alerts_follow_the_cursor_newest_change_first(harness: ServiceHarness) -> None:
    stub = await start(harness, RecordingSink())
    await append_outcomes(harness, *(outcome(f"TYPE_{i}") for i in range(5)))

    async def five() -> bool:
        return len(await alerts_by_rule(stub, "jobs.failed")) == 5

    from tests.health.alert_helpers import eventually

    await eventually(five)
    first = await stub.ListAlerts(alerts_pb2.ListAlertsRequest(first=3), timeout=TIMEOUT)
    assert first.total == 5 and len(first.alerts) == 3 and first.next_cursor
    rest = await stub.ListAlerts(alerts_pb2.ListAlertsRequest(first=3, after=first.next_cursor), timeout=TIMEOUT)
    assert len(rest.alerts) == 2 and not rest.next_cursor
    ids = [a.id for a in first.alerts] + [a.id for a in rest.alerts]
    assert len(set(ids)) == 5
    rules = await stub.ListAlertRules(alerts_pb2.ListAlertRulesRequest(), timeout=TIMEOUT)
    assert {r.name for r in rules.rules} >= {"jobs.failure_rate", "jobs.failed", "service.offline", "resource.cpu_high"}


async def test_history_is_kept_a_year_and_counted_failures_a_day(harness: ServiceHarness) -> None:
    from services.health.alerts.feeds import BusAlertAnnouncer
    from services.health.alerts.repository import PostgresAlertRepository
    from services.health.alerts.service import AlertService

    stub = await start(harness, RecordingSink())
    await append_outcomes(harness, outcome("OLD_SYNC"), outcome("RECENT_SYNC"))
    old = await one_alert_with_rule_type(stub, "OLD_SYNC")
    recent = await one_alert_with_rule_type(stub, "RECENT_SYNC")
    for alert in (old, recent):
        await stub.ResolveAlert(alerts_pb2.ResolveAlertRequest(id=alert.id, actor="ops"), timeout=TIMEOUT)
    resources = await harness.resources("health")
    pool = resources.pool
    await pool.execute(
        "UPDATE health.alert_episodes SET changed_at = changed_at - interval '400 days' WHERE alert_id = $1::uuid",
        old.id,
    )
    await pool.execute("UPDATE health.job_failures SET failed_at = failed_at - interval '2 days' "
                       "WHERE job_type = 'OLD_SYNC'")  # fmt: skip
    service = AlertService(PostgresAlertRepository(pool), RecordingSink(), BusAlertAnnouncer(resources.bus))
    await service.purge()
    remaining = await pool.fetch("SELECT id::text FROM health.alerts")
    assert [r["id"] for r in remaining] == [recent.id]
    assert [r["job_type"] for r in await pool.fetch("SELECT job_type FROM health.job_failures")] == ["RECENT_SYNC"]


async def one_alert_with_rule_type(stub: Any, job_type: str) -> health_pb2.Alert:
    from tests.health.alert_helpers import eventually

    async def probe() -> health_pb2.Alert | None:
        found = [a for a in await alerts_by_rule(stub, "jobs.failed") if a.labels["job_type"] == job_type]
        return found[0] if found else None

    return await eventually(probe)
