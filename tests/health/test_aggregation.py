"""The aggregation end to end: check states on the real Redis Stream, stored in real PostgreSQL, announced on the bus."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from b2x.monitoring.v1 import common_pb2, events_pb2, health_pb2

from services.common.embedded import EmbeddedRedis
from services.common.events import Resync, Subscription, Topic, check_states_stream, connect_redis, new_event
from services.common.runtime import Resources
from services.health.aggregation.consumer import GROUP, CheckStateConsumer, ConsumerConfig
from services.health.aggregation.service import Aggregator
from services.health.aggregation.store import PostgresAggregationStore
from services.health.domain import ConnectedService
from services.health.events import BusStatusAnnouncer
from services.health.registry.repository import PostgresRegistry
from services.health.registry.rules import define_service
from services.health.registry.service import RegistryService
from services.health.status import CheckState
from tests.health.aggregation_helpers import append, check_state, eventually
from tests.health.helpers import TIMEOUT, definition, register, start_health
from tests.support import ServiceHarness

ONLINE, DEGRADED, OFFLINE, UNKNOWN = (
    common_pb2.SERVICE_STATUS_ONLINE,
    common_pb2.SERVICE_STATUS_DEGRADED,
    common_pb2.SERVICE_STATUS_OFFLINE,
    common_pb2.SERVICE_STATUS_UNKNOWN,
)


async def _changes(sub: Subscription, count: int, timeout: float = 20) -> list[events_pb2.HealthStatusChanged]:
    found: list[events_pb2.HealthStatusChanged] = []
    while len(found) < count:
        item = await sub.get(timeout)
        if not isinstance(item, Resync) and item.WhichOneof("payload") == "health_status_changed":
            found.append(item.health_status_changed)
    return found


async def _no_more_changes(sub: Subscription, wait: float = 1.0) -> None:
    while True:
        try:
            item = await sub.get(wait)
        except TimeoutError:
            return
        if not isinstance(item, Resync) and item.WhichOneof("payload") == "health_status_changed":
            raise AssertionError(f"unexpected status change: {item.health_status_changed}")


async def _registered(resources: Resources, *slugs: str) -> list[ConnectedService]:
    """Services registered without a health server, so the only consumers are the test's own."""
    registry = RegistryService(PostgresRegistry(resources.pool))
    return [
        (await registry.register(define_service(slug=s, type="ERP", endpoint=f"https://{s}.test")))[0] for s in slugs
    ]


async def _checks_counted(resources: Resources) -> int:
    return int(await resources.pool.fetchval("SELECT coalesce(sum(checks), 0) FROM health.check_rollups_hourly"))


def _aggregator(resources: Resources) -> Aggregator:
    return Aggregator(PostgresAggregationStore(resources.pool), BusStatusAnnouncer(resources.bus), slow_ms=1000)


def _consumer(
    resources: Resources, namespace: str, name: str, apply: object = None, **config: float
) -> CheckStateConsumer:
    apply = apply or _aggregator(resources).apply_checks
    return CheckStateConsumer(resources.redis, ConsumerConfig(namespace, name, **config), apply)  # type: ignore[arg-type]


async def test_check_states_become_the_services_status_and_only_changes_are_announced(harness: ServiceHarness) -> None:
    """A passing check makes a service ONLINE; failures make it DEGRADED then OFFLINE at the third, with latency,
    uptime and reason stored and exactly one HealthStatusChanged per change."""
    stub = await start_health(harness)
    erp = (await register(stub, definition("erp", name="enventa ERP"))).service
    resources = await harness.resources("health")
    sub = await resources.bus.subscribe(Topic.HEALTH_STATUS)
    ns = harness.settings.namespace

    async def service() -> health_pb2.ConnectedService:
        return (await stub.GetService(health_pb2.GetServiceRequest(service="erp"), timeout=TIMEOUT)).service

    await append(resources.redis, ns, check_state(erp.id, "erp", latency_ms=60))
    online = await eventually(service, lambda s: s.status == ONLINE)
    assert online.status_reason == "HTTP 200 OK in 60 ms"
    assert (online.average_latency_ms, online.uptime_percent) == (60, 100)
    assert online.last_checked == online.last_successful

    for failures, expected in ((1, DEGRADED), (2, DEGRADED), (3, OFFLINE)):
        await append(resources.redis, ns, check_state(erp.id, "erp", success=False, failures=failures))
        await eventually(service, lambda s, n=failures + 1: s.uptime_percent == 100 / n)
        assert (await service()).status == expected
    offline = await service()
    assert offline.status_reason == "3 consecutive checks failed: SERVICE_UNAVAILABLE (HTTP 503 Service Unavailable)"
    assert offline.last_successful == online.last_successful
    assert offline.status_changed_at == offline.last_checked  # the third failure changed it
    assert offline.average_latency_ms == 60  # failures are not latencies

    changes = await _changes(sub, 3)
    assert [(c.previous_status, c.status) for c in changes] == [
        (UNKNOWN, ONLINE),
        (ONLINE, DEGRADED),
        (DEGRADED, OFFLINE),
    ]
    assert {(c.service_id, c.component, c.service_slug) for c in changes} == {(erp.id, "enventa ERP", "erp")}
    assert changes[-1].reason == offline.status_reason
    await _no_more_changes(sub)
    await sub.close()


