"""Resource sampling against a real metrics endpoint and real processes, stored and read back over real gRPC."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime

import asyncpg
import grpc
import httpx
import psutil
import pytest
from b2x.monitoring.v1 import events_pb2, health_pb2, health_pb2_grpc, probes_pb2, probes_pb2_grpc

from services.common.events import Resync, Topic
from services.health.main import build_server as build_health
from services.health.settings import HealthSettings
from services.probes.agent.resources.agent import ResourceAgent
from services.probes.agent.resources.store import ResourceStore
from services.probes.domain import HOST_PROCESS, ResourceSource, Thresholds
from services.probes.events import BusProbeEvents
from services.probes.main import build_agent, build_server
from tests.health.helpers import definition, register
from tests.probes.agents import StaticTargets, eventually, fast_settings, http_target
from tests.probes.servers import HttpTestServer, Route
from tests.support import ServiceHarness

GB = 1024**3
TIMEOUT = 20


def metrics(cpu_seconds: float, used: float, active: int, queue: int) -> Route:
    body = (
        "# TYPE process_cpu_seconds_total counter\n"
        f"process_cpu_seconds_total {cpu_seconds}\n"
        f"process_resident_memory_bytes {used}\n"
        f"b2x_memory_total_bytes {8 * GB}\n"
        f'b2x_pool_active{{pool="crm"}} {active}\n'
        f'b2x_pool_total{{pool="crm"}} 10\n'
        f"b2x_threads 42\n"
        f"b2x_queue_depth {queue}\n"
    )
    return Route(body=body.encode(), content_type="text/plain; version=0.0.4")


async def _drain(subscription, topic_field: str) -> list[events_pb2.Event]:  # type: ignore[no-untyped-def]
    found = []
    while True:
        try:
            item = await subscription.get(timeout=0.5)
        except TimeoutError:
            return found
        if not isinstance(item, Resync) and item.HasField(topic_field):
            found.append(item)


async def test_a_metrics_endpoint_is_sampled_and_breaches_alert_once_until_they_clear(harness: ServiceHarness) -> None:
    """Scrapes give memory, pool, threads, queue, then CPU by rate; each breach raises one stored alert event,
    repeated samples add none, and recovering figures resolve them; the RPCs show figures, alerts and history."""
    resources = await harness.resources("probes")
    routes = {"/metrics": metrics(100.0, 7.7 * GB, 10, 1500)}
    async with (
        HttpTestServer(routes) as web,
        await resources.bus.subscribe(Topic.RESOURCE_ALERTS) as alerts,
        await resources.bus.subscribe(Topic.RESOURCE_METRICS) as updates,
        httpx.AsyncClient() as client,
    ):
        target = http_target(
            str(uuid.uuid4()), web.url("/"), resources=ResourceSource(metrics_url=web.url("/metrics") + "#threads=b2x_threads"),
            thresholds=Thresholds(cpu_sustained_seconds=0),
        )  # fmt: skip
        agent = ResourceAgent(
            ResourceStore(resources.pool), BusProbeEvents(resources.bus), "agent-1", lookup={target.service_id: target}.get,
            owns=lambda _: True, interval=5, environ={}, hostname="test", client=client,
        )  # fmt: skip
        await agent.gained([target.service_id])
        assert await agent.round() == 1
        first = await _drain(alerts, "resource_alert_triggered")
        opened = {e.resource_alert_triggered.alert.alert_type for e in first}
        assert opened == {
            health_pb2.RESOURCE_ALERT_TYPE_MEMORY_HIGH, health_pb2.RESOURCE_ALERT_TYPE_MEMORY_CRITICAL,
            health_pb2.RESOURCE_ALERT_TYPE_POOL_EXHAUSTED, health_pb2.RESOURCE_ALERT_TYPE_QUEUE_BACKLOG,
        }  # fmt: skip
        routes["/metrics"] = metrics(100.0 + 4 * 1000.0, 7.7 * GB, 10, 1500)
        await asyncio.sleep(0.05)
        await agent.round()
        second = await _drain(alerts, "resource_alert_triggered")
        assert [e.resource_alert_triggered.alert.alert_type for e in second] == [
            health_pb2.RESOURCE_ALERT_TYPE_CPU_HIGH
        ]
        routes["/metrics"] = metrics(100.0 + 8 * 1000.0, 7.7 * GB, 10, 1500)
        await asyncio.sleep(0.05)
        await agent.round()
        assert await _drain(alerts, "resource_alert_triggered") == [], "a lasting breach alerted twice"
        published = await _drain(updates, "resource_metrics_updated")
        assert len(published) == 3 and published[-1].resource_metrics_updated.service_id == target.service_id
        assert published[0].resource_metrics_updated.metrics.thread_count == 42
        # every update repeats the alerts open after its sample (subscribers that missed an event converge)
        assert {a.alert_type for a in published[0].resource_metrics_updated.open_alerts} == opened
        assert {a.alert_type for a in published[-1].resource_metrics_updated.open_alerts} == opened | {
            health_pb2.RESOURCE_ALERT_TYPE_CPU_HIGH
        }

        routes["/metrics"] = metrics(100.0 + 8 * 1000.0, 2 * GB, 2, 10)
        await agent.round()
        resolved = await _drain(alerts, "resource_alert_triggered")
    kinds = {e.resource_alert_triggered.alert.alert_type for e in resolved}
    assert kinds == opened | {health_pb2.RESOURCE_ALERT_TYPE_CPU_HIGH}
    assert all(e.resource_alert_triggered.alert.HasField("resolved_at") for e in resolved)

    address = await harness.serve("probes", build_server, fast_settings(harness))
    stub = probes_pb2_grpc.ProbesServiceStub(harness.channel(address))
    current = (
        await stub.GetResourceMetrics(probes_pb2.GetResourceMetricsRequest(service=target.slug), timeout=TIMEOUT)
    ).resources
    m = current.metrics
    assert m.memory_used_bytes == 2 * GB and m.memory_total_bytes == 8 * GB and m.memory_percent == 25
    assert m.memory_peak_bytes == int(7.7 * GB) and m.cpu_peak > 80 and m.connection_pool_total == 10
    assert current.source == f"prometheus {web.url('/metrics')}" and not current.stale and not current.active_alerts
    assert current.thresholds.cpu_percent == 80
    history = await stub.ListResourceAlerts(probes_pb2.ListResourceAlertsRequest(service=target.slug), timeout=TIMEOUT)
    assert len(history.alerts) == 5 and all(a.HasField("resolved_at") for a in history.alerts)
    active = await stub.ListResourceAlerts(probes_pb2.ListResourceAlertsRequest(active_only=True), timeout=TIMEOUT)
    assert list(active.alerts) == []
    page = await stub.ListResourceAlerts(
        probes_pb2.ListResourceAlertsRequest(service=target.service_id, page={"page_size": 2}), timeout=TIMEOUT
    )
    assert len(page.alerts) == 2 and page.page_info.total_count == 5 and page.page_info.has_next_page
    points = (
        await stub.GetResourceHistory(probes_pb2.GetResourceHistoryRequest(service=target.slug), timeout=TIMEOUT)
    ).points
    assert sum(p.samples for p in points) == 4 and max(p.memory_percent_max for p in points) == pytest.approx(96.25)
    assert max(p.queue_depth_max for p in points) == 1500
    listed = await stub.ListResourceMetrics(probes_pb2.ListResourceMetricsRequest(), timeout=TIMEOUT)
    assert [r.service_id for r in listed.resources] == [target.service_id]


async def test_processes_and_the_host_are_sampled_by_a_running_agent(harness: ServiceHarness) -> None:
    """This test's own process (by pid and with its children) and the host are sampled every interval through
    resource leases; a process that does not run here is nobody's to sample."""
    resources = await harness.resources("probes")
    settings = fast_settings(harness)
    me = http_target(
        str(uuid.uuid4()), "http://127.0.0.1:9/", interval=3600, resources=ResourceSource(process_pid=os.getpid())
    )
    host = http_target(
        str(uuid.uuid4()), "http://127.0.0.1:9/", interval=3600, resources=ResourceSource(process_name=HOST_PROCESS)
    )
    absent = http_target(str(uuid.uuid4()), "http://127.0.0.1:9/", interval=3600,
                         resources=ResourceSource(process_name=f"no-such-process-{uuid.uuid4().hex[:6]}"))  # fmt: skip
    agent = build_agent(resources, settings, StaticTargets([me, host, absent]))
    assert set(agent.resources.candidates({t.service_id: t for t in (me, host, absent)})) == {
        me.service_id,
        host.service_id,
    }
    await agent.start()
    try:

        async def sampled() -> list[asyncpg.Record] | None:
            rows = await resources.pool.fetch(
                "SELECT * FROM probes.resource_latest WHERE cpu_percent > 0 OR threads > 0"
            )
            return rows if {r["service_id"] for r in rows} >= {me.service_id} and len(rows) == 2 else None

        rows = {r["service_id"]: r for r in await eventually(sampled, what="samples of the process and the host")}
    finally:
        await agent.stop()
    mine = rows[me.service_id]
    assert mine["threads"] >= 1 and 0 < mine["memory_used_bytes"] < mine["memory_total_bytes"]
    assert mine["source"] == f"process pid {os.getpid()}"
    assert rows[host.service_id]["memory_total_bytes"] == psutil.virtual_memory().total
    assert rows[host.service_id]["source"].startswith("host ")


