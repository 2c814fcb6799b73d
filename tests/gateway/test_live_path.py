"""The live path through the gateway (docs/adr/0021-live-path.md): hops on progress events, one execution
shared by subscribers asking the same thing, each still getting its own answer when they ask differently."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg
from b2x.monitoring.v1 import jobs_pb2

from gateway import fanout
from gateway.auth import KeyStore, Role
from services.common.events import EventBus, Topic, connect_redis, new_event
from tests.gateway.conftest import Gateway
from tests.support import GraphQLWebSocket, ServiceHarness

T = 10
SUB = (
    'subscription { jobStatusChanged(changes: ["progress"]) '
    "{ jobId progress { processedItems } hops { name atUnixMicros } } }"
)
OTHER = 'subscription { jobStatusChanged(changes: ["progress"]) { jobId status } }'


async def test_progress_reaches_subscribers_with_its_hops_executed_once_per_document(gw: Gateway) -> None:
    job = (await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC", total_items=10), timeout=T)).job
    await gw.jobs.StartJob(jobs_pb2.StartJobRequest(job_id=job.id, worker_id="w"), timeout=T)
    auth = {"Authorization": f"Bearer {gw.viewer}"}
    async with (
        GraphQLWebSocket(gw.url, auth) as one,
        GraphQLWebSocket(gw.url, auth) as two,
        GraphQLWebSocket(gw.url, auth) as other,
    ):
        for ws in (one, two, other):
            assert (await ws.receive())["type"] == "connection_ack"
        await one.subscribe(SUB)
        await two.subscribe(SUB)
        await other.subscribe(OTHER)
        await asyncio.sleep(0.3)  # the subscriptions reach the bus
        executed = len(fanout._executed)
        sent = time.time_ns()
        request = jobs_pb2.ReportBatchRequest(worker_id="w", planned_at_unix_nanos=sent, sent_at_unix_nanos=sent)
        report = request.reports.add(job_id=job.id)
        report.progress.sequence, report.progress.processed_items = 1, 4
        await gw.jobs.ReportBatch(request, timeout=T)
        first = (await one.receive())["payload"]["data"]["jobStatusChanged"]
        second = (await two.receive())["payload"]["data"]["jobStatusChanged"]
        third = (await other.receive())["payload"]["data"]["jobStatusChanged"]
    assert first == second and first["progress"]["processedItems"] == 4
    assert [h["name"] for h in first["hops"]] == [
        "sdk_enqueued", "sdk_sent", "jobs_received", "jobs_committed", "published", "gateway_received",
        "gateway_resolved",
    ]  # fmt: skip
    moments = [h["atUnixMicros"] for h in first["hops"]]
    assert moments == sorted(moments) and moments[0] == sent // 1000
    assert third == {"jobId": job.id, "status": "RUNNING"}
    # Two documents, three subscribers: two executions of the event, the third answer shared.
    assert len(fanout._executed) - executed == 2


PROGRESS = (
    'subscription { jobStatusChanged(changes: ["progress"]) { jobId job { tenantId } progress { processedItems } } }'
)


async def _started(gw: Gateway, tenant: str) -> str:
    job = (
        await gw.jobs.CreateJob(
            jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC", tenant_id=tenant, total_items=10), timeout=T
        )
    ).job
    await gw.jobs.StartJob(jobs_pb2.StartJobRequest(job_id=job.id, worker_id="w"), timeout=T)
    return job.id


async def _report(gw: Gateway, *job_ids: str, processed: int = 4) -> None:
    request = jobs_pb2.ReportBatchRequest(worker_id="w")
    for job_id in job_ids:
        report = request.reports.add(job_id=job_id)
        report.progress.sequence, report.progress.processed_items = processed, processed
    await gw.jobs.ReportBatch(request, timeout=T)


async def _nothing_more(ws: GraphQLWebSocket) -> bool:
    try:
        await ws.receive(timeout=0.5)
    except TimeoutError:
        return True
    return False


async def test_a_shared_answer_reaches_only_the_subscribers_allowed_to_see_it(gw: Gateway, database_url: str) -> None:
    """Three subscribers ask the same document (one shared execution per event): a key of tenant-a, one of
    tenant-b and an unscoped one. One batch reports a job of each tenant: each tenant's key receives its own
    job only, the unscoped key both, and the answers are the same text."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        tenant_b, _ = await KeyStore(pool).create("tenant-b viewer", Role.VIEWER, "tenant-b")
    finally:
        await pool.close()
    job_a, job_b = await _started(gw, "tenant-a"), await _started(gw, "tenant-b")
    async with (
        GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.tenant_viewer}"}) as a,
        GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {tenant_b}"}) as b,
        GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.viewer}"}) as everyone,
    ):
        for ws in (a, b, everyone):
            assert (await ws.receive())["type"] == "connection_ack"
            await ws.subscribe(PROGRESS)
        await asyncio.sleep(0.3)
        for processed in (4, 6, 8):  # the later answers are sent by the resolver itself (`deliver`)
            await _report(gw, job_a, job_b, processed=processed)
            seen_a = (await a.receive())["payload"]["data"]["jobStatusChanged"]
            seen_b = (await b.receive())["payload"]["data"]["jobStatusChanged"]
            seen_all = {
                e["jobId"]: e for e in [(await everyone.receive())["payload"]["data"]["jobStatusChanged"] for _ in "ab"]
            }
            assert await _nothing_more(a) and await _nothing_more(b) and await _nothing_more(everyone)
            assert seen_a == {
                "jobId": job_a,
                "job": {"tenantId": "tenant-a"},
                "progress": {"processedItems": processed},
            }
            assert seen_b == {
                "jobId": job_b,
                "job": {"tenantId": "tenant-b"},
                "progress": {"processedItems": processed},
            }
            assert json.dumps(seen_all[job_a]) == json.dumps(seen_a)
            assert json.dumps(seen_all[job_b]) == json.dumps(seen_b)