async def test_checks_arriving_late_count_in_the_rollups_but_do_not_move_the_status(harness: ServiceHarness) -> None:
    """An older check consumed after a newer one adds to uptime yet leaves the status the newer one gave."""
    stub = await start_health(harness)
    erp = (await register(stub, definition("erp"))).service
    resources = await harness.resources("health")
    now = datetime.now(UTC)
    await _aggregator(resources).apply_checks([_state(erp.id, now + timedelta(seconds=2), success=True)])
    await _aggregator(resources).apply_checks([_state(erp.id, now + timedelta(seconds=1), success=False, failures=3)])
    got = (await stub.GetService(health_pb2.GetServiceRequest(service="erp"), timeout=TIMEOUT)).service
    assert (got.status, got.uptime_percent) == (ONLINE, 50)


def _state(service_id: str, at: datetime, *, success: bool, failures: int = 0) -> CheckState:
    return CheckState(service_id, "erp", at, success, latency_ms=10, consecutive_failures=failures,
                      error_type="" if success else "SERVICE_UNAVAILABLE")  # fmt: skip


async def test_a_restart_after_storing_but_before_acknowledging_counts_nothing_twice(harness: ServiceHarness) -> None:
    """Entries stored but left unacknowledged (a crash between COMMIT and XACK) are re-read by the restarted
    consumer of the same name, acknowledged, and counted once."""
    resources = await harness.resources("health")
    [erp] = await _registered(resources, "erp")
    ns = harness.settings.namespace
    aggregator = _aggregator(resources)

    async def store_then_crash(states: Sequence[CheckState]) -> None:
        await aggregator.apply_checks(states)
        raise ConnectionError("process killed before XACK")

    crashing = _consumer(resources, ns, "replica-1", store_then_crash)
    await crashing.ensure_group()
    await append(resources.redis, ns, *[check_state(erp.id, "erp", latency_ms=10 + i) for i in range(5)])
    assert await crashing.step() == 0  # its own pending list is empty at first
    with pytest.raises(ConnectionError):
        await crashing.step()
    assert (await resources.redis.xpending(check_states_stream(ns), GROUP))["pending"] == 5
    assert await _checks_counted(resources) == 5

    restarted = _consumer(resources, ns, "replica-1")
    assert await restarted.step() == 5  # its own pending entries come first
    assert (await resources.redis.xpending(check_states_stream(ns), GROUP))["pending"] == 0
    assert await _checks_counted(resources) == 5


async def test_a_restart_before_storing_loses_nothing(harness: ServiceHarness) -> None:
    """Entries read by a consumer whose store failed stay pending and are stored when it runs again."""
    resources = await harness.resources("health")
    [erp] = await _registered(resources, "erp")
    ns = harness.settings.namespace

    async def database_down(states: Sequence[CheckState]) -> None:
        raise OSError("PostgreSQL unreachable")

    failing = _consumer(resources, ns, "replica-1", database_down)
    await failing.ensure_group()
    await append(resources.redis, ns, *[check_state(erp.id, "erp") for _ in range(3)])
    assert await failing.step() == 0
    with pytest.raises(OSError, match="unreachable"):
        await failing.step()
    assert await _checks_counted(resources) == 0

    restarted = _consumer(resources, ns, "replica-1", block_ms=50)
    restarted.start()
    await eventually(lambda: _checks_counted(resources), lambda n: n == 3)

    async def pending() -> int:
        return int((await resources.redis.xpending(check_states_stream(ns), GROUP))["pending"])

    # Acknowledged right after the commit: wait for it rather than stop between the two.
    await eventually(pending, lambda n: n == 0)
    await restarted.stop()