@pytest.mark.timeout(60)
async def test_a_breach_is_announced_by_the_next_sample_at_the_default_interval(harness: ServiceHarness) -> None:
    """With sampling every 5 s (the default), a queue that overflows is announced as QUEUE_BACKLOG by the next
    sample (or the one after, if a round was already under way): within 10 s. The seconds themselves are
    measured by bench/resource_alerts.py; here the samples are counted, which a loaded machine cannot skew."""
    resources = await harness.resources("probes")
    settings = fast_settings(harness, probes_resource_interval_seconds=5.0)
    routes = {"/metrics": metrics(1.0, GB, 1, 10)}
    async with HttpTestServer(routes) as web, await resources.bus.subscribe(Topic.RESOURCE_ALERTS) as alerts:
        target = http_target(str(uuid.uuid4()), web.url("/"), interval=3600,
                             resources=ResourceSource(metrics_url=web.url("/metrics")))  # fmt: skip
        agent = build_agent(resources, settings, StaticTargets([target]))
        await agent.start()
        try:
            await eventually(lambda: _sampled_once(resources.pool, target.service_id), what="a first sample")
            routes["/metrics"] = metrics(1.0, GB, 1, 5000)
            samples_before = agent.resources.samples_taken
            event = await alerts.get(timeout=TIMEOUT)
            samples = agent.resources.samples_taken - samples_before
        finally:
            await agent.stop()
    assert not isinstance(event, Resync)
    assert event.resource_alert_triggered.alert.alert_type == health_pb2.RESOURCE_ALERT_TYPE_QUEUE_BACKLOG
    assert 1 <= samples <= 2, f"breach announced after {samples} samples"


