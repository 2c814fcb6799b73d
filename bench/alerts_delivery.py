"""Notification delivery: critical alert → e-mail accepted by a real SMTP server (budget ≤ 30 s, with the
default group_wait), and 1000 alert state changes a minute delivered exactly once with the health service
under half a core.

Starts PostgreSQL and Redis (embedded unless B2X_BENCH_DATABASE_URL / _REDIS_URL are set) and the health
service as a process, with a configuration file whose channels are an aiosmtpd SMTP server and an HTTP
webhook receiver, both run by this process. Alert state changes enter the outbox the way the alert
lifecycle hands them over (`NotificationSink.submit` inside a transaction).

1. Latency: three critical alerts, one at a time, each a new group (so each waits the default group_wait
   of 10 s): time from the commit to the SMTP server accepting the mail.
2. Load: for `--minutes` (default 10) minutes, 1000 changes a minute (new alerts firing across 5 rules,
   10 job types and 3 tenants, acknowledgements, resolutions, some silenced), routed with group_by [rule,
   job_type] and group_interval 30 s to both channels. Afterwards, once the outbox is drained: every
   notification the outbox sent reached its receiver exactly once (idempotency keys counted on arrival),
   every alert that fired unsilenced reached both channels, silenced ones only as suppressed records; and
   the health process's CPU time over the load period ÷ wall time.

    .venv/bin/python -m bench.alerts_delivery [--minutes N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.support import Process, print_table, save, servers, stack_env
from services.common.embedded import free_port
from services.health.alerts.delivery.outbox import insert_notices
from services.health.alerts.notice import AlertNotice, AlertState, Severity

EMAIL_BUDGET_SECONDS = 30.0
CPU_BUDGET_CORES = 0.5
CHANGES_PER_MINUTE = 1000
_SENT = "SELECT channel, idempotency_key FROM health.notifications WHERE status = 'sent'"
RULES = ("job_failed", "job_retries_exhausted", "service_offline", "cpu_high", "tls_expiry")
JOB_TYPES = tuple(f"type-{i}" for i in range(10))
TENANTS = ("acme", "globex", "initech")


class Mailbox:
    """aiosmtpd handler: arrival time and idempotency key of every mail, plus the alert ids it lists."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, str, str]] = []  # (time, key, subject)
        self.alert_ids: set[str] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(envelope.content, policy=policy.default)
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        ids = {line.split("/#/alerts/")[1].split()[0] for line in text.splitlines() if "/#/alerts/" in line}
        with self.lock:
            self.arrivals.append((time.time(), str(mail["X-B2X-Idempotency-Key"]), str(mail["Subject"])))
            self.alert_ids |= ids
        return "250 OK"