async def test_two_replicas_share_the_group_and_each_entry_is_stored_once(harness: ServiceHarness) -> None:
    """Two consumers of the group split the stream between them; together they store every check exactly once."""
    resources = await harness.resources("health")
    services = await _registered(resources, *[f"svc-{i}" for i in range(10)])
    ns = harness.settings.namespace
    first = _consumer(resources, ns, "replica-a", batch=50)
    second = _consumer(resources, ns, "replica-b", batch=50)
    await first.ensure_group()
    await append(resources.redis, ns, *[check_state(s.id, s.slug, latency_ms=i) for i in range(10) for s in services])
    await first.step()  # own pending: none yet
    await second.step()
    assert await first.step() == 50
    assert await second.step() == 50
    assert (first.stored, second.stored) == (50, 50)
    assert await _checks_counted(resources) == 100
    consumers = {
        c["name"].decode(): c["pending"] for c in await resources.redis.xinfo_consumers(check_states_stream(ns), GROUP)
    }
    assert consumers == {"replica-a": 0, "replica-b": 0}


async def test_a_replica_takes_over_what_a_stopped_one_had_read(harness: ServiceHarness) -> None:
    """Entries pending with a consumer that died are claimed by a live one after the idle timeout and stored."""
    resources = await harness.resources("health")
    [erp] = await _registered(resources, "erp")
    ns = harness.settings.namespace
    live = _consumer(resources, ns, "replica-live", claim_idle_seconds=0.2, block_ms=50)
    await live.ensure_group()
    await append(resources.redis, ns, *[check_state(erp.id, "erp") for _ in range(4)])
    read = await resources.redis.xreadgroup(GROUP, "replica-dead", {check_states_stream(ns): ">"}, count=10)
    assert len(read[0][1]) == 4
    await asyncio.sleep(0.3)
    live.start()
    await eventually(lambda: _checks_counted(resources), lambda n: n == 4)
    await live.stop()
    assert (await resources.redis.xpending(check_states_stream(ns), GROUP))["pending"] == 0


async def test_a_health_server_consumes_states_written_before_it_first_started(harness: ServiceHarness) -> None:
    """The group starts at the beginning of the stream, so checks appended before health ever ran are not lost."""
    resources = await harness.resources("health")
    ns = harness.settings.namespace
    service_id = "7d0c3f3e-9a4b-4c55-8f7e-0a1b2c3d4e5f"
    await resources.pool.execute(
        "INSERT INTO health.services (id, slug, name, type, endpoint, probe_kind, source, created_at, updated_at) "
        "VALUES ($1, 'erp', 'ERP', 'ERP', 'https://erp.test', 'http', 'api', $2, $2)",
        service_id,
        datetime.now(UTC) - timedelta(minutes=1),
    )
    await append(resources.redis, ns, check_state(service_id, "erp"), check_state("not-a-uuid", "x"))
    await append(resources.redis, ns, check_state("0b6f0c8e-0000-4000-8000-000000000000", "gone"))
    await resources.redis.xadd(check_states_stream(ns), {"state": b"\xff\xfe not a protobuf"})
    stub = await start_health(harness)
    got = await eventually(
        lambda: stub.GetService(health_pb2.GetServiceRequest(service="erp"), timeout=TIMEOUT),
        lambda r: r.service.status == ONLINE,
    )
    assert got.service.uptime_percent == 100
    await eventually(lambda: resources.redis.xpending(check_states_stream(ns), GROUP), lambda p: p["pending"] == 0)


async def test_resource_samples_fill_the_service_and_pressure_degrades_it(harness: ServiceHarness) -> None:
    """ResourceMetricsUpdated events fill ConnectedService.resources; a full pool turns an ONLINE service DEGRADED
    with the reason, and it recovers once the pool drains."""
    stub = await start_health(harness)
    erp = (await register(stub, definition("erp"))).service
    resources = await harness.resources("health")
    sub = await resources.bus.subscribe(Topic.HEALTH_STATUS)
    await append(resources.redis, harness.settings.namespace, check_state(erp.id, "erp"))

    async def service() -> health_pb2.ConnectedService:
        return (await stub.GetService(health_pb2.GetServiceRequest(service="erp"), timeout=TIMEOUT)).service

    await eventually(service, lambda s: s.status == ONLINE)

    async def sample(active: int) -> None:
        event = new_event("probes")
        event.resource_metrics_updated.service_id = erp.id
        metrics = event.resource_metrics_updated.metrics
        metrics.cpu_percent, metrics.memory_percent = 45.0, 68.0
        metrics.connection_pool_active, metrics.connection_pool_total = active, 10
        metrics.timestamp.FromDatetime(datetime.now(UTC))
        await resources.bus.publish(Topic.RESOURCE_METRICS, event)

    await sample(10)
    degraded = await eventually(service, lambda s: s.status == DEGRADED)
    assert degraded.status_reason == "connection pool 10 of 10 in use"
    assert (degraded.resources.cpu_percent, degraded.resources.connection_pool_active) == (45, 10)
    await sample(3)
    recovered = await eventually(service, lambda s: s.status == ONLINE)
    assert recovered.status_reason == "HTTP 200 OK in 40 ms"
    changes = await _changes(sub, 3)
    assert [(c.previous_status, c.status) for c in changes] == [
        (UNKNOWN, ONLINE),
        (ONLINE, DEGRADED),
        (DEGRADED, ONLINE),
    ]
    await sub.close()