async def test_each_operation_gets_its_own_shape_under_its_own_id(gw: Gateway) -> None:
    """Operations on one socket asking different shapes of the same event (variables, aliases, fragments)
    each get their own shape, in their field order, under their own id; another socket asking the first
    shape gets the same answer."""
    shaped = (
        'subscription($full: Boolean!) { jobStatusChanged(changes: ["progress"]) { jobId '
        "... on JobStatusEvent @include(if: $full) { status progress { percent processedItems } } } }"
    )
    aliased = (
        'subscription Aliased { j: jobStatusChanged(changes: ["progress"]) { __typename id: jobId ...F } } '
        "fragment F on JobStatusEvent { p: progress { processedItems } change }"
    )
    job_id = await _started(gw, "tenant-a")
    auth = {"Authorization": f"Bearer {gw.viewer}"}
    async with GraphQLWebSocket(gw.url, auth) as one, GraphQLWebSocket(gw.url, auth) as two:
        for ws in (one, two):
            assert (await ws.receive())["type"] == "connection_ack"
        assert await one.subscribe(shaped, {"full": True}) == "1"
        assert await one.subscribe(shaped, {"full": False}) == "2"
        assert await one.subscribe(aliased) == "3"
        await two.subscribe(shaped, {"full": True})
        await asyncio.sleep(0.3)
        direct = fanout.SENT_DIRECTLY._value.get()
        answers: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for processed in (4, 6, 8):  # the first answers go through Strawberry, the next ones straight out
            await _report(gw, job_id, processed=processed)
            got = {m["id"]: m["payload"]["data"] for m in [await one.receive() for _ in range(3)]}
            answers.append((got, (await two.receive())["payload"]["data"]))
        assert await _nothing_more(one)
        assert fanout.SENT_DIRECTLY._value.get() - direct == 8
    for (got, other), processed in zip(answers, (4, 6, 8), strict=True):
        full = got["1"]["jobStatusChanged"]
        assert list(full) == ["jobId", "status", "progress"] and list(full["progress"]) == ["percent", "processedItems"]
        assert (
            full["jobId"] == job_id and full["status"] == "RUNNING" and full["progress"]["processedItems"] == processed
        )
        assert json.dumps(got["2"]) == json.dumps({"jobStatusChanged": {"jobId": job_id}})
        assert json.dumps(got["3"]) == json.dumps(
            {
                "j": {
                    "__typename": "JobStatusEvent",
                    "id": job_id,
                    "p": {"processedItems": processed},
                    "change": "progress",
                }
            }
        )
        assert json.dumps(other) == json.dumps(got["1"])


async def test_a_fault_while_streaming_reaches_the_subscriber_as_an_internal_error_without_details(
    gw: Gateway, harness: ServiceHarness
) -> None:
    """An event the gateway cannot convert (a job status it does not know) ends the subscription with an error
    coded INTERNAL_SERVER_ERROR whose message names no detail (those go to the gateway's log)."""
    async with GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.viewer}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        op = await ws.subscribe(OTHER)
        await asyncio.sleep(0.3)
        redis = await connect_redis(harness.settings.redis_url)
        bus = EventBus(redis, harness.settings.namespace)
        try:
            event = new_event("jobs", tenant_id="tenant-a")
            event.job_status_changed.job_id, event.job_status_changed.change = "no-such-job", "progress"
            event.job_status_changed.status = 99  # type: ignore[assignment]
            await bus.publish(Topic.JOB_STATUS, event)
            failed = await ws.receive()
            completed = await ws.receive()
        finally:
            await bus.close()
            await redis.aclose()
    assert failed["type"] == "next" and failed["id"] == op
    assert failed["payload"] == {
        "data": None,
        "errors": [
            {
                "message": "internal error; the gateway log has the details",
                "extensions": {"code": "INTERNAL_SERVER_ERROR"},
            }
        ],
    }
    assert completed == {"id": op, "type": "complete"}


async def test_an_operation_id_used_again_gets_only_the_new_operations_answers(gw: Gateway) -> None:
    """A client completes operation "1" and subscribes again under "1" with another document: every event
    reaches it once, in the new shape (the old operation's resolver sends nothing more)."""
    job_id = await _started(gw, "tenant-a")
    async with GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.viewer}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        await ws.send({"id": "1", "type": "subscribe", "payload": {"query": PROGRESS}})
        await asyncio.sleep(0.3)
        for processed in (2, 3):
            await _report(gw, job_id, processed=processed)
            assert (await ws.receive())["payload"]["data"]["jobStatusChanged"]["progress"] == {
                "processedItems": processed
            }
        await ws.send({"id": "1", "type": "complete"})
        await ws.send({"id": "1", "type": "subscribe", "payload": {"query": OTHER}})
        await asyncio.sleep(0.3)
        for processed in (4, 5, 6):
            await _report(gw, job_id, processed=processed)
            message = await ws.receive()
            assert message == {"id": "1", "type": "next", "payload": {"data": {"jobStatusChanged": {
                "jobId": job_id, "status": "RUNNING"}}}}  # fmt: skip
        assert await _nothing_more(ws)
