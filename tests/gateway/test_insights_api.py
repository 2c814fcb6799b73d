"""Patterns, exports, histories, check states, resources and agents through GraphQL, over real servers."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.auth import KeyStore, Role
from tests.stacks import PASSWORD, SECRET, services_stack
from tests.support import ServiceHarness

Query = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
async def query(harness: ServiceHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Query]:
    monkeypatch.setenv("ERP_TOKEN", SECRET)
    async with services_stack(harness, tmp_path, agent=True) as stack, httpx.AsyncClient(timeout=60) as http:
        pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=1)
        admin, _ = await KeyStore(pool).create("admin", Role.ADMIN)
        await pool.close()

        async def run(q: str, variables: dict[str, Any] | None = None, key: str | None = None) -> dict[str, Any]:
            response = await http.post(
                f"{stack.url}/graphql", json={"query": q, "variables": variables or {}},
                headers={"Authorization": f"Bearer {key or admin}"},
            )  # fmt: skip
            body: dict[str, Any] = response.json()
            assert "errors" not in body, body
            return body["data"]

        yield run


async def _eventually(check: Callable[[], Awaitable[bool]], seconds: float = 20) -> None:
    for _ in range(int(seconds * 5)):
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not reached in time")


async def test_the_agent_checks_services_and_keeps_latency_history(query: Query) -> None:
    """Periodic checks show up as check states (crm failing, erp fine) and as latency history of erp."""

    async def both_checked() -> bool:
        states = (await query("{ checkStates { serviceSlug success consecutiveFailures circuitBreaker } }"))[
            "checkStates"
        ]
        return {s["serviceSlug"] for s in states} == {"erp", "crm"}

    await _eventually(both_checked)
    states = {
        s["serviceSlug"]: s
        for s in (await query("{ checkStates { serviceSlug success circuitBreaker } }"))["checkStates"]
    }
    assert states["erp"]["success"] and not states["crm"]["success"]
    assert states["erp"]["circuitBreaker"] == "CLOSED"

    async def history() -> bool:
        h = await query('{ latencyHistory(service: "erp", bucket: MINUTE) { summary { checks availabilityPercent } } }')
        summary = h["latencyHistory"]["summary"]
        return bool(summary and summary["checks"] >= 1)

    await _eventually(history)

    async def leased() -> bool:
        # Leases are renewed every tick; the agent's published list can be a tick behind.
        agents = (await query("{ probeAgents { agentId checks } }"))["probeAgents"]
        return len(agents) == 1 and set(agents[0]["checks"]) == {"erp", "crm"}

    await _eventually(leased)


async def test_resources_are_sampled_from_the_metrics_endpoint(query: Query) -> None:
    """erp's Prometheus endpoint yields memory, pool and queue figures with their source."""

    async def sampled() -> bool:
        rows = (await query('{ resources(services: ["erp"]) { metrics { memoryUsedBytes } } }'))["resources"]
        return bool(rows and rows[0]["metrics"] and rows[0]["metrics"]["memoryUsedBytes"] > 0)

    await _eventually(sampled)
    row = (await query('{ resources(services: ["erp"]) { source stale metrics { memoryUsedBytes connectionPoolActive '
                       "connectionPoolTotal queueDepth } } }"))["resources"][0]  # fmt: skip
    assert row["metrics"] == {
        "memoryUsedBytes": 734003200.0,
        "connectionPoolActive": 8,
        "connectionPoolTotal": 10,
        "queueDepth": 23,
    }
    assert "metrics" in row["source"] and not row["stale"]


async def test_patterns_and_exports_of_communication_errors(query: Query) -> None:
    """After crm fails, patterns name it; the JSON and provider-report exports carry evidence, not secrets."""
    await query('mutation { testConnection(service: "crm") { success } }')
    patterns = (await query('{ errorPatterns(service: "crm") { totalErrors fingerprints { serviceSlug errorType count } '
                            "topTypes { errorType sharePercent } heatmap { weekday hour count } } }"))["errorPatterns"]  # fmt: skip
    assert patterns["totalErrors"] >= 1 and patterns["fingerprints"][0]["errorType"] == "SERVICE_UNAVAILABLE"
    assert len(patterns["heatmap"]) == 168 and patterns["topTypes"][0]["sharePercent"] > 0
    for fmt in ("JSON", "TEXT"):
        export = await query(
            f'{{ exportCommunicationErrors(service: "crm", format: {fmt}) {{ filename content itemCount }} }}'
        )
        file = export["exportCommunicationErrors"]
        assert file["itemCount"] >= 1 and "503" in file["content"]
        assert SECRET not in file["content"] and PASSWORD not in file["content"]


async def test_a_connection_test_exports_as_pdf(query: Query) -> None:
    """exportConnectionTest(format: PDF) returns a base64 PDF named after the service."""
    test = (await query('mutation { testConnection(service: "erp") { id } }'))["testConnection"]
    pdf = (await query("query($id: ID!) { exportConnectionTest(id: $id, format: PDF) { filename contentType content base64 } }",
                       {"id": test["id"]}))["exportConnectionTest"]  # fmt: skip
    assert pdf["base64"] and pdf["contentType"] == "application/pdf" and pdf["filename"].endswith(".pdf")
    assert base64.b64decode(pdf["content"]).startswith(b"%PDF")


async def test_health_summary_aggregates_the_agents_checks(query: Query) -> None:
    """healthSummary turns periodic checks into statuses: erp online, crm offline after repeated failures."""

    async def settled() -> bool:
        summary = (await query("{ healthSummary { components { slug status } } }"))["healthSummary"]
        states = {c["slug"]: c["status"] for c in summary["components"]}
        return states.get("erp") == "ONLINE" and states.get("crm") in ("DEGRADED", "OFFLINE")

    await _eventually(settled, 40)
    summary = (await query("{ healthSummary { overallStatus overallReason activeJobs failedJobs24h activeAlerts "
                           "components { slug statusReason uptimePercent } } }"))["healthSummary"]  # fmt: skip
    assert summary["overallStatus"] in ("DEGRADED", "OFFLINE") and "CRM Integration" in summary["overallReason"]
    crm = next(c for c in summary["components"] if c["slug"] == "crm")
    assert "SERVICE_UNAVAILABLE" in crm["statusReason"] or "503" in crm["statusReason"]
    history = (await query('{ healthHistory(service: "erp") { total { checks availabilityPercent } } }'))[
        "healthHistory"
    ]
    assert history["total"]["checks"] >= 1 and history["total"]["availabilityPercent"] == 100.0
