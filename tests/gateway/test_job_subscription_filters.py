"""jobStatusChanged filtered by the server to some jobs or some kinds of change (what the dashboard's table uses)."""

from __future__ import annotations

import asyncio

from b2x.monitoring.v1 import jobs_pb2

from tests.gateway.conftest import Gateway
from tests.support import GraphQLWebSocket

T = 10
SUB = "subscription($ids: [ID!], $changes: [String!]) { jobStatusChanged(jobIds: $ids, changes: $changes) { jobId change } }"


async def test_subscribers_get_only_the_jobs_and_changes_they_asked_for(gw: Gateway) -> None:
    """One subscriber asks for two jobs: it sees their progress and not the third job's; another asks for every
    change but progress: it sees the start and the completion, not the report; over 500 ids is BAD_USER_INPUT."""
    jobs = [
        (
            await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC", total_items=10), timeout=T)
        ).job.id
        for _ in range(3)
    ]
    auth = {"Authorization": f"Bearer {gw.viewer}"}
    async with GraphQLWebSocket(gw.url, auth) as rows, GraphQLWebSocket(gw.url, auth) as notices:
        assert (await rows.receive())["type"] == "connection_ack"
        assert (await notices.receive())["type"] == "connection_ack"
        await rows.subscribe(SUB, {"ids": jobs[:2]})
        await notices.subscribe(SUB, {"changes": ["started", "completed"]})
        await asyncio.sleep(0.3)
        for job_id in jobs:
            await gw.jobs.StartJob(jobs_pb2.StartJobRequest(job_id=job_id, worker_id="w"), timeout=T)
            await gw.jobs.ReportProgress(
                jobs_pb2.ReportProgressRequest(worker_id="w", job_id=job_id, processed_items=5, sequence=1), timeout=T
            )
        await gw.jobs.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w", job_id=jobs[2]), timeout=T)

        seen_rows = [(await rows.receive())["payload"]["data"]["jobStatusChanged"] for _ in range(4)]
        assert {(e["jobId"], e["change"]) for e in seen_rows} == {
            (jobs[0], "started"), (jobs[0], "progress"), (jobs[1], "started"), (jobs[1], "progress"),
        }  # fmt: skip
        seen_notices = [(await notices.receive())["payload"]["data"]["jobStatusChanged"] for _ in range(4)]
        assert [e["change"] for e in seen_notices] == ["started", "started", "started", "completed"]
        await asyncio.sleep(0.5)
        assert await _nothing_more(rows) and await _nothing_more(notices)

        await rows.subscribe(SUB, {"ids": [str(i) for i in range(501)]})
        refused = (await rows.receive())["payload"]["errors"][0]
        assert refused["extensions"]["code"] == "BAD_USER_INPUT" and "at most 500" in refused["message"]


async def _nothing_more(ws: GraphQLWebSocket) -> bool:
    try:
        await ws.receive(timeout=0.3)
    except TimeoutError:
        return True
    return False


async def test_log_follow_from_sequence_zero_gets_lines_stored_before_it_subscribed(gw: Gateway) -> None:
    """A follower that read an empty log and subscribes with afterSequence 0 still gets the lines stored in
    between (the race a dashboard or `b2c jobs logs --follow` would otherwise lose them to)."""
    job = (await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="PIM_IMPORT"), timeout=T)).job
    entry = jobs_pb2.LogEntry(sequence=1, level=3, message="stored before the subscription")  # type: ignore[arg-type]
    entry.timestamp.GetCurrentTime()
    await gw.jobs.ReportBatch(
        jobs_pb2.ReportBatchRequest(worker_id="w", reports=[jobs_pb2.JobReport(job_id=job.id, logs=[entry])]), timeout=T
    )
    async with GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.viewer}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        await ws.subscribe(
            "subscription($id: ID!) { jobLogAppended(jobId: $id, afterSequence: 0) { lines { sequence message } } }",
            {"id": job.id},
        )
        lines = (await ws.receive())["payload"]["data"]["jobLogAppended"]["lines"]
    assert lines == [{"sequence": 1, "message": "stored before the subscription"}]
