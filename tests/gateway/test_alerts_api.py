"""Alerts through GraphQL against a real gateway, health service, PostgreSQL and Redis: queries,
mutations with roles, tenant scope and audit, bad input codes, and the alertTriggered subscription."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from b2x.monitoring.v1 import jobs_pb2

from gateway.auth import KeyStore, Role
from tests.gateway.conftest import Gateway
from tests.health.alert_helpers import append_outcomes, eventually, outcome, serve_alerting
from tests.health.helpers import definition, register
from tests.support import GraphQLWebSocket, ServiceHarness

ALERTS = """query($f: AlertFilter, $first: Int, $after: String) {
  alerts(filter: $f, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id rule severity status summary occurrences episode tenantId jobType labels acknowledgedBy silencedBy }
  }
}"""
ALERT = """query($id: ID!) { alert(id: $id) {
  alert { id status resolvedBy resolveComment }
  episodes { episode status occurrences acknowledgedBy acknowledgeComment resolvedBy }
  notifications { channel status }
} }"""
ACK = "mutation($id: ID!, $c: String) { acknowledgeAlert(id: $id, comment: $c) { id status acknowledgedBy acknowledgeComment } }"
RESOLVE = 'mutation($id: ID!) { resolveAlert(id: $id, comment: "fixed the ERP") { id status resolvedBy } }'
SILENCE = """mutation($m: [String!]!, $d: String!, $c: String!) {
  createSilence(input: {matchers: $m, duration: $d, comment: $c}) { id active tenantId createdBy matchers { name op value } }
}"""


@pytest.fixture
async def gw(harness: ServiceHarness, database_url: str) -> AsyncIterator[Gateway]:
    health_addr = await serve_alerting(harness)
    harness.channel(health_addr)  # channels[0]: the tests' own way to the health service
    url = await harness.gateway(jobs_addr="127.0.0.1:1", health_addr=health_addr, probes_addr="127.0.0.1:1")
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    keys = KeyStore(pool)
    made = {}
    for name, role, tenant in (
        ("admin", Role.ADMIN, None),
        ("operator", Role.OPERATOR, None),
        ("viewer", Role.VIEWER, None),
        ("tenant_viewer", Role.VIEWER, "tenant-a"),
        ("tenant_operator", Role.OPERATOR, "tenant-a"),
        ("tenant_admin", Role.ADMIN, "tenant-a"),
    ):
        made[name], _ = await keys.create(name, role, tenant)
    await pool.close()
    async with httpx.AsyncClient(timeout=10) as http:
        yield Gateway(url=url, jobs=None, http=http, **made)  # type: ignore[arg-type]


async def data(gw: Gateway, key: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = (await gw.query(key, query, variables)).json()
    assert "errors" not in body, body["errors"]
    return body["data"]


async def error_code(gw: Gateway, key: str, query: str, variables: dict[str, Any] | None = None) -> str:
    body = (await gw.query(key, query, variables)).json()
    assert body.get("errors"), body
    return str(body["errors"][0]["extensions"]["code"])


async def active(gw: Gateway, key: str, n: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        nodes = (await data(gw, key, ALERTS, {"f": {"active": True}}))["alerts"]["nodes"]
        return nodes if len(nodes) == n else None

    return await eventually(probe)


async def test_an_operator_acknowledges_and_resolves_and_each_step_is_audited(
    harness: ServiceHarness, gw: Gateway
) -> None:
    await append_outcomes(harness, outcome("ERP_STOCK_SYNC", "tenant-a"))
    (alert,) = await active(gw, gw.viewer, 1)
    assert alert["rule"] == "jobs.failed" and alert["severity"] == "ERROR" and alert["status"] == "FIRING"
    assert alert["jobType"] == "ERP_STOCK_SYNC" and alert["tenantId"] == "tenant-a"

    assert await error_code(gw, gw.viewer, ACK, {"id": alert["id"]}) == "FORBIDDEN"
    acked = (await data(gw, gw.operator, ACK, {"id": alert["id"][:8], "c": "on it"}))["acknowledgeAlert"]
    assert acked["status"] == "ACKNOWLEDGED" and acked["acknowledgedBy"].startswith("operator (")
    assert acked["acknowledgeComment"] == "on it"
    assert await error_code(gw, gw.operator, ACK, {"id": alert["id"]}) == "FAILED_PRECONDITION"
    resolved = (await data(gw, gw.operator, RESOLVE, {"id": alert["id"]}))["resolveAlert"]
    assert resolved["status"] == "RESOLVED"

    detail = (await data(gw, gw.viewer, ALERT, {"id": alert["id"]}))["alert"]
    assert detail["alert"]["resolveComment"] == "fixed the ERP"
    (episode,) = detail["episodes"]
    assert episode["acknowledgedBy"].startswith("operator (") and episode["status"] == "RESOLVED"
    assert detail["notifications"] == []  # delivery not configured in this stack

    audit = await data(gw, gw.admin, "query($t: String) { auditLog(target: $t) { action outcome } }",
                       {"t": alert["id"]})  # fmt: skip
    actions = sorted((e["action"], e["outcome"]) for e in audit["auditLog"])
    assert ("acknowledgeAlert", "ok") in actions and ("resolveAlert", "ok") in actions
    assert ("acknowledgeAlert", "error") in actions  # the viewer's and the second attempt


async def test_a_tenant_key_sees_its_tenant_and_untenanted_alerts_only(harness: ServiceHarness, gw: Gateway) -> None:
    await append_outcomes(
        harness, outcome("A_SYNC", "tenant-a"), outcome("B_SYNC", "tenant-b"), outcome("SHARED_SYNC", "")
    )
    everything = await active(gw, gw.viewer, 3)
    mine = await active(gw, gw.tenant_viewer, 2)
    assert sorted(a["jobType"] for a in mine) == ["A_SYNC", "SHARED_SYNC"]
    other = next(a for a in everything if a["tenantId"] == "tenant-b")
    assert await error_code(gw, gw.tenant_viewer, ALERT, {"id": other["id"]}) == "NOT_FOUND"
    assert await error_code(gw, gw.tenant_operator, ACK, {"id": other["id"]}) == "NOT_FOUND"

    silence = (await data(gw, gw.tenant_operator, SILENCE, {"m": ["job_type=~.*_SYNC"], "d": "1h", "c": "our window"}))[
        "createSilence"
    ]
    assert silence["tenantId"] == "tenant-a" and silence["active"]
    listed = await data(gw, gw.viewer, "{ silences { id tenantId } }")
    assert [s["id"] for s in listed["silences"]] == [silence["id"]]
    assert (await data(gw, gw.tenant_viewer, "{ silences { id } }"))["silences"] == [{"id": silence["id"]}]
    expire = "mutation($id: ID!) { expireSilence(id: $id) { active expiredBy } }"
    expired = (await data(gw, gw.tenant_operator, expire, {"id": silence["id"]}))["expireSilence"]
    assert expired["active"] is False and expired["expiredBy"].startswith("tenant_operator (")

    thresholds = 'mutation { updateThresholds(service: "crm", thresholds: {cpuPercent: 70}) { service } }'
    assert await error_code(gw, gw.tenant_admin, thresholds) == "FORBIDDEN"


async def test_bad_input_is_bad_user_input_naming_the_field(gw: Gateway) -> None:
    bad_matcher = {"m": ["service crm"], "d": "2h", "c": "x"}
    body = (await gw.query(gw.operator, SILENCE, bad_matcher)).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["message"].startswith("matchers[0]:")
    bad_duration = {"m": ["service=crm"], "d": "soon", "c": "x"}
    body = (await gw.query(gw.operator, SILENCE, bad_duration)).json()
    assert body["errors"][0]["message"].startswith("duration:")
    assert await error_code(gw, gw.viewer, ALERTS, {"first": 0}) == "BAD_USER_INPUT"
    assert await error_code(gw, gw.viewer, ALERTS, {"after": "nonsense"}) == "BAD_USER_INPUT"
    assert await error_code(gw, gw.viewer, ALERT, {"id": "feedbeef"}) == "NOT_FOUND"
    channel = 'mutation { testNotificationChannel(name: "mail") { delivered } }'
    assert await error_code(gw, gw.operator, channel) == "NOT_FOUND"  # delivery not configured
    assert await error_code(gw, gw.viewer, channel) == "FORBIDDEN"


async def test_thresholds_change_through_graphql_and_bad_ones_name_the_field(
    harness: ServiceHarness, gw: Gateway
) -> None:
    from b2x.monitoring.v1 import health_pb2_grpc

    health = health_pb2_grpc.HealthServiceStub(harness.channels[0])
    await register(health, definition("crm"))
    update = """mutation($t: ThresholdsInput!) { updateThresholds(service: "crm", thresholds: $t) {
      service thresholds { cpuPercent memoryPercent queueDepth } } }"""
    result = (await data(gw, gw.operator, update, {"t": {"cpuPercent": 70, "queueDepth": 200}}))["updateThresholds"]
    assert result == {"service": "crm", "thresholds": {"cpuPercent": 70.0, "memoryPercent": 90.0, "queueDepth": 200}}
    body = (await gw.query(gw.operator, update, {"t": {"cpuPercent": 170}})).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["message"].startswith("thresholds.cpu_percent:")
    rules = await data(gw, gw.viewer, "{ alertRules { name severity parameters } }")
    rate = next(r for r in rules["alertRules"] if r["name"] == "jobs.failure_rate")
    assert rate == {"name": "jobs.failure_rate", "severity": "CRITICAL", "parameters": {"count": "5", "minutes": "10"}}


async def test_every_state_change_arrives_on_alert_triggered_within_the_tenant_scope(
    harness: ServiceHarness, gw: Gateway
) -> None:
    sub = "subscription { alertTriggered { id status occurrences tenantId jobType } }"
    async with (
        GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.tenant_viewer}"}) as ws,
        GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.viewer}"}) as all_ws,
    ):
        assert (await ws.receive())["type"] == "connection_ack"
        assert (await all_ws.receive())["type"] == "connection_ack"
        op = await ws.subscribe(sub)
        await all_ws.subscribe(sub)
        await asyncio.sleep(0.3)
        await append_outcomes(harness, outcome("B_SYNC", "tenant-b"))
        await append_outcomes(harness, outcome("A_SYNC", "tenant-a"))
        first = await all_ws.receive()
        assert first["payload"]["data"]["alertTriggered"]["tenantId"] == "tenant-b"
        fired = await ws.receive()
        assert fired["id"] == op
        event = fired["payload"]["data"]["alertTriggered"]
        assert event["tenantId"] == "tenant-a" and event["status"] == "FIRING"  # tenant-b's never arrived
        await append_outcomes(harness, outcome("A_SYNC", "tenant-a"))
        repeat = (await ws.receive())["payload"]["data"]["alertTriggered"]
        assert repeat["occurrences"] == 2
        await data(gw, gw.operator, ACK, {"id": event["id"]})
        acked = (await ws.receive())["payload"]["data"]["alertTriggered"]
        assert acked["status"] == "ACKNOWLEDGED"
        await append_outcomes(harness, outcome("A_SYNC", "tenant-a", status=jobs_pb2.JOB_STATUS_COMPLETED))
        resolved = (await ws.receive())["payload"]["data"]["alertTriggered"]
        assert resolved["status"] == "RESOLVED"
