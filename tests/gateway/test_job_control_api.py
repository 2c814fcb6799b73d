"""Job details, logs, counts, retry and cancel through GraphQL, with roles, tenant scope and audit."""

from __future__ import annotations

import asyncio

from b2x.monitoring.v1 import common_pb2, jobs_pb2

from tests.gateway.conftest import Gateway
from tests.support import GraphQLWebSocket

T = 10


async def _failed_job(gw: Gateway, tenant: str = "tenant-a", logs: tuple[jobs_pb2.LogEntry, ...] = ()) -> str:
    """A job that failed after writing `logs` (lines for a finished attempt are refused)."""
    job = (
        await gw.jobs.CreateJob(
            jobs_pb2.CreateJobRequest(job_type="ERP_PRICE_UPDATE", tenant_id=tenant, max_attempts=1), timeout=T
        )
    ).job
    await gw.jobs.StartJob(jobs_pb2.StartJobRequest(worker_id="w-1", job_id=job.id), timeout=T)
    if logs:
        report = jobs_pb2.JobReport(job_id=job.id, logs=list(logs))
        await gw.jobs.ReportBatch(jobs_pb2.ReportBatchRequest(worker_id="w-1", reports=[report]), timeout=T)
    await gw.jobs.FailJob(
        jobs_pb2.FailJobRequest(
            worker_id="w-1", job_id=job.id, error_message="price list locked", error_category="ERP_DATA_VALIDATION"
        ),
        timeout=T,
    )
    return str(job.id)


def _entry(seq: int, message: str, level: int = common_pb2.LOG_LEVEL_INFO) -> jobs_pb2.LogEntry:
    entry = jobs_pb2.LogEntry(sequence=seq, level=level, message=message)  # type: ignore[arg-type]
    entry.timestamp.GetCurrentTime()
    return entry


async def test_retry_through_graphql_makes_an_attempt_once_and_is_audited(gw: Gateway) -> None:
    """retryJob creates attempt 2; a second call returns it with created=false; both are in the audit log."""
    job_id = await _failed_job(gw)
    mutation = "mutation($id: ID!) { retryJob(id: $id) { created job { id attempt retryOfJobId status } } }"
    first = (await gw.query(gw.operator, mutation, {"id": job_id})).json()["data"]["retryJob"]
    assert first["created"] and first["job"]["attempt"] == 2 and first["job"]["retryOfJobId"] == job_id
    second = (await gw.query(gw.operator, mutation, {"id": job_id})).json()["data"]["retryJob"]
    assert not second["created"] and second["job"]["id"] == first["job"]["id"]
    audit = (
        await gw.query(gw.admin, "query($t: String) { auditLog(target: $t) { action outcome } }", {"t": job_id})
    ).json()
    assert [e["action"] for e in audit["data"]["auditLog"]] == ["retryJob", "retryJob"]


async def test_wrong_state_and_wrong_role_have_their_codes(gw: Gateway) -> None:
    """Retry of a running job is FAILED_PRECONDITION; a viewer's cancel is FORBIDDEN; unknown ids NOT_FOUND."""
    running = (await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="X", tenant_id="tenant-a"), timeout=T)).job
    await gw.jobs.StartJob(jobs_pb2.StartJobRequest(worker_id="w-1", job_id=running.id), timeout=T)
    retry = (
        await gw.query(gw.operator, "mutation($id: ID!) { retryJob(id: $id) { created } }", {"id": running.id})
    ).json()
    assert retry["errors"][0]["extensions"]["code"] == "FAILED_PRECONDITION"
    assert "only FAILED or CANCELLED" in retry["errors"][0]["message"]
    cancel = (
        await gw.query(gw.viewer, "mutation($id: ID!) { cancelJob(id: $id) { status } }", {"id": running.id})
    ).json()
    assert cancel["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    unknown = (
        await gw.query(gw.operator, 'mutation { cancelJob(id: "4e9c2b7a-0000-4000-8000-000000000000") { status } }')
    ).json()
    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_tenant_operator_cannot_touch_another_tenants_job(gw: Gateway) -> None:
    """To a key of tenant-a, a tenant-b job does not exist: retry and cancel answer NOT_FOUND."""
    other = await _failed_job(gw, tenant="tenant-b")
    answer = (
        await gw.query(gw.tenant_operator, "mutation($id: ID!) { retryJob(id: $id) { created } }", {"id": other})
    ).json()
    assert answer["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_details_logs_and_counts_are_readable(gw: Gateway) -> None:
    """jobDetails lists attempts, jobLogs pages and filters lines, jobStatusCounts counts per status."""
    job_id = await _failed_job(
        gw, logs=(_entry(1, "connected"), _entry(2, "article 9 rejected", common_pb2.LOG_LEVEL_ERROR))
    )
    retry = await gw.jobs.RetryJob(jobs_pb2.RetryJobRequest(job_id=job_id), timeout=T)
    query = """query($id: ID!) {
      jobDetails(id: $id) { job { id errorCategory } attempts { attempt status } }
      jobLogs(jobId: $id, minLevel: ERROR) { lastSequence lines { sequence level message } }
      jobStatusCounts(filter: {tenantId: ["tenant-a"]}) { status count }
    }"""
    data = (await gw.query(gw.viewer, query, {"id": retry.job.id})).json()["data"]
    assert [(a["attempt"], a["status"]) for a in data["jobDetails"]["attempts"]] == [(1, "FAILED"), (2, "QUEUED")]
    logs = (await gw.query(gw.viewer, query, {"id": job_id})).json()["data"]["jobLogs"]
    assert logs == {"lastSequence": 2, "lines": [{"sequence": 2, "level": "ERROR", "message": "article 9 rejected"}]}
    counts = {c["status"]: c["count"] for c in data["jobStatusCounts"]}
    assert counts == {"QUEUED": 1, "RUNNING": 0, "COMPLETED": 0, "FAILED": 1, "CANCELLED": 0}


async def test_new_log_lines_arrive_on_the_log_subscription(gw: Gateway) -> None:
    """jobLogAppended delivers each batch of lines of the job, in order, and nothing of other jobs."""
    job = (await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="X", tenant_id="tenant-a"), timeout=T)).job
    other = (await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="X", tenant_id="tenant-a"), timeout=T)).job
    async with GraphQLWebSocket(gw.url, {"Authorization": f"Bearer {gw.viewer}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        await ws.subscribe(
            "subscription($id: ID!) { jobLogAppended(jobId: $id) { lines { sequence message } } }", {"id": job.id}
        )
        await asyncio.sleep(0.3)
        await gw.jobs.ReportBatch(jobs_pb2.ReportBatchRequest(worker_id="w-1", reports=[
            jobs_pb2.JobReport(job_id=other.id, logs=[_entry(1, "not mine")]),
            jobs_pb2.JobReport(job_id=job.id, logs=[_entry(1, "one"), _entry(2, "two")]),
        ]), timeout=T)  # fmt: skip
        await gw.jobs.ReportBatch(jobs_pb2.ReportBatchRequest(worker_id="w-1", reports=[
            jobs_pb2.JobReport(job_id=job.id, logs=[_entry(3, "three")])]), timeout=T)  # fmt: skip
        seen = []
        while len(seen) < 3:
            message = await ws.receive()
            seen += [(ln["sequence"], ln["message"]) for ln in message["payload"]["data"]["jobLogAppended"]["lines"]]
    assert seen == [(1, "one"), (2, "two"), (3, "three")]
