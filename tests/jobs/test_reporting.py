"""Workers' calls: claiming queued jobs and batched reports (progress, logs, steps, outcomes, heartbeats)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from b2x.monitoring.v1 import common_pb2, jobs_pb2

from services.common.events import Resync, Topic
from tests.jobs.helpers import TIMEOUT, get, jobs_stub, running_job
from tests.support import ServiceHarness


def _log(seq: int, text: str, level: int = common_pb2.LOG_LEVEL_INFO, **context: object) -> jobs_pb2.LogEntry:
    entry = jobs_pb2.LogEntry(sequence=seq, level=level, message=text)  # type: ignore[arg-type]
    entry.timestamp.GetCurrentTime()
    entry.context.update(context)
    return entry


async def test_claims_take_only_the_worker_types_and_never_the_same_job_twice(harness: ServiceHarness) -> None:
    """Four workers claiming concurrently split six queued jobs without overlap; other types stay queued."""
    stub = await jobs_stub(harness)
    ids = [
        (await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="PIM_IMPORT"), timeout=TIMEOUT)).job.id
        for _ in range(6)
    ]
    other = (await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="CRM_EXPORT"), timeout=TIMEOUT)).job
    claims = await asyncio.gather(
        *(
            stub.ClaimJobs(
                jobs_pb2.ClaimJobsRequest(worker_id=f"w{i}", job_types=["PIM_IMPORT"], max_jobs=2), timeout=TIMEOUT
            )
            for i in range(4)
        )
    )
    claimed = [j.id for c in claims for j in c.jobs]
    assert sorted(claimed) == sorted(ids)
    assert all(j.status == jobs_pb2.JOB_STATUS_RUNNING for c in claims for j in c.jobs)
    assert (await get(stub, other.id)).status == jobs_pb2.JOB_STATUS_QUEUED


async def test_a_retry_waiting_for_its_backoff_is_not_claimed_early(harness: ServiceHarness) -> None:
    """A queued attempt whose available_at is in the future stays queued until then."""
    stub = await jobs_stub(harness, jobs_retry_base_seconds=120)
    job = await running_job(stub, job_type="ERP_STOCK_SYNC", max_attempts=2)
    await stub.FailJob(
        jobs_pb2.FailJobRequest(
            worker_id="w-1", job_id=job.id, error_message="timeout", error_class=jobs_pb2.ERROR_CLASS_TRANSIENT
        ),
        timeout=TIMEOUT,
    )
    claim = await stub.ClaimJobs(
        jobs_pb2.ClaimJobsRequest(worker_id="w", job_types=["ERP_STOCK_SYNC"], max_jobs=5), timeout=TIMEOUT
    )
    assert list(claim.jobs) == []


async def test_a_batch_stores_progress_logs_steps_and_outcome(harness: ServiceHarness) -> None:
    """One ReportBatch applies each part; the job shows progress, ordered logs, steps and its end."""
    stub = await jobs_stub(harness)
    job = await running_job(stub, total=10)
    step = jobs_pb2.StepUpdate(index=0, name="load articles", status=jobs_pb2.JOB_STEP_STATUS_COMPLETED)
    step.at.GetCurrentTime()
    report = jobs_pb2.JobReport(
        job_id=job.id,
        progress=jobs_pb2.ProgressUpdate(processed_items=10, succeeded_items=9, failed_items=1, sequence=1),
        logs=[_log(1, "connected to ERP", host="erp"), _log(2, "article 7 rejected", common_pb2.LOG_LEVEL_WARNING)],
        steps=[step],
        completed=jobs_pb2.Completion(message="10 articles synced"),
    )
    answer = await stub.ReportBatch(jobs_pb2.ReportBatchRequest(worker_id="w-1", reports=[report]), timeout=TIMEOUT)
    assert answer.results[0].accepted and answer.results[0].status == jobs_pb2.JOB_STATUS_COMPLETED
    stored = await get(stub, job.id)
    assert stored.status == jobs_pb2.JOB_STATUS_COMPLETED and stored.progress.failed_items == 1
    assert [(s.name, s.status) for s in stored.steps] == [("load articles", jobs_pb2.JOB_STEP_STATUS_COMPLETED)]
    logs = await stub.ListJobLogs(jobs_pb2.ListJobLogsRequest(job_id=job.id), timeout=TIMEOUT)
    assert [(line.sequence, line.message) for line in logs.logs] == [(1, "connected to ERP"), (2, "article 7 rejected")]
    assert dict(logs.logs[0].context) == {"host": "erp"} and logs.last_sequence == 2


async def test_resent_log_lines_are_stored_once(harness: ServiceHarness) -> None:
    """Sending the same sequences again (an SDK resend after a timeout) adds nothing; new ones are added."""
    stub = await jobs_stub(harness)
    job = await running_job(stub)
    first = jobs_pb2.JobReport(job_id=job.id, logs=[_log(1, "a"), _log(2, "b")])
    await stub.ReportBatch(jobs_pb2.ReportBatchRequest(worker_id="w-1", reports=[first]), timeout=TIMEOUT)
    again = jobs_pb2.JobReport(job_id=job.id, logs=[_log(1, "a"), _log(2, "b"), _log(3, "c")])
    await stub.ReportBatch(jobs_pb2.ReportBatchRequest(worker_id="w-1", reports=[again]), timeout=TIMEOUT)
    logs = await stub.ListJobLogs(jobs_pb2.ListJobLogsRequest(job_id=job.id), timeout=TIMEOUT)
    assert [line.message for line in logs.logs] == ["a", "b", "c"]


async def test_log_lines_are_masked_escaped_and_truncated_visibly(harness: ServiceHarness) -> None:
    """Secrets and e-mails are masked, control characters escaped, and an oversized line cut with a marker."""
    stub = await jobs_stub(harness)
    job = await running_job(stub)
    lines = [
        _log(1, "calling https://erp:s3cret@erp.example.com/api?token=abc123 as jane.doe@example.com"),
        _log(2, "line one\nFAKE 2026-01-01 [error] injected\x1b[31m"),
        _log(3, "x" * 20_000),
    ]
    await stub.ReportBatch(
        jobs_pb2.ReportBatchRequest(worker_id="w-1", reports=[jobs_pb2.JobReport(job_id=job.id, logs=lines)]),
        timeout=TIMEOUT,
    )
    logs = (await stub.ListJobLogs(jobs_pb2.ListJobLogsRequest(job_id=job.id), timeout=TIMEOUT)).logs
    assert "s3cret" not in logs[0].message and "abc123" not in logs[0].message and "jane.doe" not in logs[0].message
    assert "\n" not in logs[1].message and "\\n" in logs[1].message and "\\x1b" in logs[1].message
    assert len(logs[2].message) < 8100 and logs[2].message.endswith("[truncated 12000 chars]")


async def test_heartbeats_keep_jobs_alive_and_carry_cancel_requests_back(harness: ServiceHarness) -> None:
    """A heartbeat-only batch refreshes last_heartbeat_at and returns the ids whose cancel was requested."""
    stub = await jobs_stub(harness)
    a = await running_job(stub)
    b = await running_job(stub)
    before = (await get(stub, a.id)).last_heartbeat_at.ToDatetime()
    await stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=b.id), timeout=TIMEOUT)
    await asyncio.sleep(0.05)
    answer = await stub.ReportBatch(
        jobs_pb2.ReportBatchRequest(worker_id="w-1", heartbeat_job_ids=[a.id, b.id]), timeout=TIMEOUT
    )
    assert list(answer.cancel_requested_job_ids) == [b.id]
    assert (await get(stub, a.id)).last_heartbeat_at.ToDatetime() > before
    confirm = jobs_pb2.JobReport(job_id=b.id, cancelled=jobs_pb2.Cancellation(message="stopped after item 12"))
    answer = await stub.ReportBatch(jobs_pb2.ReportBatchRequest(worker_id="w-1", reports=[confirm]), timeout=TIMEOUT)
    assert answer.results[0].status == jobs_pb2.JOB_STATUS_CANCELLED


async def test_a_bad_report_is_refused_alone(harness: ServiceHarness) -> None:
    """In one batch, a report with impossible counts or for a finished job is refused; the others apply."""
    stub = await jobs_stub(harness)
    good = await running_job(stub, total=10)
    bad = await running_job(stub, total=10)
    finished = await running_job(stub, total=10)
    await stub.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w-1", job_id=finished.id), timeout=TIMEOUT)
    answer = await stub.ReportBatch(
        jobs_pb2.ReportBatchRequest(
            worker_id="w-1",
            reports=[
                jobs_pb2.JobReport(job_id=good.id, progress=jobs_pb2.ProgressUpdate(processed_items=5, sequence=1)),
                jobs_pb2.JobReport(
                    job_id=bad.id, progress=jobs_pb2.ProgressUpdate(processed_items=5, succeeded_items=9, sequence=1)
                ),
                jobs_pb2.JobReport(job_id=finished.id, progress=jobs_pb2.ProgressUpdate(processed_items=5, sequence=1)),
            ],
        ),
        timeout=TIMEOUT,
    )
    verdict = {r.job_id: (r.accepted, r.error) for r in answer.results}
    assert verdict[good.id] == (True, "")
    assert not verdict[bad.id][0] and "exceeds processed_items" in verdict[bad.id][1]
    assert not verdict[finished.id][0] and "not running" in verdict[finished.id][1]
    assert (await get(stub, good.id)).progress.processed_items == 5


async def test_logs_can_be_read_as_a_tail_after_a_sequence_by_level_and_by_text(harness: ServiceHarness) -> None:
    """tail returns the last N in order; after_sequence pages forward; min_level and text filter."""
    stub = await jobs_stub(harness)
    job = await running_job(stub)
    lines = [_log(i, f"article {i} synced") for i in range(1, 21)]
    lines.append(_log(21, "ERP refused article 99", common_pb2.LOG_LEVEL_ERROR))
    await stub.ReportBatch(
        jobs_pb2.ReportBatchRequest(worker_id="w-1", reports=[jobs_pb2.JobReport(job_id=job.id, logs=lines)]),
        timeout=TIMEOUT,
    )
    read = lambda **kw: stub.ListJobLogs(jobs_pb2.ListJobLogsRequest(job_id=job.id, **kw), timeout=TIMEOUT)  # noqa: E731
    assert [ln.sequence for ln in (await read(tail=3)).logs] == [19, 20, 21]
    assert [ln.sequence for ln in (await read(after_sequence=18, limit=2)).logs] == [19, 20]
    assert [ln.sequence for ln in (await read(min_level=common_pb2.LOG_LEVEL_ERROR)).logs] == [21]
    assert [ln.sequence for ln in (await read(text="refused")).logs] == [21]


async def test_expired_log_partitions_are_dropped_and_future_ones_exist(harness: ServiceHarness) -> None:
    """Retention drops whole daily partitions older than the window; the next days' partitions are ready."""
    from datetime import UTC, datetime, timedelta

    from services.jobs.logs import LogStore, partition_name

    await jobs_stub(harness)  # migrates and creates today's partitions
    pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=2)
    try:
        store = LogStore(pool)
        today = datetime.now(UTC).date()
        old = today - timedelta(days=120)
        start = datetime(old.year, old.month, old.day, tzinfo=UTC)
        await pool.execute(
            f"CREATE TABLE jobs.{partition_name(old)} PARTITION OF jobs.job_logs "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + timedelta(days=1)).isoformat()}')"
        )
        dropped = await store.drop_expired(today, retention_days=90)
        # The service's own maintenance loop may get there first; either way the partition is gone.
        assert dropped in ([partition_name(old)], [])
        assert await pool.fetchval("SELECT to_regclass($1)", f"jobs.{partition_name(old)}") is None
        for offset in range(0, 8):
            name = partition_name(today + timedelta(days=offset))
            assert await pool.fetchval("SELECT to_regclass($1)", f"jobs.{name}") is not None, name
    finally:
        await pool.close()


