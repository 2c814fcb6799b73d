"""Connected services and connection tests through GraphQL, against real health, probes and HTTP servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.stacks import PASSWORD, SECRET, services_stack
from tests.support import GraphQLWebSocket, ServiceHarness


@dataclass
class Stack:
    url: str
    operator: str
    viewer: str
    http: httpx.AsyncClient

    async def query(self, key: str, query: str, variables: dict[str, object] | None = None) -> dict:  # type: ignore[type-arg]
        response = await self.http.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {key}"},
        )
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def stack(harness: ServiceHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("ERP_TOKEN", SECRET)
    async with services_stack(harness, tmp_path) as running, httpx.AsyncClient(timeout=60) as http:
        yield Stack(running.url, running.operator, running.viewer, http)


async def test_services_are_listed_with_masked_endpoints(stack: Stack) -> None:
    """services lists the configured services; secrets in URLs never come back."""
    data = await stack.query(stack.viewer, "{ services { slug name type source endpoint status } }")
    services = {s["slug"]: s for s in data["data"]["services"]}
    assert set(services) == {"erp", "crm"}
    assert services["erp"]["type"] == "ERP" and services["erp"]["source"] == "FILE"
    assert SECRET not in str(data) and PASSWORD not in str(data)
    one = await stack.query(stack.viewer, '{ service(id: "crm") { name } }')
    assert one["data"]["service"]["name"] == "CRM Integration"
    missing = await stack.query(stack.viewer, '{ service(id: "wms") { name } }')
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_an_operator_tests_a_connection_and_a_viewer_may_not(stack: Stack) -> None:
    """testConnection returns phases, timings and a speed rating; a viewer is FORBIDDEN."""
    query = 'mutation { testConnection(service: "erp") { success summary speedRating phases { name status } metrics { totalLatencyMs } } }'
    denied = await stack.query(stack.viewer, query)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    result = (await stack.query(stack.operator, query))["data"]["testConnection"]
    assert result["success"] and result["speedRating"] in ("FAST", "NORMAL", "SLOW")
    assert [p["name"] for p in result["phases"]][:2] == ["dns", "tcp_connect"]
    assert result["metrics"]["totalLatencyMs"] > 0


async def test_a_failing_service_leaves_a_classified_error_with_masked_evidence(stack: Stack) -> None:
    """A 503 is SERVICE_UNAVAILABLE; the error is listed by group and its detail shows masked evidence."""
    run = await stack.query(
        stack.operator, 'mutation { testConnection(service: "crm") { success errorType communicationErrorId } }'
    )
    result = run["data"]["testConnection"]
    assert not result["success"] and result["errorType"] == "SERVICE_UNAVAILABLE"
    listed = await stack.query(
        stack.viewer,
        '{ communicationErrors(service: "crm", groups: [SERVICE]) { totalCount errors { id errorType } } }',
    )
    page = listed["data"]["communicationErrors"]
    assert page["totalCount"] == 1 and page["errors"][0]["id"] == result["communicationErrorId"]
    detail = await stack.query(
        stack.viewer,
        "query($id: ID!) { communicationError(id: $id) { severity recommendations details { httpStatusCode endpointUrl timing { totalTimeMs } } } }",
        {"id": result["communicationErrorId"]},
    )
    error = detail["data"]["communicationError"]
    assert error["details"]["httpStatusCode"] == 503 and error["recommendations"]
    assert SECRET not in str(detail) and PASSWORD not in str(detail)
    none = await stack.query(stack.viewer, "{ communicationErrors(groups: [TIMEOUT]) { totalCount } }")
    assert none["data"]["communicationErrors"]["totalCount"] == 0
    other = next(s for s in ("WARNING", "ERROR", "CRITICAL") if s != error["severity"])
    by_severity = "query($s: [ErrorSeverity!]) { communicationErrors(severities: $s) { totalCount } }"
    same = await stack.query(stack.viewer, by_severity, {"s": [error["severity"]]})
    different = await stack.query(stack.viewer, by_severity, {"s": [other]})
    assert same["data"]["communicationErrors"]["totalCount"] == 1
    assert different["data"]["communicationErrors"]["totalCount"] == 0


async def test_run_connection_test_streams_each_phase_then_the_result(stack: Stack) -> None:
    """The runConnectionTest subscription sends the phases as they complete, then the stored result."""
    async with GraphQLWebSocket(stack.url, {"Authorization": f"Bearer {stack.operator}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        await ws.subscribe(
            'subscription { runConnectionTest(service: "erp") { testId phase { name status } result { success id } } }'
        )
        updates = []
        while True:
            message = await ws.receive(timeout=30)
            if message["type"] == "complete":
                break
            updates.append(message["payload"]["data"]["runConnectionTest"])
    phases = [u["phase"]["name"] for u in updates if u["phase"]]
    assert phases[:2] == ["dns", "tcp_connect"]
    assert updates[-1]["result"]["success"] and updates[-1]["result"]["id"] == updates[-1]["testId"]
    stored = await stack.query(stack.viewer, '{ connectionTests(service: "erp") { results { id success } } }')
    assert updates[-1]["testId"] in [r["id"] for r in stored["data"]["connectionTests"]["results"]]


async def test_progress_of_a_test_started_elsewhere_is_visible_live(stack: Stack) -> None:
    """A subscriber to connectionTestProgress sees the phases of a test another client started."""
    async with GraphQLWebSocket(stack.url, {"Authorization": f"Bearer {stack.viewer}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        await ws.subscribe("subscription { connectionTestProgress { testId phase { name } result { success } } }")
        await asyncio.sleep(0.3)
        await stack.query(stack.operator, 'mutation { testConnection(service: "erp") { id } }')
        seen = []
        while not seen or seen[-1]["result"] is None:
            seen.append((await ws.receive(timeout=20))["payload"]["data"]["connectionTestProgress"])
    assert seen[0]["phase"]["name"] == "dns" and seen[-1]["result"]["success"]
