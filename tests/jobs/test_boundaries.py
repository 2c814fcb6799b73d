"""The jobs service's boundary over real gRPC and PostgreSQL: out-of-range counts, bad text and cursors,
worker ownership, and what reaches storage, events and readers (masked, escaped)."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from b2x.monitoring.v1 import common_pb2, jobs_pb2

from services.common.events import Topic
from tests.jobs.helpers import TIMEOUT, get, jobs_stub, running_job
from tests.support import ServiceHarness

HUGE = 2**63 - 1
IBAN = "DE89370400440532013000"


def _log(seq: int, text: str, **context: object) -> jobs_pb2.LogEntry:
    entry = jobs_pb2.LogEntry(sequence=seq, level=common_pb2.LOG_LEVEL_INFO, message=text)
    entry.timestamp.GetCurrentTime()
    entry.context.update(context)
    return entry


async def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return raised.value.code()


async def test_counts_beyond_what_clients_can_carry_are_invalid_arguments(harness: ServiceHarness) -> None:
    """2^63-1 items in ReportProgress, CreateJob, StartJob or a batch is INVALID_ARGUMENT; the job is unchanged."""
    stub = await jobs_stub(harness)
    job = await running_job(stub, total=100)
    huge = jobs_pb2.ReportProgressRequest(job_id=job.id, total_items=HUGE, processed_items=HUGE, worker_id="w-1")
    assert await _code(stub.ReportProgress(huge, timeout=TIMEOUT)) == grpc.StatusCode.INVALID_ARGUMENT
    create = jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC", total_items=HUGE)
    assert await _code(stub.CreateJob(create, timeout=TIMEOUT)) == grpc.StatusCode.INVALID_ARGUMENT
    batch = jobs_pb2.ReportBatchRequest(
        worker_id="w-1",
        reports=[jobs_pb2.JobReport(job_id=job.id, progress=jobs_pb2.ProgressUpdate(processed_items=HUGE))],
    )
    answer = await stub.ReportBatch(batch, timeout=TIMEOUT)
    assert not answer.results[0].accepted and "processed_items" in answer.results[0].error
    assert (await get(stub, job.id)).progress.total_items == 100


async def test_nul_bytes_and_crafted_page_tokens_are_invalid_arguments(harness: ServiceHarness) -> None:
    """A NUL in the text filter, the log search or an idempotency key, and a page token whose key is not a date,
    are INVALID_ARGUMENT rather than INTERNAL."""
    stub = await jobs_stub(harness)
    job = await running_job(stub)
    nul_filter = jobs_pb2.ListJobsRequest(filter=jobs_pb2.JobFilter(text="a\x00b"))
    assert await _code(stub.ListJobs(nul_filter, timeout=TIMEOUT)) == grpc.StatusCode.INVALID_ARGUMENT
    nul_logs = jobs_pb2.ListJobLogsRequest(job_id=job.id, text="a\x00b")
    assert await _code(stub.ListJobLogs(nul_logs, timeout=TIMEOUT)) == grpc.StatusCode.INVALID_ARGUMENT
    nul_key = jobs_pb2.CreateJobRequest(job_type="X", idempotency_key="k\x00")
    assert await _code(stub.CreateJob(nul_key, timeout=TIMEOUT)) == grpc.StatusCode.INVALID_ARGUMENT
    raw = json.dumps({"s": "created_at", "d": True, "k": "not-a-date", "i": job.id})
    token = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    crafted = jobs_pb2.ListJobsRequest(page=common_pb2.PageRequest(page_token=token))
    assert await _code(stub.ListJobs(crafted, timeout=TIMEOUT)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_only_the_owning_worker_changes_a_running_job(harness: ServiceHarness) -> None:
    """Another worker's batch cannot complete, fail, log to or move a job `owner-w` runs; its single calls are
    PERMISSION_DENIED; the owner's report still applies."""
    stub = await jobs_stub(harness)
    job = (
        await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC", total_items=10), timeout=TIMEOUT)
    ).job
    await stub.StartJob(jobs_pb2.StartJobRequest(job_id=job.id, worker_id="owner-w"), timeout=TIMEOUT)
    evil = jobs_pb2.ReportBatchRequest(
        worker_id="evil-w",
        reports=[
            jobs_pb2.JobReport(job_id=job.id, logs=[_log(1, "injected")], completed=jobs_pb2.Completion(message="x"))
        ],
    )
    answer = await stub.ReportBatch(evil, timeout=TIMEOUT)
    assert not answer.results[0].accepted and "owner-w" in answer.results[0].error
    after = await get(stub, job.id)
    assert after.status == jobs_pb2.JOB_STATUS_RUNNING and after.log_sequence == 0
    for call in (
        stub.CompleteJob(jobs_pb2.CompleteJobRequest(job_id=job.id, worker_id="evil-w"), timeout=TIMEOUT),
        stub.FailJob(jobs_pb2.FailJobRequest(job_id=job.id, error_message="x", worker_id="evil-w"), timeout=TIMEOUT),
        stub.ReportProgress(
            jobs_pb2.ReportProgressRequest(job_id=job.id, processed_items=1, worker_id="evil-w"), timeout=TIMEOUT
        ),
        stub.CompleteJob(jobs_pb2.CompleteJobRequest(job_id=job.id), timeout=TIMEOUT),
    ):
        assert await _code(call) == grpc.StatusCode.PERMISSION_DENIED
    own = jobs_pb2.ReportBatchRequest(
        worker_id="owner-w", reports=[jobs_pb2.JobReport(job_id=job.id, completed=jobs_pb2.Completion(message="ok"))]
    )
    assert (await stub.ReportBatch(own, timeout=TIMEOUT)).results[0].status == jobs_pb2.JOB_STATUS_COMPLETED