async def test_a_batch_starts_jobs_and_a_resent_start_changes_nothing(harness: ServiceHarness) -> None:
    """A report's `start` does what StartJob does, answers with the job, and is safe to send twice;
    a start of a finished job or with a negative total is refused alone."""
    stub = await jobs_stub(harness)

    async def queued() -> Any:
        request = jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC", total_items=10)
        return (await stub.CreateJob(request, timeout=TIMEOUT)).job

    fresh, bad, done = await queued(), await queued(), await queued()
    await stub.StartJob(jobs_pb2.StartJobRequest(job_id=done.id, worker_id="w-7"), timeout=TIMEOUT)
    await stub.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w-7", job_id=done.id), timeout=TIMEOUT)
    request = jobs_pb2.ReportBatchRequest(
        worker_id="w-7",
        reports=[
            jobs_pb2.JobReport(job_id=fresh.id, start=jobs_pb2.JobStart(total_items=40)),
            jobs_pb2.JobReport(job_id=bad.id, start=jobs_pb2.JobStart(total_items=-1)),
            jobs_pb2.JobReport(job_id=done.id, start=jobs_pb2.JobStart()),
        ],
    )
    answer = await stub.ReportBatch(request, timeout=TIMEOUT)
    verdict = {r.job_id: r for r in answer.results}
    assert verdict[fresh.id].accepted and verdict[fresh.id].job.status == jobs_pb2.JOB_STATUS_RUNNING
    assert verdict[fresh.id].job.progress.total_items == 40
    assert not verdict[bad.id].accepted and "negative" in verdict[bad.id].error
    assert not verdict[done.id].accepted and "COMPLETED" in verdict[done.id].error
    stored = await get(stub, fresh.id)
    assert (stored.status, stored.worker_id) == (jobs_pb2.JOB_STATUS_RUNNING, "w-7")
    assert (await get(stub, bad.id)).status == jobs_pb2.JOB_STATUS_QUEUED

    again = await stub.ReportBatch(request, timeout=TIMEOUT)
    assert {r.job_id: r.accepted for r in again.results}[fresh.id]
    assert (await get(stub, fresh.id)).started_at == stored.started_at


