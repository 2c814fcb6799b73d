"""Cancel and retry — by hand and automatic — and the reaper, over real gRPC and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
import pytest
from b2x.monitoring.v1 import jobs_pb2

from tests.jobs.helpers import TIMEOUT, get, jobs_stub, running_job
from tests.support import ServiceHarness


async def test_a_queued_job_is_cancelled_at_once_and_a_running_one_on_request(harness: ServiceHarness) -> None:
    """Cancelling QUEUED ends it CANCELLED with the reason; cancelling RUNNING only flags cancel_requested."""
    stub = await jobs_stub(harness)
    queued = (await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="PIM_IMPORT"), timeout=TIMEOUT)).job
    done = (
        await stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=queued.id, reason="duplicate run"), timeout=TIMEOUT)
    ).job
    assert done.status == jobs_pb2.JOB_STATUS_CANCELLED and done.cancel_reason == "duplicate run"
    running = await running_job(stub)
    flagged = (
        await stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=running.id, requested_by="ops"), timeout=TIMEOUT)
    ).job
    assert flagged.status == jobs_pb2.JOB_STATUS_RUNNING and flagged.cancel_requested
    assert "ops" in flagged.cancel_reason


async def test_cancelling_a_finished_job_is_a_failed_precondition(harness: ServiceHarness) -> None:
    """A completed job cannot be cancelled; the message says why."""
    stub = await jobs_stub(harness)
    job = await running_job(stub)
    await stub.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w-1", job_id=job.id), timeout=TIMEOUT)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.id), timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already finished (COMPLETED)" in (refused.value.details() or "")


async def test_retrying_a_running_job_is_a_failed_precondition(harness: ServiceHarness) -> None:
    """Only failed or cancelled jobs can be retried."""
    stub = await jobs_stub(harness)
    job = await running_job(stub)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.RetryJob(jobs_pb2.RetryJobRequest(job_id=job.id), timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "only FAILED or CANCELLED" in (refused.value.details() or "")


async def test_a_manual_retry_is_a_new_attempt_with_the_same_parameters(harness: ServiceHarness) -> None:
    """The new attempt is QUEUED, linked to the old one and its root, with attempt + 1 and the parameters."""
    stub = await jobs_stub(harness)
    params = {"catalog": "spring-2027", "dryRun": False}
    request = jobs_pb2.CreateJobRequest(job_type="ERP_PRICE_UPDATE", tenant_id="t1", total_items=50, max_attempts=1)
    request.parameters.update(params)
    job = (await stub.CreateJob(request, timeout=TIMEOUT)).job
    await stub.StartJob(jobs_pb2.StartJobRequest(worker_id="w-1", job_id=job.id), timeout=TIMEOUT)
    await stub.FailJob(
        jobs_pb2.FailJobRequest(worker_id="w-1", job_id=job.id, error_message="price list locked"), timeout=TIMEOUT
    )
    retry = await stub.RetryJob(jobs_pb2.RetryJobRequest(job_id=job.id, requested_by="ops"), timeout=TIMEOUT)
    assert retry.created
    attempt = retry.job
    assert attempt.status == jobs_pb2.JOB_STATUS_QUEUED and attempt.attempt == 2
    assert attempt.retry_of_job_id == job.id and attempt.root_job_id == job.id
    assert dict(attempt.parameters) == params and attempt.tenant_id == "t1"
    details = await stub.GetJobDetails(jobs_pb2.GetJobDetailsRequest(job_id=attempt.id), timeout=TIMEOUT)
    assert [a.id for a in details.attempts] == [job.id, attempt.id]
    assert (await get(stub, job.id)).retried_by_job_id == attempt.id


async def test_two_retries_at_once_make_one_new_attempt(harness: ServiceHarness) -> None:
    """Concurrent retries of the same job return the same attempt; only one was created."""
    stub = await jobs_stub(harness)
    job = await running_job(stub, max_attempts=1)
    await stub.FailJob(jobs_pb2.FailJobRequest(worker_id="w-1", job_id=job.id, error_message="boom"), timeout=TIMEOUT)
    answers = await asyncio.gather(
        *(stub.RetryJob(jobs_pb2.RetryJobRequest(job_id=job.id), timeout=TIMEOUT) for _ in range(5))
    )
    assert len({a.job.id for a in answers}) == 1
    assert sum(a.created for a in answers) == 1
    details = await stub.GetJobDetails(jobs_pb2.GetJobDetailsRequest(job_id=job.id), timeout=TIMEOUT)
    assert len(details.attempts) == 2


async def test_transient_failures_retry_automatically_with_backoff_until_max_attempts(harness: ServiceHarness) -> None:
    """A transient failure queues attempt 2 for later; at max attempts there is no further retry."""
    stub = await jobs_stub(harness, jobs_retry_base_seconds=60)
    job = await running_job(stub, max_attempts=2)
    before = datetime.now(UTC)
    await stub.FailJob(
        jobs_pb2.FailJobRequest(
            worker_id="w-1", job_id=job.id, error_message="ERP timeout", error_class=jobs_pb2.ERROR_CLASS_TRANSIENT
        ),
        timeout=TIMEOUT,
    )
    second_id = (await get(stub, job.id)).retried_by_job_id
    second = await get(stub, second_id)
    assert second.status == jobs_pb2.JOB_STATUS_QUEUED and second.attempt == 2
    wait = second.available_at.ToDatetime(tzinfo=UTC) - before
    assert 29 <= wait.total_seconds() <= 61  # base 60 s: between half and all of it (jitter)
    await stub.StartJob(jobs_pb2.StartJobRequest(worker_id="w-1", job_id=second.id), timeout=TIMEOUT)
    await stub.FailJob(
        jobs_pb2.FailJobRequest(
            worker_id="w-1", job_id=second.id, error_message="ERP timeout", error_class=jobs_pb2.ERROR_CLASS_TRANSIENT
        ),
        timeout=TIMEOUT,
    )
    assert (await get(stub, second.id)).retried_by_job_id == ""


async def test_permanent_failures_never_retry(harness: ServiceHarness) -> None:
    """A permanent failure leaves the job FAILED with no new attempt, attempts left or not."""
    stub = await jobs_stub(harness)
    job = await running_job(stub, max_attempts=5)
    await stub.FailJob(
        jobs_pb2.FailJobRequest(
            worker_id="w-1", job_id=job.id, error_message="invalid VAT id", error_class=jobs_pb2.ERROR_CLASS_PERMANENT
        ),
        timeout=TIMEOUT,
    )
    assert (await get(stub, job.id)).retried_by_job_id == ""


async def test_a_job_whose_worker_went_silent_fails_as_worker_lost_and_is_retried(harness: ServiceHarness) -> None:
    """With a 1 s heartbeat timeout, a running job without heartbeats ends FAILED/WORKER_LOST (transient)
    and the retry policy queues the next attempt; one that was asked to cancel ends CANCELLED instead."""
    stub = await jobs_stub(
        harness, jobs_heartbeat_timeout_seconds=1, jobs_reaper_interval_seconds=0.2, jobs_retry_base_seconds=0
    )
    lost = await running_job(stub, max_attempts=3)
    stopping = await running_job(stub)
    await stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=stopping.id), timeout=TIMEOUT)
    for _ in range(100):
        if (await get(stub, lost.id)).status != jobs_pb2.JOB_STATUS_RUNNING:
            break
        await asyncio.sleep(0.1)
    reaped = await get(stub, lost.id)
    assert reaped.status == jobs_pb2.JOB_STATUS_FAILED
    assert reaped.error_category == "WORKER_LOST" and reaped.error_class == jobs_pb2.ERROR_CLASS_TRANSIENT
    assert "w-1" in reaped.error_message and reaped.retried_by_job_id
    for _ in range(50):
        if (await get(stub, stopping.id)).status != jobs_pb2.JOB_STATUS_RUNNING:
            break
        await asyncio.sleep(0.1)
    assert (await get(stub, stopping.id)).status == jobs_pb2.JOB_STATUS_CANCELLED
