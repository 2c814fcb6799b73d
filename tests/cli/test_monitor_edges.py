"""`b2c monitor …` rough edges found by a new user, against a real stack: each one a behaviour to keep."""

from __future__ import annotations

import asyncio
import json
import os
import signal
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
from tests.cli.test_monitor_cli import B2C, Cli
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


@pytest.fixture
async def stack_cli(
    harness: ServiceHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Cli, str]]:
    """The erp/crm stack, an operator's CLI in 80 columns, and an admin key."""
    monkeypatch.setenv("ERP_TOKEN", SECRET)
    async with services_stack(harness, tmp_path) as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
        env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": stack.url, "B2C_API_KEY": stack.operator,
                    "COLUMNS": "80"})  # fmt: skip
        pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=1)
        admin, _ = await KeyStore(pool).create("root", Role.ADMIN)
        await pool.close()
        yield Cli(env), admin


async def test_errors_accept_the_short_id_the_list_prints(stack_cli: tuple[Cli, str]) -> None:
    """`monitor errors <8 characters>` shows that error's evidence; a prefix that matches nothing, or an unknown
    service, exits 2 saying so instead of "No communication errors"."""
    runner, _ = stack_cli
    await runner.run("monitor", "test", "crm")
    code, out, _ = await runner.run("monitor", "errors", "--format", "json")
    full = json.loads(out)["errors"][0]["id"]
    code, out, err = await runner.run("monitor", "errors", full[:8])
    assert code == 0 and full in out and "RESPONSE 503" in out, err
    code, out, err = await runner.run("monitor", "errors", "deadbeef")
    assert code == 2 and "deadbeef is neither a service nor the start of" in err
    code, out, err = await runner.run("monitor", "errors", "wms")
    assert code == 2 and "no service 'wms'" in err


async def test_bad_options_fail_early_and_name_themselves(stack_cli: tuple[Cli, str], tmp_path: Path) -> None:
    """--limit above 200 is capped with a note; --since 99999999d and --history 5q exit 2 naming their option;
    --export into a missing directory fails before the test runs (no error is recorded for crm)."""
    runner, _ = stack_cli
    code, out, err = await runner.run("monitor", "errors", "--limit", "500", "--format", "json")
    assert code == 0 and "--limit 500 is above the server's maximum of 200" in err
    assert json.loads(out)["totalCount"] == 0
    code, _, err = await runner.run("monitor", "errors", "--since", "99999999d")
    assert code == 2 and "--since 99999999d reaches too far back" in err and "OverflowError" not in err
    code, _, err = await runner.run("monitor", "health", "--history", "5q")
    assert code == 2 and "--history must look like" in err, err
    code, _, err = await runner.run("monitor", "test", "crm", "--export", str(tmp_path / "missing" / "x.pdf"))
    assert code == 2 and "does not exist" in err, err
    code, out, _ = await runner.run("monitor", "errors", "crm", "--format", "json")
    assert json.loads(out)["totalCount"] == 0


async def test_create_key_prints_json_and_services_show_resources_in_a_table(stack_cli: tuple[Cli, str]) -> None:
    """`auth create-key --format json` prints the key and its record; `monitor services --resources` adds the
    resource columns to the table, which fits 80 columns."""
    runner, admin = stack_cli
    code, out, err = await runner.run("auth", "create-key", "--name", "ci", "--format", "json", key=admin)
    created = json.loads(out)
    assert code == 0 and created["key"].startswith("b2x_") and created["apiKey"]["name"] == "ci", err
    code, out, _ = await runner.run("monitor", "services", "--resources")
    assert "CPU" in out and "Queue" in out and all(len(line) <= 80 for line in out.splitlines())
    code, out, _ = await runner.run("monitor", "services")
    assert "CPU" not in out and "Last OK" in out


async def _watch_until(runner: Cli, marker: str, *args: str) -> tuple[int, str]:
    """Run a --watch command with stdout on a pipe until `marker` shows up, then Ctrl-C it."""
    proc = await asyncio.create_subprocess_exec(
        B2C, *args, env=runner.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    seen = ""
    try:
        async with asyncio.timeout(20):
            while marker not in seen:
                chunk = await proc.stdout.read(4096)
                if not chunk:
                    break
                seen += chunk.decode()
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 20)
    assert proc.returncode is not None
    return proc.returncode, seen


async def test_table_watch_prints_when_stdout_is_not_a_terminal(stack_cli: tuple[Cli, str]) -> None:
    """`monitor health --watch` and `monitor services --watch` print each refresh to a pipe while running, and
    Ctrl-C ends them with exit 0."""
    runner, _ = stack_cli
    code, seen = await _watch_until(runner, "B2X System Health", "monitor", "health", "--watch")
    assert "B2X System Health" in seen and code == 0
    code, seen = await _watch_until(runner, "Connected services", "monitor", "services", "--watch")
    assert "Connected services" in seen and "crm" in seen and code == 0


async def test_resources_and_detailed_health_fit_80_columns(
    harness: ServiceHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With COLUMNS=80, `monitor resources` and `monitor health --detailed` fit the width and keep their
    figures whole: erp's pool 8/10 and queue 23, and each component's reason below the table."""
    monkeypatch.setenv("ERP_TOKEN", SECRET)
    async with services_stack(harness, tmp_path, agent=True) as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
        env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": stack.url, "B2C_API_KEY": stack.viewer,
                    "COLUMNS": "80"})  # fmt: skip
        runner = Cli(env)
        for _ in range(60):
            _, out, _ = await runner.run("monitor", "resources", "erp", "--format", "json")
            _, health, _ = await runner.run("monitor", "health", "--format", "json")
            states = {c["slug"]: c["status"] for c in json.loads(health)["components"]}
            if json.loads(out) and json.loads(out)[0]["metrics"] and states.get("crm") != "UNKNOWN":
                break
            await asyncio.sleep(0.5)
        _, out, _ = await runner.run("monitor", "resources")
        assert all(len(line) <= 80 for line in out.splitlines()) and "…" not in out, out
        erp = next(line for line in out.splitlines() if "erp" in line)
        assert "8/10" in erp and " 23 " in erp, out
        _, out, _ = await runner.run("monitor", "health", "--detailed")
        assert all(len(line) <= 80 for line in out.splitlines()) and "…" not in out, out
        assert "CRM Integration: " in out and "SERVICE_UNAVAILABLE" in out.replace("\n", " "), out
