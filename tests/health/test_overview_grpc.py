"""GetHealthSummary and GetHealthHistory over real gRPC, from real rollups in PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from b2x.monitoring.v1 import common_pb2, health_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.runtime import Resources
from services.health.aggregation.maintenance import Maintenance
from services.health.aggregation.service import Aggregator
from services.health.aggregation.store import PostgresAggregationStore
from services.health.domain import ResourceSnapshot
from services.health.events import BusStatusAnnouncer
from services.health.status import CheckState
from tests.health.helpers import TIMEOUT, definition, register, start_health
from tests.support import ServiceHarness

HOUR = timedelta(hours=1)


def _aggregator(resources: Resources) -> Aggregator:
    return Aggregator(PostgresAggregationStore(resources.pool), BusStatusAnnouncer(resources.bus), slow_ms=1000)


def _check(service_id: str, at: datetime, ok: bool = True, latency: float = 50, failures: int = 0) -> CheckState:
    return CheckState(service_id, "s", at, ok, latency_ms=latency, consecutive_failures=failures,
                      error_type="" if ok else "CONNECTION_REFUSED", summary="" if ok else "connection refused")  # fmt: skip


def _ts(at: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


async def test_the_summary_gives_the_worst_status_counts_and_one_row_per_service(harness: ServiceHarness) -> None:
    """One offline service makes the system OFFLINE; rows carry status, reason, latency, uptime, CPU and memory;
    a service never checked is counted unknown and a disabled one only as disabled."""
    stub = await start_health(harness)
    ids = {
        slug: (await register(stub, definition(slug, name=name, **extra))).service.id
        for slug, name, extra in (
            ("erp", "enventa ERP", {}),
            ("crm", "CRM Integration", {"type": common_pb2.SERVICE_TYPE_CRM}),
            ("pim", "PIM System", {"type": common_pb2.SERVICE_TYPE_PIM}),
            ("old", "Old Shop", {"enabled": False}),
        )
    }
    resources = await harness.resources("health")
    now = datetime.now(UTC)
    aggregator = _aggregator(resources)
    await aggregator.apply_checks([_check(ids["erp"], now, latency=45), _check(ids["crm"], now, ok=False, failures=3)])
    await aggregator.apply_resources(
        {ids["erp"]: ResourceSnapshot(now, cpu_percent=45.0, memory_percent=68.0, memory_total_bytes=1 << 30)}
    )

    summary = await stub.GetHealthSummary(health_pb2.GetHealthSummaryRequest(), timeout=TIMEOUT)
    assert summary.overall_status == common_pb2.SERVICE_STATUS_OFFLINE
    assert summary.overall_reason == "1 of 3 services offline: CRM Integration"
    counts = (summary.online_count, summary.degraded_count, summary.offline_count, summary.unknown_count)
    assert counts == (1, 0, 1, 1)
    assert summary.disabled_count == 1
    rows = {c.slug: c for c in summary.components}
    assert [c.slug for c in summary.components] == ["crm", "erp", "old", "pim"]
    erp, crm, pim = rows["erp"], rows["crm"], rows["pim"]
    assert (erp.name, erp.type, erp.status) == (
        "enventa ERP",
        common_pb2.SERVICE_TYPE_ERP,
        common_pb2.SERVICE_STATUS_ONLINE,
    )
    assert (erp.average_latency_ms, erp.uptime_percent, erp.cpu_percent, erp.memory_percent) == (45, 100, 45, 68)
    assert erp.HasField("last_checked") and erp.last_checked == erp.last_successful
    assert crm.status == common_pb2.SERVICE_STATUS_OFFLINE
    assert crm.status_reason == "3 consecutive checks failed: CONNECTION_REFUSED (connection refused)"
    assert crm.HasField("status_changed_at") and not pim.HasField("status_changed_at")
    assert crm.uptime_percent == 0 and not crm.HasField("average_latency_ms") and not crm.HasField("cpu_percent")
    assert pim.status == common_pb2.SERVICE_STATUS_UNKNOWN and pim.status_reason == "not checked yet"
    assert not pim.HasField("uptime_percent") and not pim.HasField("last_checked")
    assert not rows["old"].enabled and rows["old"].status_reason == "disabled; not checked"
    assert summary.generated_at.ToDatetime(tzinfo=UTC) >= now


async def test_history_gives_every_hour_with_availability_checks_failures_and_latency(harness: ServiceHarness) -> None:
    """Hourly points of one service come from its rollups, empty hours included; all services add up."""
    stub = await start_health(harness)
    erp = (await register(stub, definition("erp"))).service
    crm = (await register(stub, definition("crm"))).service
    resources = await harness.resources("health")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    two_ago, one_ago = hour - 2 * HOUR, hour - HOUR
    await _aggregator(resources).apply_checks([
        _check(erp.id, two_ago + timedelta(minutes=1), latency=100),
        _check(erp.id, two_ago + timedelta(minutes=2), latency=200),
        _check(erp.id, two_ago + timedelta(minutes=3), ok=False),
        _check(erp.id, two_ago + timedelta(minutes=4), ok=False),
        _check(crm.id, hour + timedelta(seconds=1), ok=False),
    ])  # fmt: skip

    request = health_pb2.GetHealthHistoryRequest(
        service="erp",
        range=common_pb2.TimeRange(start=_ts(two_ago - HOUR), end=_ts(hour)),
        bucket=health_pb2.HEALTH_HISTORY_BUCKET_HOUR,
    )
    history = await stub.GetHealthHistory(request, timeout=TIMEOUT)
    assert (history.service_id, history.service_slug, history.bucket) == (
        erp.id,
        "erp",
        health_pb2.HEALTH_HISTORY_BUCKET_HOUR,
    )
    points = [(p.bucket_start.ToDatetime(tzinfo=UTC), p.checks, p.failures) for p in history.points]
    assert points == [(two_ago - HOUR, 0, 0), (two_ago, 4, 2), (one_ago, 0, 0)]
    busy = history.points[1]
    assert (busy.availability_percent, busy.average_latency_ms) == (50, 150)
    assert not history.points[0].HasField("availability_percent")
    assert (history.total.checks, history.total.availability_percent) == (4, 50)

    everything = await stub.GetHealthHistory(
        health_pb2.GetHealthHistoryRequest(range=common_pb2.TimeRange(start=_ts(two_ago), end=_ts(hour + HOUR))),
        timeout=TIMEOUT,
    )
    assert everything.service_id == "" and everything.bucket == health_pb2.HEALTH_HISTORY_BUCKET_HOUR
    assert [(p.checks, p.failures) for p in everything.points] == [(4, 2), (0, 0), (1, 1)]
    assert everything.total.availability_percent == 40


async def test_day_buckets_start_at_midnight_in_the_requested_time_zone(harness: ServiceHarness) -> None:
    """DAY buckets in Europe/Berlin start at 23:00 UTC in winter and sum the hours of that local day."""
    stub = await start_health(harness)
    erp = (await register(stub, definition("erp"))).service
    resources = await harness.resources("health")
    berlin_midnight = datetime(2026, 1, 10, 23, 0, tzinfo=UTC)  # 2026-01-11 00:00 in Berlin
    await _aggregator(resources).apply_checks([
        _check(erp.id, berlin_midnight - timedelta(minutes=30)),
        _check(erp.id, berlin_midnight + timedelta(minutes=30)),
        _check(erp.id, berlin_midnight + timedelta(hours=5), ok=False),
    ])  # fmt: skip
    request = health_pb2.GetHealthHistoryRequest(
        service=erp.id,
        range=common_pb2.TimeRange(start=_ts(berlin_midnight - timedelta(hours=2)), end=_ts(berlin_midnight + HOUR)),
        bucket=health_pb2.HEALTH_HISTORY_BUCKET_DAY,
        time_zone="Europe/Berlin",
    )
    history = await stub.GetHealthHistory(request, timeout=TIMEOUT)
    starts = [p.bucket_start.ToDatetime(tzinfo=UTC) for p in history.points]
    assert starts == [berlin_midnight - timedelta(days=1), berlin_midnight]
    assert [(p.checks, p.failures) for p in history.points] == [(1, 0), (2, 1)]


async def test_history_requests_that_make_no_sense_are_refused_with_the_reason(harness: ServiceHarness) -> None:
    """Unknown service: NOT_FOUND; reversed or over-long range, unknown zone: INVALID_ARGUMENT naming the field."""
    stub = await start_health(harness)
    now = datetime.now(UTC)
    cases = [
        (health_pb2.GetHealthHistoryRequest(service="nope"), grpc.StatusCode.NOT_FOUND, "nope"),
        (
            health_pb2.GetHealthHistoryRequest(range=common_pb2.TimeRange(start=_ts(now), end=_ts(now - HOUR))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "range",
        ),
        (
            health_pb2.GetHealthHistoryRequest(range=common_pb2.TimeRange(start=_ts(now - timedelta(days=401)))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "400 days",
        ),
        (health_pb2.GetHealthHistoryRequest(time_zone="Mars/Olympus"), grpc.StatusCode.INVALID_ARGUMENT, "time_zone"),
    ]
    for request, code, words in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetHealthHistory(request, timeout=TIMEOUT)
        assert caught.value.code() == code
        assert words in (caught.value.details() or "")


async def test_the_default_history_is_the_last_24_hours_by_hour(harness: ServiceHarness) -> None:
    """With no range or bucket, history covers the 24 hours up to now in hourly points (25 with the current one)."""
    stub = await start_health(harness)
    history = await stub.GetHealthHistory(health_pb2.GetHealthHistoryRequest(), timeout=TIMEOUT)
    assert history.bucket == health_pb2.HEALTH_HISTORY_BUCKET_HOUR
    assert len(history.points) == 25
    assert history.total.checks == 0 and not history.total.HasField("availability_percent")


async def test_retention_deletes_rollup_hours_and_receipts_past_it(harness: ServiceHarness) -> None:
    """Rollup hours older than the retention and receipts older than a day are deleted; newer ones stay."""
    stub = await start_health(harness)
    erp = (await register(stub, definition("erp"))).service
    resources = await harness.resources("health")
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=401), now - timedelta(days=2)
    await _aggregator(resources).apply_checks([_check(erp.id, old), _check(erp.id, recent), _check(erp.id, now)])
    store = PostgresAggregationStore(resources.pool)
    maintenance = Maintenance(_aggregator(resources), store, retention=timedelta(days=400))
    assert await maintenance.prune() == (1, 2)
    left = await resources.pool.fetchval("SELECT sum(checks) FROM health.check_rollups_hourly")
    receipts = await resources.pool.fetchval("SELECT count(*) FROM health.check_receipts")
    assert (left, receipts) == (2, 1)
