"""Partitions of the time series: created ahead, dropped whole past retention; agent settings fail loudly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.errors import StartupError
from services.common.settings import load_settings
from services.probes.agent.maintenance import Maintenance
from services.probes.agent.store import CheckStore
from services.probes.partitions import Partitions
from services.probes.settings import ProbesSettings
from tests.probes.agents import check_record
from tests.support import ServiceHarness


async def _partitions(pool, table: str) -> set[str]:  # type: ignore[no-untyped-def]
    rows = await pool.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass",
        f"probes.{table}",
    )
    return {r["relname"] for r in rows}


async def test_old_partitions_are_dropped_and_the_next_ones_created(harness: ServiceHarness) -> None:
    """Checks 40 days old live in their own day partition, which a 14-day retention drops whole; recent ones stay,
    tomorrow's partition exists, and a writer that saw the dropped partition creates it again when needed."""
    pool = (await harness.resources("probes")).pool
    now = datetime(2031, 5, 20, 12, tzinfo=UTC)
    cache = Partitions()
    store = CheckStore(pool, cache)
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    await store.write([check_record("svc", old, 10.0), check_record("svc", recent, 10.0, slot=1)], [])
    maintenance = Maintenance(pool, {"probe_results": 14, "latency_minute": 14, "latency_hour": 400}, [cache])
    dropped = await maintenance.once(now)
    # The partitions the migration made for the real today are past retention too, from 2031.
    assert {"probe_results_2031_04_10", "latency_minute_2031_04_10"} <= set(dropped)
    assert not {d for d in dropped if d.startswith(("probe_results_2031_05", "latency_hour_2031"))}
    remaining = await _partitions(pool, "probe_results")
    assert {"probe_results_2031_05_18", "probe_results_2031_05_20", "probe_results_2031_05_21"} <= remaining
    assert "latency_hour_2031_04" in await _partitions(pool, "latency_hour")
    assert await pool.fetchval("SELECT count(*) FROM probes.probe_results") == 1
    await store.write([check_record("svc", old, 10.0, slot=2)], [])
    assert "probe_results_2031_04_10" in await _partitions(pool, "probe_results")
    with pytest.raises(ValueError, match="no partitioned table"):
        Maintenance(pool, {"jobs": 1}, [])


def test_agent_settings_name_the_variable_that_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    """A breaker cap below its first cool-down stops start-up with the variable's name."""
    monkeypatch.setenv("B2X_DATABASE_URL", "postgresql://localhost/b2x")
    monkeypatch.setenv("B2X_REDIS_URL", "redis://localhost:6379/0")
    monkeypatch.setenv("B2X_PROBES_BREAKER_COOLDOWN_SECONDS", "120")
    monkeypatch.setenv("B2X_PROBES_BREAKER_MAX_COOLDOWN_SECONDS", "60")
    with pytest.raises(StartupError, match="B2X_PROBES_BREAKER_MAX_COOLDOWN_SECONDS: must not be below"):
        load_settings(ProbesSettings)
    monkeypatch.setenv("B2X_PROBES_BREAKER_MAX_COOLDOWN_SECONDS", "600")
    monkeypatch.setenv("B2X_PROBES_RESOURCE_INTERVAL_SECONDS", "2.5")
    settings = load_settings(ProbesSettings)
    assert settings.probes_resource_interval_seconds == 2.5 and settings.probes_agent_enabled
