"""Grouping, acknowledgement, resolution and silences, delivered to a real HTTP receiver (Alertmanager webhook)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.health.alerts.delivery.outbox import Outbox
from services.health.alerts.notice import AlertState, Severity
from services.health.registry.config import parse_config
from tests.health.delivery_support import (
    FAST_ROUTE,
    HttpReceiver,
    SmtpServer,
    count,
    delivery,
    eventually,
    notice,
    submit,
)
from tests.support import ServiceHarness


@pytest.fixture
async def pool(harness: ServiceHarness):  # type: ignore[no-untyped-def]
    return (await harness.resources("health")).pool


def _config(url: str, route: str = FAST_ROUTE) -> str:
    return f"  channels:\n    webhook: {{url: '{url}/hook'}}\n{route}"


async def test_forty_failed_jobs_of_one_kind_make_one_mail_and_one_webhook_call_listing_them_all(harness, pool) -> None:
    """40 alerts of one rule within the group_wait go out as ONE e-mail and ONE webhook call listing all 40,
    not 40 of each; the sent counter moves by one per channel."""
    smtp = SmtpServer().start()
    sent_before = {c: _sent(c) for c in ("email", "webhook")}
    async with HttpReceiver().running() as receiver:
        config = (
            f"  channels:\n    webhook: {{url: '{receiver.url}/hook'}}\n"
            f"    email: {{to: [ops@example.test], host: 127.0.0.1, port: {smtp.port}, security: none}}\n{FAST_ROUTE}"
        )
        sink, worker = delivery(harness.settings, pool, config)
        worker.start()
        try:
            for batch in range(4):
                await submit(pool, sink, [notice(f"a{batch}-{i}", job_type="export") for i in range(10)])
            await eventually(
                lambda: len(receiver.requests) >= 1 and len(smtp.received) >= 1, what="the grouped messages"
            )
            await asyncio.sleep(1.5)  # nothing else follows: every alert was in the first message
        finally:
            await worker.stop()
            smtp.stop()
    assert len(receiver.requests) == 1 and len(smtp.received) == 1
    body = receiver.requests[0]["body"]
    assert len(body["alerts"]) == 40 and body["status"] == "firing" and body["groupLabels"] == {"rule": "job_failed"}
    assert smtp.received[0]["Subject"] == "[B2X FIRING:40] job_failed — 40 alerts"
    text = smtp.received[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert all(f"job_failed a{b}-{i} " in text for b in range(4) for i in range(10))
    assert {c: _sent(c) - sent_before[c] for c in sent_before} == {"email": 1, "webhook": 1}
    attempts = await sink.attempts("a3-9")
    assert sorted((a.channel, a.status, a.attempt) for a in attempts) == [("email", "sent", 1), ("webhook", "sent", 1)]


def _sent(channel: str) -> float:
    return REGISTRY.get_sample_value("b2x_notifications_sent_total", {"channel": channel}) or 0.0


async def test_unacknowledged_alerts_repeat_and_an_acknowledgement_stops_the_repeats(harness, pool) -> None:
    """A firing alert is re-sent every repeat_interval until acknowledged; after the ack nothing more is sent."""
    route = "  route: {group_wait: 0.2s, group_interval: 0.5s, repeat_interval: 1s}\n"
    async with HttpReceiver().running() as receiver:
        sink, worker = delivery(harness.settings, pool, _config(receiver.url, route))
        worker.start()
        try:
            await submit(pool, sink, [notice("r1")])
            await eventually(lambda: len(receiver.requests) >= 2, what="a repeat", timeout=10)
            await submit(pool, sink, [notice("r1", AlertState.ACKNOWLEDGED, acknowledged_by="ops")])
            await asyncio.sleep(1.2)  # a repeat already being sent may land
            after_ack = len(receiver.requests)
            await asyncio.sleep(2.5)
        finally:
            await worker.stop()
    assert len(receiver.requests) == after_ack
    assert all(r["body"]["alerts"][0]["status"] == "firing" for r in receiver.requests)


async def test_a_resolution_is_told_once_and_ends_the_group(harness, pool) -> None:
    """firing → message; resolved → one 'resolved' message with endsAt set; no repeats afterwards."""
    async with HttpReceiver().running() as receiver:
        sink, worker = delivery(harness.settings, pool, _config(receiver.url))
        worker.start()
        try:
            await submit(pool, sink, [notice("x1", severity=Severity.CRITICAL)])
            await eventually(lambda: len(receiver.requests) == 1, what="the firing message")
            await submit(pool, sink, [notice("x1", AlertState.RESOLVED, severity=Severity.CRITICAL)])
            await eventually(lambda: len(receiver.requests) == 2, what="the resolved message")
            await asyncio.sleep(3.5)  # past repeat_interval: nothing repeats a resolved alert
        finally:
            await worker.stop()
    assert len(receiver.requests) == 2
    resolved = receiver.requests[1]["body"]
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["status"] == "resolved" and resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    assert await count(pool, "SELECT count(*) FROM health.notification_groups") == 0


async def test_a_silenced_alert_is_recorded_as_suppressed_and_never_sent(harness, pool) -> None:
    """The silenced notice shows in the alert's history as 'suppressed' with the silence named; the receiver
    gets nothing, and its later resolution (never told) is not sent either."""
    async with HttpReceiver().running() as receiver:
        sink, worker = delivery(harness.settings, pool, _config(receiver.url))
        worker.start()
        try:
            await submit(pool, sink, [notice("s1", silenced_by="silence-42")])
            await eventually(lambda: sink.attempts("s1"), what="the suppressed record")  # type: ignore[arg-type,return-value]
            await submit(pool, sink, [notice("s1", AlertState.RESOLVED)])
            await asyncio.sleep(2)
        finally:
            await worker.stop()
    assert receiver.requests == []
    (attempt,) = await sink.attempts("s1")
    assert (attempt.status, attempt.error) == ("suppressed", "silenced by silence-42")


async def test_routes_send_matching_alerts_to_their_own_channels_with_their_own_grouping(harness, pool) -> None:
    """A critical alert goes to the pager route's receiver; others go to the root's; group_by splits by service."""
    async with HttpReceiver().running() as ops, HttpReceiver().running() as pager:
        config = (
            f"  channels:\n    ops: {{type: webhook, url: '{ops.url}'}}\n    pager: {{type: webhook, url: '{pager.url}'}}\n"
            "  route:\n    channels: [ops]\n    group_by: [rule, service]\n    group_wait: 0.3s\n"
            "    routes:\n      - {match: {severity: critical}, channels: [pager]}\n"
        )
        sink, worker = delivery(harness.settings, pool, config)
        worker.start()
        try:
            await submit(pool, sink, [notice("c1", severity=Severity.CRITICAL, service="erp")])
            await submit(pool, sink, [notice(f"e{i}", service=s) for i, s in enumerate(["erp", "erp", "crm"])])
            await eventually(lambda: len(pager.requests) == 1 and len(ops.requests) == 2, what="three messages")
        finally:
            await worker.stop()
    assert [a["labels"]["severity"] for a in pager.requests[0]["body"]["alerts"]] == ["critical"]
    sizes = sorted(len(r["body"]["alerts"]) for r in ops.requests)
    assert sizes == [1, 2]


async def test_two_workers_never_send_one_notification_twice(harness, pool) -> None:
    """Two health replicas' workers on one outbox: every alert is delivered exactly once."""
    async with HttpReceiver().running() as receiver:
        config = (
            f"  channels:\n    webhook: {{url: '{receiver.url}'}}\n"
            "  route: {group_by: [service], group_wait: 0.2s, group_interval: 0.5s, repeat_interval: 1h}\n"
        )
        sink, first = delivery(harness.settings, pool, config)
        _, second = delivery(harness.settings, pool, config)
        first.start()
        second.start()
        try:
            for round_ in range(5):
                await submit(pool, sink, [notice(f"t{round_}-{i}", service=f"svc{i}") for i in range(30)])
                await asyncio.sleep(0.1)
            await eventually(
                lambda: sum(len(r["body"]["alerts"]) for r in receiver.requests) >= 150, what="150 alerts", timeout=20
            )
            await asyncio.sleep(1)
        finally:
            await first.stop()
            await second.stop()
    keys = [r["headers"]["idempotency-key"] for r in receiver.requests]
    assert len(keys) == len(set(keys))
    told = [a["annotations"]["alert_id"] for r in receiver.requests for a in r["body"]["alerts"]]
    # Each alert is told once as new; a later message of its group may list it again, still firing.
    assert set(told) == {f"t{r}-{i}" for r in range(5) for i in range(30)}
    assert await count(pool, "SELECT count(*) FROM health.notifications WHERE status = 'sent'") == len(keys)