async def test_progress_events_carry_the_hops_of_the_report_that_caused_them(harness: ServiceHarness) -> None:
    """The live path measures itself (docs/adr/0021-live-path.md): a batch stamped by the worker yields
    events stamped with its receipt, its commit, its publication and its receipt by a subscriber's bus."""
    stub = await jobs_stub(harness)
    bus = (await harness.resources("jobs")).bus
    job = await running_job(stub)
    planned = time.time_ns()
    async with await bus.subscribe(Topic.JOB_STATUS) as events:
        request = jobs_pb2.ReportBatchRequest(
            worker_id="w-1", planned_at_unix_nanos=planned, sent_at_unix_nanos=planned + 1000
        )
        report = request.reports.add(job_id=job.id)
        report.progress.sequence, report.progress.processed_items = 1, 10
        await stub.ReportBatch(request, timeout=TIMEOUT)
        event = await events.get(timeout=TIMEOUT)
        # A change that no report caused carries no hops.
        await stub.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w-1", job_id=job.id), timeout=TIMEOUT)
        completed = await events.get(timeout=TIMEOUT)
    assert not isinstance(event, Resync) and event.job_status_changed.change == "progress"
    names = [h.name for h in event.hops]
    assert names == [
        "sdk_enqueued", "sdk_sent", "jobs_received", "jobs_committed", "published", "gateway_received"
    ]  # fmt: skip
    moments = [h.at_unix_nanos for h in event.hops]
    assert moments[:2] == [planned, planned + 1000]
    assert moments == sorted(moments) and moments[-1] <= time.time_ns()
    assert not isinstance(completed, Resync) and completed.job_status_changed.change == "completed"
    assert list(completed.hops) == []


