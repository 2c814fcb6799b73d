"""The websocket obeys what HTTP obeys: revoked keys lose their open sockets on every replica, and each
message is held to the same rate, size, token, depth and alias limits. Real gateways under uvicorn, real
websockets, real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import websockets
from b2x.monitoring.v1 import jobs_pb2

from gateway.auth import KeyStore, Role
from tests.gateway.conftest import Gateway
from tests.support import GraphQLWebSocket, ServiceHarness

ALL = "subscription { jobStatusChanged { jobId status } }"
CANCEL = "mutation($id: ID!) { cancelJob(id: $id) { status } }"


async def _closed_code(ws: GraphQLWebSocket, within: float) -> int:
    """Read until the server closes the socket; its close code."""
    deadline = time.monotonic() + within
    while True:
        try:
            await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
        except websockets.ConnectionClosed as closed:
            return int(closed.rcvd.code) if closed.rcvd is not None else -1


async def _key(database_url: str, name: str, role: Role) -> tuple[str, str]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        plain, record = await KeyStore(pool).create(name, role)
    finally:
        await pool.close()
    return plain, record.id


async def test_a_revoked_key_loses_its_open_subscription_on_every_replica(
    harness: ServiceHarness, database_url: str
) -> None:
    """A socket open on replica B is closed with 4403 within seconds of a revocation made through replica A,
    and nothing more is streamed to it."""
    jobs_addr = await harness.jobs()
    replica_a = await harness.gateway(jobs_addr=jobs_addr)
    replica_b = await harness.gateway(jobs_addr=jobs_addr)
    admin, _ = await _key(database_url, "admin", Role.ADMIN)
    watcher, watcher_id = await _key(database_url, "watcher", Role.VIEWER)
    async with GraphQLWebSocket(replica_b, {"Authorization": f"Bearer {watcher}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        await ws.subscribe(ALL)
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient() as http:
            revoked = await http.post(
                f"{replica_a}/graphql",
                json={"query": "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
                      "variables": {"id": watcher_id}},
                headers={"Authorization": f"Bearer {admin}"},
            )  # fmt: skip
        assert revoked.json()["data"]["revokeApiKey"]["revokedAt"]
        assert await _closed_code(ws, within=5) == 4403


async def test_an_operation_after_an_out_of_band_revocation_is_refused_and_not_executed(
    harness: ServiceHarness, database_url: str
) -> None:
    """With the key revoked straight in the database (no announcement), the next mutation on the open socket
    closes it with 4403; the job stays queued and no successful cancel is audited."""
    from b2x.monitoring.v1 import jobs_pb2_grpc

    jobs_addr = await harness.jobs()
    url = await harness.gateway(jobs_addr=jobs_addr, api_key_cache_seconds=0)
    operator, operator_id = await _key(database_url, "op", Role.OPERATOR)
    stub = jobs_pb2_grpc.JobsServiceStub(harness.channel(jobs_addr))
    job = (await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="X", tenant_id="t"), timeout=10)).job
    async with GraphQLWebSocket(url, {"Authorization": f"Bearer {operator}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("UPDATE gateway.api_keys SET revoked_at = now() WHERE id = $1", operator_id)
        finally:
            await conn.close()
        await ws.subscribe(CANCEL, {"id": job.id})
        assert await _closed_code(ws, within=5) == 4403
    assert (
        await stub.GetJob(jobs_pb2.GetJobRequest(job_id=job.id), timeout=10)
    ).job.status == jobs_pb2.JOB_STATUS_QUEUED


async def test_operations_over_one_socket_share_the_keys_rate_limit(harness: ServiceHarness, database_url: str) -> None:
    """With a limit of 5 requests a minute, the 6th operation on a socket is answered RATE_LIMITED."""
    url = await harness.gateway(rate_limit_per_minute=5, jobs_addr=await harness.jobs())
    viewer, _ = await _key(database_url, "v", Role.VIEWER)
    async with GraphQLWebSocket(url, {"Authorization": f"Bearer {viewer}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        codes = []
        for _ in range(8):
            await ws.subscribe("{ viewer { name } }")
            message = await ws.receive()
            if message["type"] == "next":
                assert (await ws.receive())["type"] == "complete"
                codes.append("ok")
            else:
                assert message["type"] == "error"
                codes.append(message["payload"][0]["extensions"]["code"])
    assert codes == ["ok"] * 5 + ["RATE_LIMITED"] * 3


async def test_a_message_larger_than_a_request_body_closes_the_socket(gw: Gateway) -> None:
    """A 640 KB subscribe message is refused (close 1009, message too big); a new socket works."""
    async with GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.viewer}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        await ws.subscribe("{ viewer { name } }" + " " * (640 * 1024))
        assert await _closed_code(ws, within=5) == 1009
    async with GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.viewer}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"


async def test_token_alias_and_repeat_limits_hold_on_the_websocket(gw: Gateway) -> None:
    """Too many tokens, too many aliases and repeated fields are refused over the socket with the codes HTTP
    gives; the socket stays usable."""
    aliases = "{ " + " ".join(f"a{i}: viewer {{ name }}" for i in range(40)) + " }"
    repeats = "{ viewer {" + " name" * 50 + " } }"
    async with GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.viewer}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        for query in (aliases, repeats):
            await ws.subscribe(query)
            message = await ws.receive()
            assert message["type"] == "error", message
            assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        await ws.subscribe("{" + " viewer { name }" * 15_000 + "}")
        refused = await ws.receive()
        assert refused["type"] == "error" and "tokens" in refused["payload"][0]["message"]
        assert refused["payload"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
        await ws.subscribe("{ viewer { name } }")
        assert (await ws.receive())["payload"]["data"]["viewer"]["name"] == "viewer"