class Webhook:
    def __init__(self) -> None:
        self.keys: list[str] = []
        self.alert_ids: set[str] = set()

    async def receive(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.keys.append(request.headers.get("idempotency-key", ""))
        self.alert_ids |= {a["annotations"]["alert_id"] for a in body["alerts"]}
        return JSONResponse({"ok": True})


def _config(smtp_port: int, webhook_port: int, load: bool) -> str:
    route = "  route: {group_by: [rule, job_type], group_interval: 30s}\n" if load else ""
    return (
        "services: []\nnotifications:\n  dashboard_url: http://127.0.0.1:8080\n  channels:\n"
        "    email: {to: [ops@bench.test], from: b2x@bench.test, host: 127.0.0.1,"
        f" port: {smtp_port}, security: none}}\n"
        f"    webhook: {{url: 'http://127.0.0.1:{webhook_port}/hook'}}\n{route}"
        "  retry: {initial: 1s, max: 10s}\n"
    )


def _notice(alert_id: str, state: AlertState, severity: Severity, labels: dict[str, str], **extra: Any) -> AlertNotice:
    now = datetime.now(UTC)
    return AlertNotice(
        alert_id=alert_id, fingerprint=f"fp-{alert_id}", episode=1, state=state, severity=severity,
        summary=f"{labels['rule']} {alert_id}", description="bench", labels=labels, started_at=now, changed_at=now,
        resolved_at=now if state is AlertState.RESOLVED else None, **extra,
    )  # fmt: skip


async def _submit(pool: asyncpg.Pool, notices: list[AlertNotice]) -> float:
    async with pool.acquire() as conn, conn.transaction():
        await insert_notices(conn, notices)
    return time.time()


async def _latency(pool: asyncpg.Pool, mailbox: Mailbox, rounds: int = 3) -> list[float]:
    figures = []
    for i in range(rounds):
        before = len(mailbox.arrivals)
        labels = {"rule": f"latency_probe_{i}", "severity": "critical", "service": "crm"}
        committed = await _submit(pool, [_notice(f"lat-{i}", AlertState.FIRING, Severity.CRITICAL, labels)])
        deadline = time.monotonic() + 120
        while len(mailbox.arrivals) == before and time.monotonic() < deadline:  # noqa: ASYNC110 - another thread
            await asyncio.sleep(0.05)
        if len(mailbox.arrivals) == before:
            figures.append(float("inf"))
            continue
        figures.append(mailbox.arrivals[before][0] - committed)
        print(f"  critical alert {i + 1}: e-mail accepted after {figures[-1]:.2f} s", flush=True)
    return figures


async def _load(pool: asyncpg.Pool, minutes: float, health: Process) -> dict[str, Any]:
    """1000 changes a minute: every second a batch of ~17 (6 new firing, 6 resolutions of alerts 60 s old,
    4 acknowledgements of alerts 15 s old, 1 new silenced alert)."""
    fired: dict[str, dict[str, str]] = {}
    silenced: set[str] = set()
    resolved: set[str] = set()
    order: list[str] = []
    changes = 0
    serial = 0
    cpu0, wall0 = health.cpu_seconds(), time.monotonic()
    seconds = int(minutes * 60)
    per_second = CHANGES_PER_MINUTE / 60
    owed = 0.0
    for tick in range(seconds):
        tick_start = time.monotonic()
        owed += per_second
        batch: list[AlertNotice] = []
        while owed >= 1:
            kind = changes % 17
            if kind < 6 or kind == 16:
                serial += 1
                alert_id = f"load-{serial}"
                labels = {"rule": RULES[serial % 5], "severity": "error", "job_type": JOB_TYPES[serial % 10],
                          "tenant": TENANTS[serial % 3]}  # fmt: skip
                if kind == 16:
                    batch.append(
                        _notice(alert_id, AlertState.FIRING, Severity.ERROR, labels, silenced_by="bench-silence")
                    )
                    silenced.add(alert_id)
                else:
                    batch.append(_notice(alert_id, AlertState.FIRING, Severity.ERROR, labels))
                    fired[alert_id] = labels
                    order.append(alert_id)
            elif kind < 12:
                candidates = [a for a in order[: max(0, len(order) - 360)] if a not in resolved]
                if candidates:
                    alert_id = candidates[0]
                    resolved.add(alert_id)
                    batch.append(_notice(alert_id, AlertState.RESOLVED, Severity.ERROR, fired[alert_id]))
            else:
                index = len(order) - 90 - (changes % 4)
                if 0 <= index < len(order) and order[index] not in resolved:
                    alert_id = order[index]
                    batch.append(_notice(alert_id, AlertState.ACKNOWLEDGED, Severity.ERROR, fired[alert_id],
                                         acknowledged_by="bench"))  # fmt: skip
            changes += 1
            owed -= 1
        await _submit(pool, batch)
        if tick % 60 == 59:
            print(f"  minute {(tick + 1) // 60}: {changes} changes, health CPU "
                  f"{(health.cpu_seconds() - cpu0) / (time.monotonic() - wall0):.3f} cores", flush=True)  # fmt: skip
        await asyncio.sleep(max(0.0, 1 - (time.monotonic() - tick_start)))
    cores = (health.cpu_seconds() - cpu0) / (time.monotonic() - wall0)
    return {"changes": changes, "fired": set(fired), "silenced": silenced, "resolved": resolved, "cores": cores}


async def _drained(pool: asyncpg.Pool, timeout: float = 180) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = await pool.fetchval(
            "SELECT (SELECT count(*) FROM health.notification_notices WHERE routed_at IS NULL)"
            " + (SELECT count(*) FROM health.notifications WHERE status = 'pending')"
            " + (SELECT count(*) FROM health.notification_groups g WHERE next_flush_at < now() + interval '1 hour'"
            "    AND EXISTS (SELECT 1 FROM health.notification_group_alerts m WHERE m.group_id = g.id AND m.changed))"
        )
        if left == 0:
            return True
        await asyncio.sleep(1)
    return False


async def _run(database_url: str, mailbox: Mailbox, webhook: Webhook, webhook_port: int, minutes: float,
               health: Process) -> dict[str, Any]:  # fmt: skip
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/hook", webhook.receive, methods=["POST"])]),
            host="127.0.0.1",
            port=webhook_port,
            log_level="warning",
            lifespan="off",
        )
    )
    serving = asyncio.create_task(server.serve())
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    try:
        mails_before, hooks_before = len(mailbox.arrivals), len(webhook.keys)
        sent_before = {r["idempotency_key"] for r in await pool.fetch(_SENT)}
        load = await _load(pool, minutes, health)
        drained = await _drained(pool)
        rows = await pool.fetch(_SENT)
        suppressed = await pool.fetchval(
            "SELECT count(*) FROM health.notification_attempts WHERE status = 'suppressed'"
        )
    finally:
        await pool.close()
        server.should_exit = True
        await serving
    sent = {c: {r["idempotency_key"] for r in rows if r["channel"] == c} - sent_before for c in ("email", "webhook")}
    mail_keys = Counter(key for _, key, _ in mailbox.arrivals[mails_before:])
    hook_keys = Counter(webhook.keys[hooks_before:])
    return {
        "minutes": minutes,
        "changes": load["changes"],
        "health_cores": load["cores"],
        "drained": drained,
        "mails": sum(mail_keys.values()),
        "webhook_calls": sum(hook_keys.values()),
        "duplicate_mails": sum(n - 1 for n in mail_keys.values() if n > 1),
        "duplicate_webhook_calls": sum(n - 1 for n in hook_keys.values() if n > 1),
        "mails_not_recorded_sent": len(set(mail_keys) - sent["email"]),
        "webhooks_not_recorded_sent": len(set(hook_keys) - sent["webhook"]),
        "sent_not_received": len(sent["email"] - set(mail_keys)) + len(sent["webhook"] - set(hook_keys)),
        "alerts_fired": len(load["fired"]),
        "alerts_missing_by_email": len(load["fired"] - mailbox.alert_ids),
        "alerts_missing_by_webhook": len(load["fired"] - webhook.alert_ids),
        "silenced_alerts": len(load["silenced"]),
        "silenced_sent": len(load["silenced"] & (mailbox.alert_ids | webhook.alert_ids)),
        "suppressed_records": suppressed,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts_delivery")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load phase (default 10)")
    args = parser.parse_args(argv)
    mailbox, webhook = Mailbox(), Webhook()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    webhook_port = free_port()
    try:
        with servers() as srv, tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "services.yaml"
            # The latency phase runs with the default route (group_wait 10 s); the load phase with its own route,
            # so the health service is restarted in between with the second file.
            config.write_text(_config(smtp_port, webhook_port, load=False), encoding="utf-8")
            env, ports = stack_env(srv, B2X_CONFIG_FILE=str(config))
            env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
            health = Process("services.health", env, ports["health"])
            try:
                latencies = asyncio.run(_first_phase(srv.database_url, mailbox))
            finally:
                health.stop()
            config.write_text(_config(smtp_port, webhook_port, load=True), encoding="utf-8")
            health = Process("services.health", env, ports["health"])
            try:
                figures = asyncio.run(_run(srv.database_url, mailbox, webhook, webhook_port, args.minutes, health))
            finally:
                health.stop()
    finally:
        smtp.stop()
    figures["email_latency_s"] = latencies
    worst = max(latencies)
    exact = (figures["drained"] and figures["duplicate_mails"] == figures["duplicate_webhook_calls"] == 0
             and figures["alerts_missing_by_email"] == figures["alerts_missing_by_webhook"] == 0
             and figures["silenced_sent"] == 0 and figures["mails_not_recorded_sent"] == 0
             and figures["webhooks_not_recorded_sent"] == 0 and figures["sent_not_received"] == 0)  # fmt: skip
    print_table([
        ("critical alert → e-mail accepted", f"max {worst:.2f} s",
         f"{', '.join(f'{x:.2f}' for x in latencies)} s; group_wait 10 s; budget ≤ {EMAIL_BUDGET_SECONDS:.0f} s"),
        (f"{CHANGES_PER_MINUTE}/min for {args.minutes:g} min", f"{figures['changes']} changes",
         f"{figures['mails']} mails, {figures['webhook_calls']} webhook calls"),
        ("delivered exactly once", "yes" if exact else "NO",
         f"duplicates {figures['duplicate_mails']}/{figures['duplicate_webhook_calls']}, alerts missing "
         f"{figures['alerts_missing_by_email']}/{figures['alerts_missing_by_webhook']} of {figures['alerts_fired']}, "
         f"silenced sent {figures['silenced_sent']} ({figures['suppressed_records']} suppressed records)"),
        ("health service CPU under load", f"{figures['health_cores']:.3f} cores", f"budget < {CPU_BUDGET_CORES}"),
    ])  # fmt: skip
    print(f"  → {save('alerts_delivery', figures)}")
    ok = worst <= EMAIL_BUDGET_SECONDS and exact and figures["health_cores"] < CPU_BUDGET_CORES
    return 0 if ok else 1


async def _first_phase(database_url: str, mailbox: Mailbox) -> list[float]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        return await _latency(pool, mailbox)
    finally:
        await pool.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