async def test_workers_must_name_themselves_and_number_log_lines_from_one(harness: ServiceHarness) -> None:
    """StartJob and ReportBatch without a worker id, and a log line with sequence -3, are refused."""
    stub = await jobs_stub(harness)
    job = (await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC"), timeout=TIMEOUT)).job
    unnamed = jobs_pb2.StartJobRequest(job_id=job.id, worker_id="")
    assert await _code(stub.StartJob(unnamed, timeout=TIMEOUT)) == grpc.StatusCode.INVALID_ARGUMENT
    nobody = jobs_pb2.ReportBatchRequest(heartbeat_job_ids=[job.id])
    assert await _code(stub.ReportBatch(nobody, timeout=TIMEOUT)) == grpc.StatusCode.INVALID_ARGUMENT
    running = await running_job(stub)
    negative = jobs_pb2.ReportBatchRequest(
        worker_id="w-1", reports=[jobs_pb2.JobReport(job_id=running.id, logs=[_log(-3, "back in time")])]
    )
    answer = await stub.ReportBatch(negative, timeout=TIMEOUT)
    assert not answer.results[0].accepted and "sequence" in answer.results[0].error


async def test_pii_and_disguising_characters_never_reach_storage_or_events(harness: ServiceHarness) -> None:
    """An IBAN in parameters, a log message, a log context value and a cancel reason is masked in what is
    stored and in the events on Redis; bidi overrides and newlines in context values and step names are escaped."""
    address = await harness.jobs()
    from b2x.monitoring.v1 import jobs_pb2_grpc

    stub = jobs_pb2_grpc.JobsServiceStub(harness.channel(address))
    bus = (await harness.resources("jobs")).bus
    events = await bus.subscribe(Topic.JOB_STATUS, Topic.JOB_LOGS)
    job = await running_job(stub, parameters=_struct({"account": IBAN}))
    report = jobs_pb2.JobReport(
        job_id=job.id,
        logs=[_log(1, f"refund to {IBAN}", note="a\u202egnp.exe\nFAKE", iban=IBAN)],
        steps=[jobs_pb2.StepUpdate(index=0, name="load\nFAKE \u202e", status=jobs_pb2.JOB_STEP_STATUS_RUNNING)],
    )
    await stub.ReportBatch(jobs_pb2.ReportBatchRequest(worker_id="w-1", reports=[report]), timeout=TIMEOUT)
    await stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.id, reason=f"refund {IBAN} twice"), timeout=TIMEOUT)
    stored = await get(stub, job.id)
    logs = (await stub.ListJobLogs(jobs_pb2.ListJobLogsRequest(job_id=job.id), timeout=TIMEOUT)).logs
    seen = [str(stored), str(logs)]
    while True:
        try:
            seen.append(str(await events.get(timeout=0.5)))
        except TimeoutError:
            break
    await events.close()
    everything = "\n".join(seen)
    assert "370400440532013000" not in everything
    assert "\u202e" not in everything and "\\u202e" in str(logs[0].context)
    assert stored.steps[0].name == "load\\nFAKE \\u202e"
    assert len(seen) > 2


def _struct(value: dict[str, object]) -> object:
    from google.protobuf.struct_pb2 import Struct

    struct = Struct()
    struct.update(value)
    return struct