async def test_a_channel_removed_from_the_file_leaves_its_groups_behind(harness, pool) -> None:
    """Groups made for a channel that is no longer configured are dropped at their flush, not sent anywhere."""
    async with HttpReceiver().running() as receiver:
        sink, _ = delivery(harness.settings, pool, _config(receiver.url))
        await submit(pool, sink, [notice("gone1")])
        await Outbox(
            pool, parse_config("notifications:\n" + _config(receiver.url), Path("x")).notifications
        ).route_pending()
        assert await count(pool, "SELECT count(*) FROM health.notification_groups") == 1
        _, worker = delivery(
            harness.settings, pool, f"  channels:\n    other: {{type: webhook, url: '{receiver.url}'}}\n{FAST_ROUTE}"
        )
        worker.start()
        try:
            await eventually(lambda: pool.fetchval("SELECT count(*) = 0 FROM health.notification_groups"), what="drop")
        finally:
            await worker.stop()
    assert receiver.requests == []


async def test_group_wait_then_group_interval_pace_the_messages_of_a_group(harness, pool) -> None:
    """The first message waits group_wait (collecting what comes meanwhile); a later alert of the same group
    waits for group_interval after that message, then comes with the still-firing ones."""
    route = "  route: {group_wait: 1s, group_interval: 2s, repeat_interval: 1h}\n"
    async with HttpReceiver().running() as receiver:
        sink, worker = delivery(harness.settings, pool, _config(receiver.url, route))
        worker.start()
        try:
            submitted = time.monotonic()
            await submit(pool, sink, [notice("p1")])
            await asyncio.sleep(0.4)
            await submit(pool, sink, [notice("p2")])
            await eventually(lambda: len(receiver.requests) == 1, what="the first message")
            await submit(pool, sink, [notice("p3")])
            await eventually(lambda: len(receiver.requests) == 2, what="the second message")
        finally:
            await worker.stop()
    first, second = receiver.requests
    assert first["at"] - submitted >= 1.0
    assert [a["annotations"]["alert_id"] for a in first["body"]["alerts"]] == ["p1", "p2"]
    assert second["at"] - first["at"] >= 1.8  # group_interval runs from flush to flush; a send takes a few ms
    assert [a["annotations"]["alert_id"] for a in second["body"]["alerts"]] == ["p1", "p2", "p3"]


