"""`b2c monitor alerts …` and `b2c monitor thresholds` as a user runs them, against a real gateway and
health service (PostgreSQL, Redis)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import asyncpg
import pytest
from b2x.monitoring.v1 import health_pb2_grpc

from gateway.auth import KeyStore, Role
from tests.cli.test_monitor_cli import Cli
from tests.health.alert_helpers import append_outcomes, eventually, outcome, serve_alerting
from tests.health.helpers import definition, register
from tests.support import ServiceHarness


@pytest.fixture
async def cli(harness: ServiceHarness, database_url: str, tmp_path: Path) -> tuple[Cli, str]:
    health_addr = await serve_alerting(harness)
    await register(health_pb2_grpc.HealthServiceStub(harness.channel(health_addr)), definition("crm"))
    url = await harness.gateway(jobs_addr="127.0.0.1:1", health_addr=health_addr, probes_addr="127.0.0.1:1")
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    operator, _ = await KeyStore(pool).create("operator", Role.OPERATOR, None)
    viewer, _ = await KeyStore(pool).create("viewer", Role.VIEWER, None)
    await pool.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
    env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": url, "B2C_API_KEY": operator,
                "COLUMNS": "80"})  # fmt: skip
    return Cli(env), viewer


async def _active(runner: Cli, n: int) -> list[dict[str, object]]:
    async def probe() -> list[dict[str, object]] | None:
        _, out, _ = await runner.run("monitor", "alerts", "--format", "json")
        rows: list[dict[str, object]] = json.loads(out)["alerts"]
        return rows if len(rows) == n else None

    return await eventually(probe)


async def test_alerts_lists_what_fires_in_80_columns_and_exits_1_while_a_critical_one_fires(
    harness: ServiceHarness, cli: tuple[Cli, str]
) -> None:
    runner, _ = cli
    code, out, _ = await runner.run("monitor", "alerts")
    assert code == 0 and "No active alerts." in out
    await append_outcomes(harness, *(outcome("ERP_STOCK_SYNC", "acme") for _ in range(6)))
    rows = await _active(runner, 2)  # jobs.failed and jobs.failure_rate
    code, out, err = await runner.run("monitor", "alerts")
    assert code == 1, err
    assert "Active alerts" in out and "critical" in out and "error" in out
    assert max(len(line) for line in out.splitlines()) <= 80, out
    rate = next(r for r in rows if r["rule"] == "jobs.failure_rate")
    assert str(rate["id"])[:8] in out

    code, out, err = await runner.run("monitor", "alerts", "ack", str(rate["id"])[:8], "--comment", "on it")
    assert code == 0, err
    assert f"alert {str(rate['id'])[:8]} is acknowledged by operator" in out
    code, _, _ = await runner.run("monitor", "alerts")
    assert code == 0  # acknowledged: nothing critical fires unattended

    code, out, err = await runner.run("monitor", "alerts", "resolve", str(rate["id"]), "--format", "json")
    assert code == 0 and json.loads(out)["status"] == "RESOLVED", err
    code, out, _ = await runner.run("monitor", "alerts", "--history", "--since", "1h", "--format", "json")
    history = json.loads(out)["alerts"]
    assert {a["status"] for a in history} == {"RESOLVED", "FIRING"} and len(history) == 2


async def test_silence_is_created_listed_and_ended_from_the_cli(cli: tuple[Cli, str]) -> None:
    runner, viewer = cli
    code, out, err = await runner.run(
        "monitor", "alerts", "silence", "--match", "service=crm", "--for", "2h", "--comment", "CRM upgrade",
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    made = json.loads(out)
    assert made["active"] and made["matchers"] == [{"name": "service", "op": "=", "value": "crm"}]
    code, out, _ = await runner.run("monitor", "alerts", "silences")
    assert code == 0 and made["id"][:8] in out and "service=crm" in out
    code, out, err = await runner.run("monitor", "alerts", "silence", "--match", "service crm", "--for", "2h",
                                      "--comment", "x")  # fmt: skip
    assert code == 2 and "matchers[0]" in err and "Traceback" not in err
    code, _, err = await runner.run("monitor", "alerts", "silence", "--match", "service=crm", "--for", "2h",
                                    "--comment", "x", key=viewer)  # fmt: skip
    assert code == 2 and "operator" in err
    code, out, err = await runner.run("monitor", "alerts", "unsilence", made["id"][:8])
    assert code == 0 and "expired" in out, err
    code, out, _ = await runner.run("monitor", "alerts", "silences", "--format", "json")
    assert json.loads(out) == []


async def test_thresholds_are_shown_and_changed(cli: tuple[Cli, str]) -> None:
    runner, _ = cli
    code, out, err = await runner.run(
        "monitor", "thresholds", "crm", "--cpu", "70", "--queue", "250", "--format", "json"
    )
    assert code == 0, err
    assert json.loads(out)["thresholds"]["cpuPercent"] == 70 and json.loads(out)["thresholds"]["queueDepth"] == 250
    code, out, _ = await runner.run("monitor", "thresholds", "crm")
    assert code == 0 and "70%" in out and "250 items" in out and "Memory high" in out
    code, _, err = await runner.run("monitor", "thresholds", "crm", "--memory", "101")
    assert code == 2 and "thresholds.memory_percent" in err
    code, _, err = await runner.run("monitor", "thresholds", "nope", "--cpu", "50")
    assert code == 2 and "not found" in err
    code, _, err = await runner.run("monitor", "alerts", "ack", "deadbeef")
    assert code == 2 and "not found" in err


async def test_failing_jobs_reach_the_cli_through_the_whole_pipeline(
    harness: ServiceHarness, database_url: str, tmp_path: Path
) -> None:
    """Jobs service (outbox → stream) → health (rules, lifecycle) → gateway → `b2c monitor alerts`."""
    from b2x.monitoring.v1 import jobs_pb2_grpc

    from tests.health.alert_helpers import failed_job

    jobs = jobs_pb2_grpc.JobsServiceStub(harness.channel(await harness.jobs()))
    health_addr = await serve_alerting(harness)
    url = await harness.gateway(jobs_addr="127.0.0.1:1", health_addr=health_addr, probes_addr="127.0.0.1:1")
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    operator, _ = await KeyStore(pool).create("operator", Role.OPERATOR, None)
    await pool.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
    env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": url, "B2C_API_KEY": operator,
                "COLUMNS": "80"})  # fmt: skip
    runner = Cli(env)
    for _ in range(6):
        await failed_job(jobs, "ERP_ARTICLE_SYNC", tenant="tenant-north")
    rows = await _active(runner, 2)
    rate = next(r for r in rows if r["rule"] == "jobs.failure_rate")
    assert rate["severity"] == "CRITICAL" and rate["jobType"] == "ERP_ARTICLE_SYNC"
    assert rate["summary"] == "6 ERP_ARTICLE_SYNC jobs failed in the last 10 minutes for tenant tenant-north"
    code, out, _ = await runner.run("monitor", "alerts", "--severity", "critical")
    assert code == 1 and str(rate["id"])[:8] in out