async def test_a_service_whose_checks_stop_becomes_unknown(harness: ServiceHarness) -> None:
    """Three intervals and a minute without a check turn a checked service UNKNOWN, announced with the reason."""
    stub = await start_health(harness)
    erp = (await register(stub, definition("erp"))).service
    resources = await harness.resources("health")
    await _aggregator(resources).apply_checks([_state(erp.id, datetime.now(UTC), success=True)])
    sub = await resources.bus.subscribe(Topic.HEALTH_STATUS)
    later = datetime.now(UTC) + timedelta(seconds=3 * 30 + 61)
    store = PostgresAggregationStore(resources.pool)
    assert (
        await Aggregator(
            store, BusStatusAnnouncer(resources.bus), slow_ms=1000, clock=lambda: datetime.now(UTC)
        ).mark_silent()
        == []
    )
    changes = await Aggregator(
        store, BusStatusAnnouncer(resources.bus), slow_ms=1000, clock=lambda: later
    ).mark_silent()
    assert [(c.previous_status.value, c.status.value) for c in changes] == [("ONLINE", "UNKNOWN")]
    got = (await stub.GetService(health_pb2.GetServiceRequest(service="erp"), timeout=TIMEOUT)).service
    assert got.status == UNKNOWN and "expected every 30 s" in got.status_reason
    assert (await _changes(sub, 1))[0].status == UNKNOWN
    await sub.close()


async def test_disabling_a_service_makes_it_unknown_and_its_checks_keep_it_so(harness: ServiceHarness) -> None:
    """Disabling an online service announces ONLINE → UNKNOWN ("disabled; not checked"), and a late check of it
    changes nothing."""
    stub = await start_health(harness)
    erp = (await register(stub, definition("erp"))).service
    resources = await harness.resources("health")
    await _aggregator(resources).apply_checks([_state(erp.id, datetime.now(UTC), success=True)])
    sub = await resources.bus.subscribe(Topic.HEALTH_STATUS)
    disabled = (await register(stub, definition("erp", enabled=False))).service
    assert (disabled.status, disabled.status_reason) == (UNKNOWN, "disabled; not checked")
    [change] = await _changes(sub, 1)
    assert (change.previous_status, change.status, change.reason) == (ONLINE, UNKNOWN, "disabled; not checked")
    await _aggregator(resources).apply_checks([_state(erp.id, datetime.now(UTC), success=True)])
    got = (await stub.GetService(health_pb2.GetServiceRequest(service="erp"), timeout=TIMEOUT)).service
    assert (got.status, got.status_reason) == (UNKNOWN, "disabled; not checked")
    await _no_more_changes(sub, 0.5)
    await sub.close()


async def test_the_consumer_rides_out_a_redis_restart_and_says_so(
    harness: ServiceHarness, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """With Redis gone the consumer logs once that it retries with backoff; when Redis is back (empty, the group
    gone with it) it recreates the group, logs that it resumed, and stores new check states."""
    resources = await harness.resources("health")
    [erp] = await _registered(resources, "erp")
    ns = harness.settings.namespace
    server = EmbeddedRedis.start(tmp_path / "redis", persist=False)
    # clients as the services make them (connect_redis): command timeouts, so nothing waits on a dead socket
    client = await connect_redis(server.url(), timeout=1)
    consumer = CheckStateConsumer(
        client, ConsumerConfig(ns, "replica-1", block_ms=100), _aggregator(resources).apply_checks
    )
    consumer.start()
    try:
        await append(client, ns, check_state(erp.id, "erp"))
        await eventually(lambda: _checks_counted(resources), lambda n: n == 1)
        server.stop()
        await asyncio.sleep(2)
        server = EmbeddedRedis.start(tmp_path / "redis", port=server.port, persist=False)
        writer = await connect_redis(server.url())  # the probes' side, connected to the new server
        await eventually(lambda: writer.exists(check_states_stream(ns)), lambda n: n == 1)  # the group came back
        await append(writer, ns, check_state(erp.id, "erp"))
        await eventually(lambda: _checks_counted(resources), lambda n: n == 2, deadline=40)
        await writer.aclose()
    finally:
        await consumer.stop()
        await client.aclose()
        server.stop()
    captured = capsys.readouterr()
    # Where log lines land depends on how logging was configured earlier in the session: look everywhere.
    logs = captured.out + captured.err + caplog.text
    assert logs.count("check-states stream unreachable; retrying with backoff") == 1
    assert "check-states stream reachable again; resuming" in logs
