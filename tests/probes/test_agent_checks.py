"""Periodic checks by one agent against real HTTP servers, stored in real PostgreSQL, announced on real Redis."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from b2x.monitoring.v1 import probes_pb2

from services.common.events import Resync, Topic
from services.probes.domain import BreakerState, ErrorType
from services.probes.events import BusProbeEvents
from services.probes.main import build_agent, engine_config
from services.probes.probing.engine import ProbeEngine
from services.probes.repository import PostgresProbeRepository
from services.probes.service import ConnectionTestRequest, ProbesService
from tests.probes.agents import StaticTargets, eventually, fast_settings, http_target
from tests.probes.conftest import ENVIRON, SECRET_TOKEN, assert_no_secrets
from tests.probes.servers import HttpTestServer, Route
from tests.support import ServiceHarness


async def _fetch(harness: ServiceHarness, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(harness.settings.database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def test_checks_are_stored_with_latest_state_and_rollups_and_failures_become_errors(
    harness: ServiceHarness,
) -> None:
    """A healthy and a failing target: each check is a result row, the latest state and the minute/hour rollups
    follow, the failures are communication errors announced on the bus, the state stream gets every check,
    and no secret from the target's headers shows up anywhere."""
    resources = await harness.resources("probes")
    settings = fast_settings(harness)
    routes = {"/ok": Route(), "/down": Route(503, "Service Unavailable", body=f"echo {SECRET_TOKEN}".encode())}
    async with HttpTestServer(routes) as web, await resources.bus.subscribe(Topic.COMMUNICATION_ERRORS) as events:
        ok = http_target(str(uuid.uuid4()), web.url("/ok"), interval=1)
        down = http_target(str(uuid.uuid4()), web.url("/down"), interval=1)
        down = replace(down, options=replace(down.options, headers=(("Authorization", "Bearer ${ERP_TOKEN}"),)))
        agent = build_agent(resources, settings, StaticTargets([ok, down]), environ=ENVIRON)
        await agent.start()
        try:
            await eventually(lambda: _count(harness, ok.service_id, 2), what="two checks of the healthy target")
            await eventually(lambda: _count(harness, down.service_id, 2), what="two checks of the failing target")
            event = await events.get(timeout=10)
        finally:
            await agent.stop()
    assert not isinstance(event, Resync)
    recorded = event.communication_error_recorded.error
    assert recorded.service_id == down.service_id
    assert recorded.error_type == probes_pb2.COMMUNICATION_ERROR_TYPE_SERVICE_UNAVAILABLE
    assert recorded.connection_test_id == "" and recorded.details.http_status_code == 503

    latest = {r["service_id"]: r for r in await _fetch(harness, "SELECT * FROM probes.service_latest")}
    assert latest[ok.service_id]["success"] and latest[ok.service_id]["breaker_state"] == "CLOSED"
    assert latest[ok.service_id]["last_success_at"] is not None and latest[ok.service_id]["speed_rating"] == "FAST"
    failing = latest[down.service_id]
    assert not failing["success"] and failing["error_type"] == "SERVICE_UNAVAILABLE"
    assert failing["consecutive_failures"] >= 2 and failing["last_failure_at"] is not None

    results = await _fetch(harness, "SELECT * FROM probes.probe_results WHERE service_id = $1", down.service_id)
    errors = await _fetch(harness, "SELECT * FROM probes.communication_errors WHERE service_id = $1", down.service_id)
    assert {r["communication_error_id"] for r in results if r["communication_error_id"]} <= {e["id"] for e in errors}
    assert all(r["status_code"] == 503 and r["ttfb_ms"] is not None for r in results)
    minute = await _fetch(harness, "SELECT * FROM probes.latency_minute WHERE service_id = $1", ok.service_id)
    hour = await _fetch(harness, "SELECT * FROM probes.latency_hour WHERE service_id = $1", ok.service_id)
    assert sum(r["checks"] for r in minute) == sum(r["checks"] for r in hour) >= 2
    assert sum(hour[0]["histogram"]) == hour[0]["checks"] - hour[0]["failures"]
    counts = await _fetch(harness, "SELECT * FROM probes.error_counts_hourly WHERE service_id = $1", down.service_id)
    assert sum(c["count"] for c in counts) == len(errors) and counts[0]["endpoint_key"].endswith("/down")

    stream = await resources.redis.xrange(f"{settings.namespace}:probes:check-states")
    states = [probes_pb2.ServiceCheckState.FromString(fields[b"state"]) for _, fields in stream]
    assert {s.service_id for s in states} == {ok.service_id, down.service_id}
    stored = repr([dict(r) for r in errors]) + repr([dict(r) for r in results]) + str(recorded) + repr(states)
    assert_no_secrets(stored)