async def test_a_batch_of_many_starts_starts_them_all_and_announces_each(harness: ServiceHarness) -> None:
    """The queued jobs of a batch start together (one statement, one publication); each gets its
    'started' event from QUEUED, and a job another worker runs is refused with the reason."""
    stub = await jobs_stub(harness)
    bus = (await harness.resources("jobs")).bus
    created = [
        (await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="PIM_IMPORT"), timeout=TIMEOUT)).job.id
        for _ in range(30)
    ]
    taken = await running_job(stub)  # runs on w-1
    async with await bus.subscribe(Topic.JOB_STATUS) as events:
        request = jobs_pb2.ReportBatchRequest(worker_id="w-9")
        for job_id in [*created, taken.id]:
            request.reports.add(job_id=job_id).start.total_items = 5
        answer = await stub.ReportBatch(request, timeout=TIMEOUT)
        seen = [await events.get(timeout=TIMEOUT) for _ in created]
    verdict = {r.job_id: r for r in answer.results}
    assert all(verdict[j].accepted and verdict[j].job.status == jobs_pb2.JOB_STATUS_RUNNING for j in created)
    assert all(verdict[j].job.progress.total_items == 5 for j in created)
    assert not verdict[taken.id].accepted and "w-1" in verdict[taken.id].error
    started = [e for e in seen if not isinstance(e, Resync)]
    assert sorted(e.job_status_changed.job_id for e in started) == sorted(created)
    assert {(e.job_status_changed.change, e.job_status_changed.previous_status) for e in started} == {
        ("started", jobs_pb2.JOB_STATUS_QUEUED)
    }
    assert [(await get(stub, j)).worker_id for j in created[:3]] == ["w-9"] * 3


