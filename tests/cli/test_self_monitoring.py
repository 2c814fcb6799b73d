"""Self-monitoring: a fresh stack with no config file watches its own PostgreSQL, Redis and services."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import asyncpg
import pytest

from gateway.auth import KeyStore, Role
from services.health.main import build_server as build_health
from services.health.settings import HealthSettings
from services.probes.main import build_server as build_probes
from services.probes.settings import ProbesSettings
from tests.cli.test_monitor_cli import Cli
from tests.probes.servers import closed_port
from tests.support import ServiceHarness

SELF = {"b2x-postgres", "b2x-redis", "b2x-jobs", "b2x-probes"}


@pytest.mark.timeout(150)
async def test_a_fresh_stack_monitors_itself_and_monitor_health_exits_0(
    harness: ServiceHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With self-monitoring on and no config file, B2X's PostgreSQL, Redis, jobs and probes services appear as
    SELF-owned connected services, get checked, turn ONLINE, and `monitor health` exits 0; no password of the
    database URL is shown. The API refuses to remove one."""
    # What `b2c up` gives every process: the probe agent expands ${B2X_DATABASE_URL} from its own environment.
    monkeypatch.setenv("B2X_DATABASE_URL", harness.settings.database_url)
    monkeypatch.setenv("B2X_REDIS_URL", harness.settings.redis_url)
    jobs_addr = await harness.jobs()
    probes_port = closed_port()
    health_addr = await harness.serve(
        "health", build_health,
        harness.settings_for(HealthSettings, health_self_monitoring=True, jobs_addr=jobs_addr,
                             probes_addr=f"127.0.0.1:{probes_port}"),
    )  # fmt: skip
    probes_settings = harness.settings_for(ProbesSettings, health_addr=health_addr, probes_flush_seconds=0.2)
    probes = build_probes(await harness.resources("probes", probes_settings), probes_settings, with_agent=True)
    await probes.start("127.0.0.1", probes_port)
    try:
        url = await harness.gateway(health_addr=health_addr, probes_addr=f"127.0.0.1:{probes_port}",
                                    jobs_addr=jobs_addr)  # fmt: skip
        pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=1)
        operator, _ = await KeyStore(pool).create("ops", Role.OPERATOR)
        await pool.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
        env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": url, "B2C_API_KEY": operator})
        runner = Cli(env)
        code, out, err = await runner.run("monitor", "services", "--format", "json")
        services = {s["slug"]: s for s in json.loads(out)}
        assert set(services) == SELF, err
        assert {s["source"] for s in services.values()} == {"SELF"}
        states: dict[str, str] = {}
        for _ in range(120):
            code, out, _ = await runner.run("monitor", "health", "--format", "json")
            states = {c["slug"]: c["status"] for c in json.loads(out)["components"]}
            if set(states.values()) == {"ONLINE"}:
                break
            await asyncio.sleep(1)
        assert code == 0 and states == dict.fromkeys(SELF, "ONLINE"), states
        code, out, _ = await runner.run("monitor", "test", "b2x-postgres")
        assert code == 0 and "PASSED" in out
        password = harness.settings.database_url.split("@")[0].rsplit(":", 1)[-1]
        if len(password) >= 4 and "//" not in password:
            assert password not in out
    finally:
        await probes.stop(0)
