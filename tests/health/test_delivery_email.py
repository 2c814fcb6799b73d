"""E-mail against a real SMTP server (aiosmtpd): the message, STARTTLS with a test CA, refused logins, a
server that is down and comes back."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import trustme

from services.common.errors import NotFoundError
from services.health.alerts.notice import Severity
from tests.health.delivery_support import FAST_ROUTE, SmtpServer, delivery, eventually, notice, submit
from tests.support import ServiceHarness


@pytest.fixture
async def pool(harness: ServiceHarness):  # type: ignore[no-untyped-def]
    return (await harness.resources("health")).pool


@pytest.fixture
def pki(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context, ca_file


def _email(port: int, extra: str = "") -> str:
    return (
        "  dashboard_url: http://dash.example.test:8080\n"
        f"  channels:\n    email: {{to: [ops@example.test, erp@example.test], from: b2x@example.test, host: 127.0.0.1,"
        f" port: {port}, security: none{extra}}}\n{FAST_ROUTE}"
    )


async def test_a_group_of_alerts_arrives_as_one_mail_with_text_and_html_parts_and_pointers(harness, pool) -> None:
    """Three failed jobs make one mail to both recipients: a plain-text and an HTML part, each alert with its
    dashboard link and the CLI command; the Message-ID carries the idempotency key."""
    smtp = SmtpServer().start()
    sink, worker = delivery(harness.settings, pool, _email(smtp.port))
    worker.start()
    try:
        await submit(pool, sink, [notice(f"job{i}", job_type="price-export", tenant="acme") for i in range(3)])
        await eventually(lambda: len(smtp.received) == 1, what="one mail")
        await asyncio.sleep(1)
    finally:
        await worker.stop()
        smtp.stop()
    (mail,) = smtp.received
    assert mail["To"] == "ops@example.test, erp@example.test" and mail["From"] == "b2x@example.test"
    assert mail["Subject"].startswith("[B2X FIRING:3] job_failed")
    assert mail["Message-ID"].startswith("<g") and mail["X-B2X-Idempotency-Key"]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for i in range(3):
        assert f"http://dash.example.test:8080/#/alerts/job{i}" in text and f"/#/alerts/job{i}" in html
    assert "b2c monitor alerts" in text and "job_type=price-export" in text and "<table" in html


async def test_starttls_with_a_private_ca_and_a_login(harness, pool, pki) -> None:
    """security: starttls upgrades the connection (certificate checked against ca_file), then logs in with the
    password from the environment reference."""
    context, ca_file = pki
    smtp = SmtpServer(tls_context=context, require_starttls=True, credentials=("b2x", "s3cret")).start()
    extra = f", security: starttls, ca_file: '{ca_file}', username: b2x, password: '${{SMTP_PASSWORD}}'"
    sink, worker = delivery(harness.settings, pool, _email(smtp.port, extra).replace(", security: none", ""),
                            SMTP_PASSWORD="s3cret")  # fmt: skip
    worker.start()
    try:
        await submit(pool, sink, [notice("tls1", severity=Severity.CRITICAL)])
        await eventually(lambda: len(smtp.received) == 1, what="the mail over STARTTLS")
    finally:
        await worker.stop()
        smtp.stop()
    assert smtp.received[0]["Subject"].startswith("[B2X FIRING:1] job_failed tls1")


async def test_implicit_tls_smtps(harness, pool, pki) -> None:
    """security: tls speaks TLS from the first byte (port 465 style) and checks the certificate."""
    context, ca_file = pki
    smtp = SmtpServer(implicit_tls=context).start()
    sink, _ = delivery(harness.settings, pool, _email(smtp.port, f", ca_file: '{ca_file}'").replace("none", "tls"))
    try:
        result = await sink.test_channel("email")
    finally:
        smtp.stop()
    assert result.delivered, result.detail
    assert len(smtp.received) == 1


async def test_a_refused_login_is_recorded_retried_and_reported_by_a_channel_test(harness, pool, pki) -> None:
    """A wrong password: each attempt is recorded as failed naming the refusal (never the password), the
    notification stays pending for the next retry, and testNotificationChannel says not delivered."""
    context, ca_file = pki
    smtp = SmtpServer(tls_context=context, require_starttls=True, credentials=("b2x", "s3cret")).start()
    extra = f", security: starttls, ca_file: '{ca_file}', username: b2x, password: '${{SMTP_PASSWORD}}'"
    sink, worker = delivery(harness.settings, pool, _email(smtp.port, extra).replace(", security: none", ""),
                            SMTP_PASSWORD="wrong")  # fmt: skip
    worker.start()
    try:
        await submit(pool, sink, [notice("auth1")])

        async def failed_twice() -> bool:
            return sum(a.status == "failed" for a in await sink.attempts("auth1")) >= 2

        await eventually(failed_twice, what="two failed attempts")
        result = await sink.test_channel("email")
    finally:
        await worker.stop()
        smtp.stop()
    attempts = await sink.attempts("auth1")
    assert smtp.received == []
    assert "refused the login: 535" in (attempts[0].error or "") and "wrong" not in (attempts[0].error or "")
    assert attempts[-1].status == "pending"
    assert result.delivered is False and "refused the login" in result.detail


async def test_a_server_that_is_down_delays_the_mail_and_loses_nothing(harness, pool) -> None:
    """SMTP refuses connections for a while: attempts fail and are recorded; once it is back, the mail arrives once."""
    smtp = SmtpServer().start()
    port = smtp.port
    smtp.stop()
    sink, worker = delivery(harness.settings, pool, _email(port))
    worker.start()
    try:
        await submit(pool, sink, [notice("down1"), notice("down2")])

        async def failed() -> bool:
            return any(a.status == "failed" for a in await sink.attempts("down1"))

        await eventually(failed, what="a failed attempt")
        smtp = SmtpServer(port=port).start()
        await eventually(lambda: len(smtp.received) == 1, what="the mail after recovery")
        await asyncio.sleep(1.5)
    finally:
        await worker.stop()
        smtp.stop()
    assert len(smtp.received) == 1
    statuses = [a.status for a in await sink.attempts("down2")]
    assert statuses[0] == "failed" and statuses[-1] == "sent" and "pending" not in statuses


async def test_channel_test_sends_now_and_unknown_names_are_not_found(harness, pool) -> None:
    """testNotificationChannel('email') delivers a test mail at once; an unknown name raises NotFoundError."""
    smtp = SmtpServer().start()
    sink, _ = delivery(harness.settings, pool, _email(smtp.port))
    try:
        result = await sink.test_channel("email")
        with pytest.raises(NotFoundError, match="'pager'"):
            await sink.test_channel("pager")
    finally:
        smtp.stop()
    assert result.delivered and result.detail.startswith("accepted") and len(smtp.received) == 1
    assert smtp.received[0]["Subject"] == "[B2X] Test notification"
