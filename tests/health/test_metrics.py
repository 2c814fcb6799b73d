"""The health service's state gauges, read from the registry and the check-states stream."""

from __future__ import annotations

from services.health.metrics import HealthSnapshotReader
from tests.health.helpers import definition, register, start_health
from tests.support import ServiceHarness


async def test_each_service_has_one_series_per_status_with_a_1_for_the_current_one(harness: ServiceHarness) -> None:
    """Two registered services, one aggregated OFFLINE with history; a removed one is gone; uptime is a ratio
    and latency in seconds, both only where the rollups have figures."""
    stub = await start_health(harness)
    for slug in ("erp", "crm", "old"):
        await register(stub, definition(slug))
    resources = await harness.resources("health")
    await resources.pool.execute(
        "UPDATE health.services SET status = 'OFFLINE', uptime_percent = 97.5, average_latency_ms = 230 WHERE slug = 'erp'"
    )
    await resources.pool.execute("UPDATE health.services SET removed_at = now() WHERE slug = 'old'")

    samples = await HealthSnapshotReader(resources.pool, resources.redis, {})()
    status = dict(samples["b2x_service_status"])
    assert {k: v for k, v in status.items() if k[0] == "erp"} == {
        ("erp", "erp", "online"): 0.0, ("erp", "erp", "degraded"): 0.0,
        ("erp", "erp", "offline"): 1.0, ("erp", "erp", "unknown"): 0.0,
    }  # fmt: skip
    assert status[("crm", "erp", "unknown")] == 1.0
    assert not any(k[0] == "old" for k in status)
    assert dict(samples["b2x_service_uptime_ratio"]) == {("erp",): 0.975}
    assert dict(samples["b2x_service_latency_average_seconds"]) == {("erp",): 0.23}


async def test_the_stream_backlog_counts_undelivered_and_unacknowledged_entries(harness: ServiceHarness) -> None:
    """Five entries, two read by the group and one of those acknowledged: a backlog of four; a stream
    that does not exist yet gives no figure rather than a zero."""
    resources = await harness.resources("health")
    redis, key = resources.redis, f"{harness.settings.namespace}:test-stream"
    await redis.xgroup_create(key, "health", id="0", mkstream=True)
    for n in range(5):
        await redis.xadd(key, {"n": n})
    read = await redis.xreadgroup("health", "c1", {key: ">"}, count=2)
    await redis.xack(key, "health", read[0][1][0][0])

    streams = {"check-states": key, "absent": f"{harness.settings.namespace}:nothing-here"}
    samples = await HealthSnapshotReader(resources.pool, redis, streams)()
    assert samples["b2x_stream_backlog"] == [(("check-states", "health"), 4.0)]