async def _sampled_once(pool: asyncpg.Pool, service_id: str) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM probes.resource_samples WHERE service_id = $1", service_id))


async def test_unknown_services_and_services_without_resources_are_explained(harness: ServiceHarness) -> None:
    """A service with no resource source is NOT_FOUND with the keys to set; a bad bucket range is INVALID_ARGUMENT."""
    health_addr = await harness.serve("health", build_health, harness.settings_for(HealthSettings))
    await register(
        health_pb2_grpc.HealthServiceStub(harness.channel(health_addr)), definition("pim", "http://127.0.0.1:9/health")
    )
    address = await harness.serve("probes", build_server, fast_settings(harness, health_addr=health_addr))
    stub = probes_pb2_grpc.ProbesServiceStub(harness.channel(address))
    with pytest.raises(grpc.aio.AioRpcError) as bare:
        await stub.GetResourceMetrics(probes_pb2.GetResourceMetricsRequest(service="pim"), timeout=TIMEOUT)
    assert bare.value.code() == grpc.StatusCode.NOT_FOUND and "resources.metrics_url" in (bare.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.GetResourceHistory(probes_pb2.GetResourceHistoryRequest(service="nope"), timeout=TIMEOUT)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    year = probes_pb2.GetResourceHistoryRequest(service="pim", bucket=probes_pb2.HISTORY_BUCKET_MINUTE)
    year.time_range.start.FromDatetime(datetime(2025, 1, 1, tzinfo=UTC))
    year.time_range.end.FromDatetime(datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(grpc.aio.AioRpcError) as wide:
        await stub.GetResourceHistory(year, timeout=TIMEOUT)
    assert wide.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "too many" in (wide.value.details() or "")
