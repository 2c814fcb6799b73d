"""`b2c up --demo`'s notification path: the demo file's channels point at the demo inbox, whose SMTP catcher
and webhook sink (real servers) keep what arrives where the operator is told to look."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest

from b2c.errors import CliError
from b2c.stack.demo.config import write_demo_config
from b2c.stack.demo.inbox import listen, serve
from b2c.stack.settings import StackPorts
from b2c.stack.up import check_free
from services.health.alerts.delivery import build_delivery
from services.health.alerts.notice import Severity
from services.health.registry.config import parse_config
from tests.health.delivery_support import eventually, notice, submit
from tests.support import ServiceHarness


async def test_a_demo_alert_lands_in_the_mailbox_and_the_webhook_log(harness: ServiceHarness, tmp_path: Path) -> None:
    """With the demo file's notifications, a critical alert becomes one .eml in <inbox>/mail and one
    Alertmanager-payload line in webhooks.jsonl, both listed on the inbox page."""
    pool = (await harness.resources("health")).pool
    smtp_socket, http_socket = listen("127.0.0.1", 0), listen("127.0.0.1", 0)
    ports = dataclasses.replace(
        StackPorts.from_env({}), demo_smtp=smtp_socket.getsockname()[1], demo_webhook=http_socket.getsockname()[1]
    )
    config = parse_config((path := write_demo_config(tmp_path, ports)).read_text(), path)
    assert sorted(config.notifications.channels) == ["email", "webhook"]
    assert config.notifications.route.group_wait == 10  # the default budget, as in production
    inbox = tmp_path / "demo-inbox"
    server = asyncio.create_task(serve(inbox, smtp_socket, http_socket))
    fast = config.notifications.model_copy(
        update={"route": config.notifications.route.model_copy(update={"group_wait": 0.3})}
    )
    sink, worker = build_delivery(harness.settings, pool, fast, environ={}, poll_seconds=0.05)
    worker.start()
    try:
        await submit(pool, sink, [notice("demo1", severity=Severity.CRITICAL, service="crm")])
        log = inbox / "webhooks.jsonl"
        await eventually(lambda: log.exists() and len(list((inbox / "mail").glob("*.eml"))) == 1, what="the inbox")
        async with httpx.AsyncClient() as client:
            page = (await client.get(f"http://127.0.0.1:{ports.demo_webhook}/")).text
    finally:
        await worker.stop()
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    (eml,) = (inbox / "mail").glob("*.eml")
    mail = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert mail["To"] == "ops@b2x-demo.example" and "job_failed demo1" in mail["Subject"]
    (line,) = log.read_text().splitlines()
    entry = json.loads(line)
    assert entry["path"] == "/alertmanager-webhook" and entry["body"]["version"] == "4"
    assert entry["body"]["alerts"][0]["generatorURL"] == f"http://127.0.0.1:{ports.gateway}/#/alerts/demo1"
    assert "job_failed demo1" in page and "/alertmanager-webhook" in page


def test_up_refuses_a_taken_inbox_port_naming_its_variable() -> None:
    """`b2c up --demo` checks the SMTP catcher's port with the others before starting anything."""
    taken = listen("127.0.0.1", 0)
    free = [listen("127.0.0.1", 0) for _ in range(3)]
    environ = {
        f"B2X_DEMO_{slug}_PORT": str(s.getsockname()[1]) for slug, s in zip(("ERP", "PIM", "CRM"), free, strict=True)
    }
    for sock in free:
        sock.close()
    try:
        ports = StackPorts.from_env({**environ, "B2X_DEMO_SMTP_PORT": str(taken.getsockname()[1])})
        with pytest.raises(CliError, match=r"demo SMTP catcher.*B2X_DEMO_SMTP_PORT"):
            check_free(ports, demo=True)
    finally:
        taken.close()
