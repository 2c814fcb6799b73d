"""The live path through the gateway (docs/adr/0021-live-path.md): hops on progress events, one execution
shared by subscribers asking the same thing, each still getting its own answer when they ask differently."""

from __future__ import annotations

import asyncio
import time

from b2x.monitoring.v1 import jobs_pb2

from gateway import fanout
from tests.gateway.conftest import Gateway
from tests.support import GraphQLWebSocket

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
