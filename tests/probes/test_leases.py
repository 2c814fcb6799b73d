"""Leases in real Redis, and agents sharing real HTTP targets: once per slot, taken over when one dies."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from services.probes.agent.leases import AgentIdentity, Coordination, LeaseKind
from services.probes.agent.runtime import AgentRuntime
from services.probes.main import build_agent
from tests.probes.agents import StaticTargets, eventually, fast_settings, http_target
from tests.probes.servers import HttpTestServer, Route
from tests.support import ServiceHarness


async def test_a_lease_is_taken_once_extended_only_by_its_holder_and_released_only_by_it(
    harness: ServiceHarness,
) -> None:
    """SET NX gives a target to one agent; the other can neither extend nor release it; it expires on its own."""
    resources = await harness.resources("probes")
    coord = Coordination(resources.redis, harness.settings.namespace)
    assert await coord.acquire(LeaseKind.CHECK, "a", {"erp": 5000, "pim": 5000}) == ["erp", "pim"]
    assert await coord.acquire(LeaseKind.CHECK, "b", {"erp": 5000, "crm": 5000}) == ["crm"]
    assert await coord.free(LeaseKind.CHECK, ["erp", "crm", "other"]) == ["other"]
    assert await coord.renew(LeaseKind.CHECK, "b", {"erp": 5000, "crm": 5000}) == ["erp"]
    assert await coord.release(LeaseKind.CHECK, "b", ["erp", "crm"]) == 1
    assert await coord.holders(LeaseKind.CHECK, ["erp", "crm"]) == {"erp": "a"}
    assert await coord.acquire(LeaseKind.RESOURCE, "b", {"erp": 5000}) == ["erp"]
    await coord.acquire(LeaseKind.CHECK, "b", {"short": 150})
    await asyncio.sleep(0.3)
    assert await coord.free(LeaseKind.CHECK, ["short"]) == ["short"]


async def _rows(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch("SELECT service_id, slot, agent_id, success FROM probes.probe_results"))
    finally:
        await conn.close()


def _identity(name: str) -> AgentIdentity:
    return AgentIdentity(f"{name}-{uuid.uuid4().hex[:6]}", "test-host", 1, datetime.now(UTC))


@pytest.mark.timeout(90)
async def test_two_agents_share_the_targets_and_the_survivor_takes_over_within_one_interval(
    harness: ServiceHarness,
) -> None:
    """Six targets split 3/3 between two agents, each slot checked by exactly one; when one agent dies without
    releasing anything, the other checks each of its targets from the very next slot after the last one started."""
    resources = await harness.resources("probes")
    settings = fast_settings(harness)
    coord = Coordination(resources.redis, settings.namespace)
    routes = {f"/t{i}": Route() for i in range(6)}
    async with HttpTestServer(routes) as web:
        targets = StaticTargets([http_target(str(uuid.uuid4()), web.url(f"/t{i}"), interval=3) for i in range(6)])
        ids = {t.service_id for t in targets.targets}
        first = build_agent(resources, settings, targets, identity=_identity("first"))
        second = build_agent(resources, settings, targets, identity=_identity("second"))
        agents: list[AgentRuntime] = [first]
        try:
            await first.start()
            await eventually(lambda: _holds(first, 6), what="the first agent to take all six targets")
            await second.start()
            agents.append(second)
            await eventually(lambda: _split(first, second), what="a 3/3 split")
            await eventually(lambda: _checked_by(harness, second.agent_id, 3), what="the second agent's first checks")
            await eventually(lambda: _all_started(coord, first), what="a check of each of the first agent's targets")

            victims = {sid for sid, _ in first.check_leases.held()}
            await first.stop(graceful=False)
            agents.remove(first)
            marks = await coord.last_slots(sorted(victims))
            assert set(marks) == victims

            async def taken_over() -> list[asyncpg.Record] | None:
                rows = [r for r in await _rows(harness.settings.database_url) if r["agent_id"] == second.agent_id]
                done = {r["service_id"] for r in rows if r["service_id"] in victims}
                return rows if done == victims else None

            rows = await eventually(taken_over, timeout=30, what="the survivor to check every target of the dead agent")
            dead = await _rows(harness.settings.database_url)
            stored_by_dead = {(r["service_id"], r["slot"]) for r in dead if r["agent_id"] == first.agent_id}
            for service_id in victims:
                first_slot = min(r["slot"] for r in rows if r["service_id"] == service_id)
                # The dead agent's last started slot is checked again when its check was never stored.
                mark = marks[service_id]
                expected = mark + 1 if (service_id, mark) in stored_by_dead else mark
                assert first_slot == expected, "a slot was skipped or repeated in the takeover"
            assert {sid for sid, _ in second.check_leases.held()} == ids

            everything = await _rows(harness.settings.database_url)
            slots = [(r["service_id"], r["slot"]) for r in everything]
            assert len(slots) == len(set(slots)), "a slot was checked twice"
            assert all(r["success"] for r in everything)
            listed = await eventually(
                lambda: _alone(coord, second.agent_id), what="the dead agent to drop off the list"
            )
            assert {sid for sid, _ in listed.leases[LeaseKind.CHECK]} == ids
        finally:
            for agent in agents:
                await agent.stop()


async def _holds(agent: AgentRuntime, count: int) -> bool:
    return len(agent.check_leases) == count


async def _split(a: AgentRuntime, b: AgentRuntime) -> bool:
    return len(a.check_leases) == 3 and len(b.check_leases) == 3


async def _checked_by(harness: ServiceHarness, agent_id: str, targets: int) -> bool:
    rows = await _rows(harness.settings.database_url)
    return len({r["service_id"] for r in rows if r["agent_id"] == agent_id}) >= targets


async def _all_started(coord: Coordination, agent: AgentRuntime) -> bool:
    held = [sid for sid, _ in agent.check_leases.held()]
    return len(await coord.last_slots(held)) == len(held) == 3


async def _alone(coord: Coordination, agent_id: str):  # type: ignore[no-untyped-def]
    agents = await coord.agents()
    return agents[0] if [a.agent_id for a in agents] == [agent_id] and agents[0].leases[LeaseKind.CHECK] else None


async def test_a_graceful_stop_hands_the_targets_over_at_once(harness: ServiceHarness) -> None:
    """An agent that stops cleanly releases its leases, so the other takes them at its next tick, not at expiry."""
    resources = await harness.resources("probes")
    settings = fast_settings(harness, probes_lease_seconds=30.0)
    async with HttpTestServer({"/": Route()}) as web:
        targets = StaticTargets([http_target(str(uuid.uuid4()), web.url("/"), interval=60) for _ in range(2)])
        first = build_agent(resources, settings, targets, identity=_identity("first"))
        second = build_agent(resources, settings, targets, identity=_identity("second"))
        await first.start()
        await eventually(lambda: _holds(first, 2), what="the first agent's leases")
        await second.start()
        try:
            await asyncio.sleep(0.5)
            await first.stop()
            # The leases run for 30 s: only a release explains a takeover within a few ticks.
            await eventually(lambda: _holds(second, 2), timeout=5, what="the released targets to be taken")
        finally:
            await second.stop()