async def _count(harness: ServiceHarness, service_id: str, n: int) -> bool:
    rows = await _fetch(harness, "SELECT count(*) AS n FROM probes.probe_results WHERE service_id = $1", service_id)
    return bool(rows[0]["n"] >= n)


async def _latest(harness: ServiceHarness, service_id: str) -> asyncpg.Record | None:
    rows = await _fetch(harness, "SELECT * FROM probes.service_latest WHERE service_id = $1", service_id)
    return rows[0] if rows else None


@pytest.mark.timeout(90)
async def test_the_breaker_opens_skips_checks_and_closes_after_a_successful_trial(harness: ServiceHarness) -> None:
    """Two failed checks open the breaker: later checks are not sent and report CIRCUIT_BREAKER_OPEN, one error
    marks the opening; an on-demand test still reaches the service and reports the open breaker; once the service
    recovers, the half-open trial closes the breaker."""
    resources = await harness.resources("probes")
    settings = fast_settings(harness, probes_breaker_failures=2, probes_breaker_cooldown_seconds=2.0,
                             probes_breaker_max_cooldown_seconds=4.0)  # fmt: skip
    routes = {"/flaky": Route(503, "Service Unavailable")}
    async with HttpTestServer(routes) as web:
        target = http_target(str(uuid.uuid4()), web.url("/flaky"), interval=1)
        lister = StaticTargets([target])
        agent = build_agent(resources, settings, lister)
        await agent.start()
        try:

            async def skipped() -> bool:
                rows = await _fetch(harness, "SELECT * FROM probes.probe_results WHERE skipped")
                return bool(rows) and all(r["error_type"] == "CIRCUIT_BREAKER_OPEN" for r in rows)

            await eventually(skipped, what="a check skipped by the open breaker")
            sent_while_open = len(web.requests)
            repository = PostgresProbeRepository(resources.pool)
            service = ProbesService(
                lister, ProbeEngine(engine_config(settings), {}), repository, BusProbeEvents(resources.bus)
            )
            await eventually(lambda: _open(harness, target.service_id), what="the breaker state to be stored")
            on_demand = await service.test_connection(ConnectionTestRequest(target.slug))
            assert on_demand.breaker is BreakerState.OPEN and len(web.requests) > sent_while_open
            assert on_demand.error is not None and on_demand.error.error_type is ErrorType.SERVICE_UNAVAILABLE
            assert (await repository.get_test(on_demand.id)).breaker is BreakerState.OPEN

            routes["/flaky"] = Route()

            async def closed() -> bool:
                row = await _latest(harness, target.service_id)
                return bool(row and row["breaker_state"] == "CLOSED" and row["success"])

            await eventually(closed, what="the breaker to close after the service recovered")
        finally:
            await agent.stop()
    opened = await _fetch(
        harness, "SELECT * FROM probes.communication_errors WHERE error_type = 'CIRCUIT_BREAKER_OPEN'"
    )
    assert len(opened) >= 1 and "opened after 2 consecutive failed checks" in opened[0]["message"]
    assert opened[0]["error_group"] == "SERVICE" and opened[0]["severity"] == "WARNING"
    skipped_rows = await _fetch(harness, "SELECT count(*) AS n FROM probes.probe_results WHERE skipped")
    assert len(opened) <= skipped_rows[0]["n"], "an error per skipped check instead of one per opening"


async def _open(harness: ServiceHarness, service_id: str) -> bool:
    row = await _latest(harness, service_id)
    return bool(row and row["breaker_state"] == "OPEN")


async def test_a_periodic_check_with_an_unusable_ca_file_records_a_failure(
    harness: ServiceHarness, tmp_path: Path
) -> None:
    """A target whose ca_file vanished after it was configured is recorded as a failed check with the reason,
    not left without a state (UNKNOWN forever)."""
    resources = await harness.resources("probes")
    async with HttpTestServer({"/": Route()}) as web:
        broken = http_target(str(uuid.uuid4()), web.url("/").replace("http://", "https://"), interval=1)
        broken = replace(broken, options=replace(broken.options, ca_file=str(tmp_path / "gone.pem")))
        agent = build_agent(resources, fast_settings(harness), StaticTargets([broken]))
        await agent.start()
        try:
            row = await eventually(lambda: _latest(harness, broken.service_id), what="a recorded check")
        finally:
            await agent.stop()
    assert not row["success"] and row["error_type"] == "SSL_HANDSHAKE_FAILED"
    assert "gone.pem" in row["summary"]
