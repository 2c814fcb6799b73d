"""Webhook, Slack and Alertmanager channels against real HTTP servers: failures retried and recorded, a
bad channel never holding up a good one, restarts without duplicates or losses, and Debian's Alertmanager."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from services.health.alerts.delivery.outbox import Outbox
from services.health.alerts.notice import AlertState, Severity
from services.health.registry.config import parse_config
from tests.health.delivery_support import FAST_ROUTE, HttpReceiver, count, delivery, eventually, notice, submit
from tests.support import ServiceHarness


@pytest.fixture
async def pool(harness: ServiceHarness):  # type: ignore[no-untyped-def]
    return (await harness.resources("health")).pool


def _webhook(url: str, extra: str = "") -> str:
    return f"  channels:\n    webhook: {{url: '{url}/hook'{extra}}}\n{FAST_ROUTE}"


async def test_a_webhook_answering_500_is_retried_with_backoff_and_each_attempt_recorded(harness, pool) -> None:
    """500, 500, then 200: three attempts in the alert's history (failed, failed, sent) with the server's answer,
    growing gaps between them, and the body delivered once."""
    async with HttpReceiver(script=[500, 500]).running() as receiver:
        sink, worker = delivery(harness.settings, pool, _webhook(receiver.url))
        worker.start()
        try:
            await submit(pool, sink, [notice("h1")])
            await eventually(lambda: len(receiver.requests) == 1, what="delivery after two 500s")
            await asyncio.sleep(1)
        finally:
            await worker.stop()
    attempts = await sink.attempts("h1")
    assert [a.status for a in attempts] == ["failed", "failed", "sent"] and [a.attempt for a in attempts] == [1, 2, 3]
    assert "answered 500" in (attempts[0].error or "") and attempts[2].duration_ms is not None
    first_gap = (attempts[1].at - attempts[0].at).total_seconds()
    second_gap = (attempts[2].at - attempts[1].at).total_seconds()
    assert first_gap >= 0.2 and second_gap >= first_gap * 1.2  # 0.3 s then 0.6 s, ±20 % jitter
    assert receiver.answered == [500, 500, 200]


async def test_a_hanging_webhook_times_out_is_retried_and_never_holds_up_another_channel(harness, pool) -> None:
    """One receiver hangs past the timeout twice; the other channel's message arrives meanwhile; then the slow
    one recovers and gets its message, once."""
    async with HttpReceiver(script=[3.0, 3.0]).running() as slow, HttpReceiver().running() as fast:
        config = (
            f"  channels:\n    slow: {{type: webhook, url: '{slow.url}', timeout_seconds: 0.5}}\n"
            f"    fast: {{type: webhook, url: '{fast.url}'}}\n{FAST_ROUTE}"
        )
        sink, worker = delivery(harness.settings, pool, config)
        worker.start()
        try:
            started = time.monotonic()
            await submit(pool, sink, [notice("hang1", severity=Severity.CRITICAL)])
            await eventually(lambda: len(fast.requests) == 1, what="the healthy channel")
            fast_after = time.monotonic() - started
            await eventually(lambda: len(slow.requests) == 1, what="the slow channel after recovery", timeout=20)
        finally:
            await worker.stop()
    assert fast_after < 3
    slow_attempts = [a for a in await sink.attempts("hang1") if a.channel == "slow"]
    assert [a.status for a in slow_attempts][:2] == ["failed", "failed"] and slow_attempts[-1].status == "sent"
    assert "did not answer within 0.5 s" in (slow_attempts[0].error or "")


async def test_the_webhook_body_is_alertmanagers_payload_version_4(harness, pool) -> None:
    """Every field of Alertmanager's webhook payload v4, with Alertmanager's conventions (alertname, endsAt of
    a firing alert = 0001-01-01), headers from the file with references resolved, and the idempotency key."""
    async with HttpReceiver().running() as receiver:
        extra = ", headers: {Authorization: 'Bearer ${HOOK_TOKEN}'}"
        sink, worker = delivery(harness.settings, pool, _webhook(receiver.url, extra), HOOK_TOKEN="t0ken")
        worker.start()
        try:
            await submit(pool, sink, [notice("w1", service="crm", tenant="acme")])
            await eventually(lambda: len(receiver.requests) == 1, what="the webhook call")
        finally:
            await worker.stop()
    request = receiver.requests[0]
    assert request["path"] == "/hook" and request["headers"]["authorization"] == "Bearer t0ken"
    assert request["headers"]["idempotency-key"].startswith("g")
    body = request["body"]
    assert set(body) == {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                         "commonLabels", "commonAnnotations", "externalURL", "alerts"}  # fmt: skip
    assert (body["version"], body["status"], body["receiver"], body["truncatedAlerts"]) == ("4", "firing", "webhook", 0)
    (alert,) = body["alerts"]
    assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert alert["labels"] == {"alertname": "job_failed", "rule": "job_failed", "severity": "error", "service": "crm",
                               "tenant": "acme"}  # fmt: skip
    assert alert["endsAt"] == "0001-01-01T00:00:00Z" and alert["fingerprint"] == "fp-w1"
    assert alert["annotations"]["summary"] == "job_failed w1" and alert["annotations"]["alert_id"] == "w1"


async def test_slack_gets_a_block_kit_message(harness, pool) -> None:
    """An incoming-webhook body: `text` fallback plus header, a section and a context per alert, and the CLI hint."""
    async with HttpReceiver().running() as receiver:
        config = f"  dashboard_url: http://dash.test\n  channels:\n    slack: {{webhook_url: '${{SLACK_URL}}'}}\n{FAST_ROUTE}"
        sink, worker = delivery(harness.settings, pool, config, SLACK_URL=f"{receiver.url}/services/T0/B0/x")
        worker.start()
        try:
            await submit(pool, sink, [notice("sl1", severity=Severity.CRITICAL), notice("sl2")])
            await eventually(lambda: len(receiver.requests) == 1, what="the Slack message")
            result = await sink.test_channel("slack")
        finally:
            await worker.stop()
    body = receiver.requests[0]["body"]
    assert body["text"].startswith("[B2X FIRING:2]")
    kinds = [block["type"] for block in body["blocks"]]
    assert kinds == ["header", "section", "context", "section", "context", "divider", "context"]
    assert "<http://dash.test/#/alerts/sl1|job_failed sl1>" in body["blocks"][1]["text"]["text"]
    assert (
        body["blocks"][1]["text"]["type"] == "mrkdwn"
        and "b2c monitor alerts" in body["blocks"][-1]["elements"][0]["text"]
    )
    assert result.delivered and len(receiver.requests) == 2


async def test_a_graceful_restart_mid_send_sends_nothing_twice(harness, pool) -> None:
    """The health service stops while a webhook call is in flight: stop waits for it and records it, and the
    next worker (the restarted service) does not send it again."""
    async with HttpReceiver().running() as receiver:
        original = receiver.handle

        async def slow_ok(request):  # type: ignore[no-untyped-def]
            await asyncio.sleep(1.0)
            return await original(request)

        receiver.handle = slow_ok  # type: ignore[method-assign]
        sink, worker = delivery(harness.settings, pool, _webhook(receiver.url))
        worker.start()
        await submit(pool, sink, [notice("rs1")])
        await eventually(lambda: pool.fetchval("SELECT count(*) > 0 FROM health.notifications WHERE leased_by IS NOT NULL"),
                         what="a send in flight")  # fmt: skip
        await worker.stop()
        assert len(receiver.requests) == 1
        _, restarted = delivery(harness.settings, pool, _webhook(receiver.url))
        restarted.start()
        await asyncio.sleep(1.5)
        await restarted.stop()
    assert len(receiver.requests) == 1
    assert [a.status for a in await sink.attempts("rs1")] == ["sent"]


async def test_a_send_lost_with_its_process_is_taken_over_when_the_lease_runs_out(harness, pool) -> None:
    """A replica claimed a message and died before sending it: after its lease the next worker sends it (with
    the same idempotency key), so nothing is lost."""
    async with HttpReceiver().running() as receiver:
        text = _webhook(receiver.url)
        sink, worker = delivery(harness.settings, pool, text)
        await submit(pool, sink, [notice("lost1")])
        outbox = Outbox(pool, parse_config("notifications:\n" + text, Path("x")).notifications)
        await outbox.route_pending()
        await asyncio.sleep(0.6)
        assert await outbox.flush_due() == 1
        (claimed,) = await outbox.claim("webhook", "replica-that-dies", 10, lease_seconds=1.5)
        worker.start()
        try:
            await asyncio.sleep(0.5)
            assert receiver.requests == []  # leased to the dead replica
            await eventually(lambda: len(receiver.requests) == 1, what="the takeover")
        finally:
            await worker.stop()
    assert receiver.requests[0]["headers"]["idempotency-key"] == claimed.message.idempotency_key
    assert await count(pool, "SELECT count(*) FROM health.notifications WHERE status = 'sent'") == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.skipif(
    shutil.which("prometheus-alertmanager") is None and shutil.which("alertmanager") is None,
    reason="Debian's prometheus-alertmanager is not installed (.ci/run installs it: apt-get install prometheus-alertmanager)",
)
async def test_forwarding_to_debians_alertmanager_and_its_webhook_matches_ours(harness, pool, tmp_path: Path) -> None:
    """The alertmanager channel POSTs to a real Alertmanager's /api/v2/alerts; Alertmanager then calls a webhook
    with its own payload, whose shape is exactly the one our webhook channel sends; a resolution reaches it too."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert binary is not None
    async with HttpReceiver().running() as am_hook, HttpReceiver().running() as our_hook:
        (tmp_path / "am.yml").write_text(
            "route: {receiver: hook, group_by: [alertname], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}\n"
            f"receivers:\n  - name: hook\n    webhook_configs: [{{url: '{am_hook.url}/am', send_resolved: true}}]\n"
        )
        port = _free_port()
        process = subprocess.Popen(  # noqa: ASYNC220 - started once; the test waits on HTTP, not on it
            [binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            async with httpx.AsyncClient() as client:

                async def ready() -> bool:
                    with contextlib.suppress(httpx.HTTPError):
                        return (await client.get(f"http://127.0.0.1:{port}/-/ready")).status_code == 200
                    return False

                await eventually(ready, what="Alertmanager ready", timeout=30)
            config = (
                f"  channels:\n    am: {{type: alertmanager, url: 'http://127.0.0.1:{port}'}}\n"
                f"    webhook: {{url: '{our_hook.url}/ours'}}\n{FAST_ROUTE}"
            )
            sink, worker = delivery(harness.settings, pool, config)
            worker.start()
            try:
                await submit(pool, sink, [notice("am1", severity=Severity.CRITICAL, service="crm")])
                await eventually(lambda: len(am_hook.requests) >= 1 and len(our_hook.requests) >= 1,
                                 what="Alertmanager's webhook call", timeout=30)  # fmt: skip
                await submit(
                    pool, sink, [notice("am1", AlertState.RESOLVED, severity=Severity.CRITICAL, service="crm")]
                )
                await eventually(lambda: any(r["body"]["status"] == "resolved" for r in am_hook.requests),
                                 what="the resolution through Alertmanager", timeout=30)  # fmt: skip
            finally:
                await worker.stop()
        finally:
            process.terminate()
            process.wait(10)
    theirs, ours = am_hook.requests[0]["body"], our_hook.requests[0]["body"]
    assert set(theirs) == set(ours) and theirs["version"] == ours["version"] == "4"
    assert set(theirs["alerts"][0]) == set(ours["alerts"][0])
    assert theirs["alerts"][0]["labels"] == ours["alerts"][0]["labels"]
    assert theirs["alerts"][0]["annotations"]["alert_id"] == "am1"
    assert next(a.status for a in await sink.attempts("am1") if a.channel == "am") == "sent"