async def test_history_past_the_retention_is_pruned_and_pending_work_stays(harness, pool) -> None:
    """prune() deletes delivered notifications and routed notices older than keep_days, nothing newer or pending."""
    async with HttpReceiver().running() as receiver:
        sink, worker = delivery(harness.settings, pool, _config(receiver.url))
        worker.start()
        try:
            await submit(pool, sink, [notice("old1", severity=Severity.CRITICAL)])
            await eventually(lambda: len(receiver.requests) == 1, what="the firing message")
        finally:
            await worker.stop()
        outbox = Outbox(pool, parse_config("notifications:\n" + _config(receiver.url), Path("x")).notifications)
        await submit(pool, sink, [notice("new1")])  # not routed yet: pending work
        await pool.execute("UPDATE health.notifications SET created_at = now() - interval '400 days'")
        await pool.execute(
            "UPDATE health.notification_notices SET submitted_at = now() - interval '400 days' WHERE routed_at IS NOT NULL"
        )
        delivered = await count(pool, "SELECT count(*) FROM health.notifications WHERE status <> 'pending'")
        assert delivered >= 1
        await outbox.prune(366)
    assert await count(pool, "SELECT count(*) FROM health.notifications WHERE status <> 'pending'") == 0
    assert await count(pool, "SELECT count(*) FROM health.notification_notices WHERE routed_at IS NULL") == 1