async def test_a_batch_of_completions_completes_them_together_and_resends_change_nothing(
    harness: ServiceHarness,
) -> None:
    """Completions of a batch go in one statement: each job COMPLETED at 100 % with a 'completed' event
    from RUNNING; a resent completion is accepted and changes nothing; another worker's job is refused."""
    stub = await jobs_stub(harness)
    bus = (await harness.resources("jobs")).bus
    mine = [(await running_job(stub, total=10)).id for _ in range(12)]  # run by w-1
    theirs = await running_job(stub)
    request = jobs_pb2.ReportBatchRequest(worker_id="w-1")
    for job_id in mine:
        request.reports.add(job_id=job_id).completed.message = "all done"
    async with await bus.subscribe(Topic.JOB_STATUS) as events:
        answer = await stub.ReportBatch(request, timeout=TIMEOUT)
        seen = [await events.get(timeout=TIMEOUT) for _ in mine]
    assert all(r.accepted and r.status == jobs_pb2.JOB_STATUS_COMPLETED for r in answer.results)
    changes = {(e.job_status_changed.change, e.job_status_changed.previous_status) for e in seen}  # type: ignore[union-attr]
    assert changes == {("completed", jobs_pb2.JOB_STATUS_RUNNING)}
    stored = await get(stub, mine[0])
    assert (stored.status, stored.progress_percent, stored.progress.message) == (
        jobs_pb2.JOB_STATUS_COMPLETED, 100.0, "all done"
    )  # fmt: skip
    again = await stub.ReportBatch(request, timeout=TIMEOUT)
    assert all(r.accepted for r in again.results)
    assert (await get(stub, mine[0])).completed_at == stored.completed_at
    other = jobs_pb2.ReportBatchRequest(worker_id="w-2")
    other.reports.add(job_id=theirs.id).completed.SetInParent()
    refused = (await stub.ReportBatch(other, timeout=TIMEOUT)).results[0]
    assert not refused.accepted and "w-1" in refused.error
