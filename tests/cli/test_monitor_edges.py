"""`b2c monitor …` rough edges found by a new user, against a real stack: each one a behaviour to keep."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import trustme

from gateway.auth import KeyStore, Role
from services.health.main import build_server as build_health
from services.health.settings import HealthSettings
from services.probes.main import build_server as build_probes
from services.probes.settings import ProbesSettings
from tests.cli.test_monitor_cli import Cli
from tests.probes.servers import HttpTestServer, Pki, Route
from tests.stacks import SECRET, services_stack
from tests.support import ServiceHarness


@pytest.fixture
async def pim_stack(
    harness: ServiceHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Cli, Path]]:
    """The erp/crm stack plus `pim` over https with its own ca_file."""
    monkeypatch.setenv("ERP_TOKEN", SECRET)
    ca_file = tmp_path / "pim-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    extra = (
        f"  - {{slug: pim, name: PIM, type: PIM, endpoint: 'https://127.0.0.1:{{port}}/health', max_retries: 0,"
        f" http: {{ca_file: '{ca_file}'}}}}\n"
    )
    async with services_stack(harness, tmp_path, extra=extra) as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
        env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": stack.url, "B2C_API_KEY": stack.operator,
                    "COLUMNS": "80"})  # fmt: skip
        yield Cli(env), ca_file


async def test_test_all_reports_every_service_when_one_ca_file_is_gone(pim_stack: tuple[Cli, Path]) -> None:
    """A ca_file removed after start fails only that service's test, as SSL_HANDSHAKE_FAILED naming the file;
    `monitor test all` still shows erp and crm, and `monitor test pim` exits 2 (not 3, "database unavailable")."""
    runner, ca_file = pim_stack
    ca_file.unlink()
    code, out, err = await runner.run("monitor", "test", "all", "--format", "json")
    results = {r["serviceSlug"]: r for r in json.loads(out)}
    assert set(results) == {"erp", "crm", "pim"} and code == 2, err
    assert results["erp"]["success"] and not results["pim"]["success"]
    assert results["pim"]["errorType"] == "SSL_HANDSHAKE_FAILED" and str(ca_file) in results["pim"]["errorMessage"]
    code, out, err = await runner.run("monitor", "test", "pim")
    assert code == 2 and "database" not in err + out and "SSL_HANDSHAKE_FAILED" in out


@pytest.mark.timeout(120)
async def test_monitor_services_keeps_the_cause_beside_an_open_breaker(harness: ServiceHarness, tmp_path: Path) -> None:
    """An HTTPS service with an expired certificate fails twice, its breaker opens, and later checks are not
    sent: `monitor services` still names CERTIFICATE_EXPIRED beside "circuit breaker open"."""
    pki = Pki.create(tmp_path)
    async with HttpTestServer({"/": Route()}, pki.expired()) as web:
        config = tmp_path / "services.yaml"
        config.write_text(
            "services:\n"
            f"  - {{slug: erp, type: ERP, endpoint: 'https://localhost:{web.port}/', interval_seconds: 5,"
            f" max_retries: 0, http: {{ca_file: '{pki.ca_file}'}}}}\n"
        )
        health_addr = await harness.serve(
            "health", build_health, harness.settings_for(HealthSettings, config_file=config)
        )
        probes_settings = harness.settings_for(
            ProbesSettings, health_addr=health_addr, probes_flush_seconds=0.2, probes_breaker_failures=2,
            probes_breaker_cooldown_seconds=300.0,
        )  # fmt: skip
        probes_addr = await harness.serve(
            "probes", lambda resources, settings: build_probes(resources, settings, with_agent=True), probes_settings
        )
        url = await harness.gateway(health_addr=health_addr, probes_addr=probes_addr, jobs_addr="127.0.0.1:1")
        pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=1)
        viewer, _ = await KeyStore(pool).create("view", Role.VIEWER)
        await pool.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
        env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": url, "B2C_API_KEY": viewer})
        runner = Cli(env)
        opened_at: str | None = None
        reason = ""
        for _ in range(90):  # until a check after the opening one (not sent: the breaker is open) is in
            code, out, _ = await runner.run("monitor", "services", "--format", "json")
            service = json.loads(out)[0]
            reason = service["statusReason"] or ""
            if "circuit breaker open" in reason:
                opened_at = opened_at or service["lastChecked"]
                if service["lastChecked"] != opened_at:
                    break
            await asyncio.sleep(1)
        assert opened_at is not None and "circuit breaker open" in reason, reason
        assert "last: CERTIFICATE_EXPIRED (the TLS certificate of localhost expired on 2026-01-02" in reason, reason
        code, out, _ = await runner.run("monitor", "services")
        assert code == 2 and "CERTIFICATE_EXPIRED" in out.replace("\n", " ")
