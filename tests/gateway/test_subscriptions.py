"""Live job updates over a real websocket (graphql-transport-ws), fed through real Redis."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, timedelta

import asyncpg
import pytest
import websockets
from b2x.monitoring.v1 import jobs_pb2, jobs_pb2_grpc

from gateway.auth import KeyStore, Role
from services.common.embedded import EmbeddedRedis
from tests.gateway.conftest import Gateway
from tests.support import GraphQLWebSocket, ServiceHarness

SUB = "subscription($job: ID) { jobStatusChanged(jobId: $job) { jobId status change tenantId: job { tenantId } progress { percent } } }"
ALL = "subscription { jobStatusChanged { jobId status change job { tenantId } } }"


async def _live_subscribers(gw: Gateway) -> float:
    text = (await gw.http.get(f"{gw.url}/metrics")).text
    match = re.search(r"^b2x_gateway_live_subscribers (\S+)$", text, re.M)
    return float(match.group(1)) if match else -1


async def test_each_change_of_a_job_arrives_on_the_subscription(gw: Gateway) -> None:
    """created → started → progress → completed reach the subscriber in order, with progress."""
    async with GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.viewer}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        op = await ws.subscribe(ALL)
        await asyncio.sleep(0.2)  # the subscription is registered before the first change
        job = (
            await gw.jobs.CreateJob(
                jobs_pb2.CreateJobRequest(job_type="ERP_ARTICLE_SYNC", tenant_id="t", total_items=10), timeout=10
            )
        ).job
        await gw.jobs.StartJob(jobs_pb2.StartJobRequest(worker_id="w-1", job_id=job.id), timeout=10)
        await gw.jobs.ReportProgress(
            jobs_pb2.ReportProgressRequest(worker_id="w-1", job_id=job.id, processed_items=4, sequence=1), timeout=10
        )
        await gw.jobs.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w-1", job_id=job.id), timeout=10)
        events = []
        while len(events) < 4:
            message = await ws.receive()
            assert message["type"] == "next" and message["id"] == op, message
            events.append(message["payload"]["data"]["jobStatusChanged"])
    assert [(e["change"], e["status"]) for e in events] == [
        ("created", "QUEUED"),
        ("started", "RUNNING"),
        ("progress", "RUNNING"),
        ("completed", "COMPLETED"),
    ]
    assert all(e["jobId"] == job.id for e in events)


async def test_a_resume_point_sends_again_a_change_stamped_shortly_before_it(gw: Gateway) -> None:
    """A change stamped before the newest one a client saw can commit, and reach it, after that one; a gateway
    dying in between would make a client resuming from its newest stamp miss it for good. So `since` also
    sends again the jobs changed in the seconds before it, as they are now (change 'resync')."""
    job = (
        await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="ERP_ARTICLE_SYNC", tenant_id="t"), timeout=10)
    ).job
    stamped = job.updated_at.ToDatetime(tzinfo=UTC)
    resume = (stamped + timedelta(seconds=2)).isoformat()  # a later change was seen first
    async with GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.viewer}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        await ws.subscribe("subscription($since: DateTime, $job: ID) { jobStatusChanged(since: $since, jobId: $job) "
                           "{ jobId change status } }", {"since": resume, "job": job.id})  # fmt: skip
        event = (await ws.receive(timeout=5))["payload"]["data"]["jobStatusChanged"]
    assert event == {"jobId": job.id, "change": "resync", "status": "QUEUED"}


async def test_a_subscription_without_a_valid_key_is_closed_with_4403(gw: Gateway) -> None:
    """connection_init without a key, or with a wrong one, ends the socket with code 4403."""
    for payload in ({}, {"Authorization": "Bearer b2x_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}):
        async with GraphQLWebSocket(gw.url, payload) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.receive()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_only_the_legacy_protocol_is_refused(gw: Gateway) -> None:
    """A client that speaks only graphql-ws (the legacy protocol) is refused with 4406."""
    url = gw.url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4406


async def test_a_tenant_scoped_subscriber_sees_only_its_tenant(gw: Gateway) -> None:
    """Events of tenant-b never reach a key limited to tenant-a, even without a filter."""
    async with GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.tenant_viewer}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        await ws.subscribe(ALL)
        await asyncio.sleep(0.2)
        await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="CRM_EXPORT", tenant_id="tenant-b"), timeout=10)
        mine = (
            await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="CRM_EXPORT", tenant_id="tenant-a"), timeout=10)
        ).job
        first = await ws.receive()
        assert first["payload"]["data"]["jobStatusChanged"]["jobId"] == mine.id
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.5)


async def test_the_bus_subscription_is_released_when_the_client_goes_away(gw: Gateway) -> None:
    """After the websocket closes, the gateway holds no subscriber for it any more."""
    assert await _live_subscribers(gw) == 0
    async with GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.viewer}"}) as ws:
        await ws.receive()
        await ws.subscribe(ALL)
        for _ in range(50):
            if await _live_subscribers(gw) == 1:
                break
            await asyncio.sleep(0.05)
        assert await _live_subscribers(gw) == 1
    for _ in range(100):
        if await _live_subscribers(gw) == 0:
            break
        await asyncio.sleep(0.05)
    assert await _live_subscribers(gw) == 0


async def test_subscribers_catch_up_on_changes_made_while_redis_was_down(
    harness: ServiceHarness, tmp_path: object
) -> None:
    """Redis stops, a job finishes meanwhile (state lands in PostgreSQL), Redis returns: the subscriber
    receives that job with change 'resync'."""
    from pathlib import Path

    redis = EmbeddedRedis.start(Path(str(tmp_path)) / "redis", persist=False)
    try:
        settings = harness.settings.model_copy(update={"redis_url": redis.url()})
        isolated = ServiceHarness(settings)
        async with isolated:
            jobs_addr = await isolated.jobs()
            url = await isolated.gateway(jobs_addr=jobs_addr, health_addr="127.0.0.1:1", probes_addr="127.0.0.1:1")
            pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
            key, _ = await KeyStore(pool).create("resync", Role.VIEWER)
            await pool.close()
            stub = jobs_pb2_grpc.JobsServiceStub(isolated.channel(jobs_addr))
            job = (await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC"), timeout=10)).job
            async with GraphQLWebSocket(url, {"Authorization": f"Bearer {key}"}) as ws:
                assert (await ws.receive())["type"] == "connection_ack"
                await ws.subscribe(SUB, {"job": job.id})
                await asyncio.sleep(0.3)
                port = redis.port
                redis.stop()
                await stub.StartJob(jobs_pb2.StartJobRequest(worker_id="w-1", job_id=job.id), timeout=10)
                await stub.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w-1", job_id=job.id), timeout=10)
                restarted = EmbeddedRedis.start(Path(str(tmp_path)) / "redis", port, persist=False)
                redis = restarted
                # A resync may also come when the loss is noticed; the one after the return has COMPLETED.
                while True:
                    event = (await ws.receive(timeout=30))["payload"]["data"]["jobStatusChanged"]
                    assert event["jobId"] == job.id
                    assert event["change"] == "resync"
                    if event["status"] == "COMPLETED":
                        break
    finally:
        redis.stop()
