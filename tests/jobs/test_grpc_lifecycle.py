"""The jobs service over real gRPC, against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from b2x.monitoring.v1 import common_pb2, events_pb2, jobs_pb2, jobs_pb2_grpc

from services.common.events import Resync, Topic
from tests.support import ServiceHarness

TIMEOUT = 10


async def _stub(harness: ServiceHarness) -> jobs_pb2_grpc.JobsServiceStub:
    return jobs_pb2_grpc.JobsServiceStub(harness.channel(await harness.jobs()))


async def test_a_job_goes_through_its_lifecycle_and_each_change_is_published(harness: ServiceHarness) -> None:
    stub = await _stub(harness)
    bus = (await harness.resources("jobs")).bus
    async with await bus.subscribe(Topic.JOB_STATUS) as events:
        created = (
            await stub.CreateJob(
                jobs_pb2.CreateJobRequest(job_type="ERP_ARTICLE_SYNC", tenant_id="tenant-a", total_items=200),
                timeout=TIMEOUT,
            )
        ).job
        await stub.StartJob(jobs_pb2.StartJobRequest(job_id=created.id, worker_id="w-1"), timeout=TIMEOUT)
        progress = await stub.ReportProgress(
            jobs_pb2.ReportProgressRequest(
                worker_id="w-1", job_id=created.id, processed_items=100, succeeded_items=98, failed_items=2, sequence=1
            ),
            timeout=TIMEOUT,
        )
        done = (
            await stub.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w-1", job_id=created.id), timeout=TIMEOUT)
        ).job

        seen: list[events_pb2.Event] = []
        while len(seen) < 4:
            item = await events.get(timeout=TIMEOUT)
            assert not isinstance(item, Resync)
            seen.append(item)

    assert created.status == jobs_pb2.JOB_STATUS_QUEUED
    assert progress.applied and progress.job.progress.percent == 50.0
    assert done.status == jobs_pb2.JOB_STATUS_COMPLETED and done.progress_percent == 100
    assert [e.job_status_changed.change for e in seen] == ["created", "started", "progress", "completed"]
    assert [e.job_status_changed.status for e in seen] == [
        jobs_pb2.JOB_STATUS_QUEUED,
        jobs_pb2.JOB_STATUS_RUNNING,
        jobs_pb2.JOB_STATUS_RUNNING,
        jobs_pb2.JOB_STATUS_COMPLETED,
    ]
    assert all(e.tenant_id == "tenant-a" for e in seen)
    fetched = (await stub.GetJob(jobs_pb2.GetJobRequest(job_id=created.id), timeout=TIMEOUT)).job
    assert fetched.progress.succeeded_items == 98 and fetched.worker_id == "w-1"


async def test_unknown_job_id_is_not_found_and_a_malformed_one_is_invalid(harness: ServiceHarness) -> None:
    stub = await _stub(harness)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetJob(jobs_pb2.GetJobRequest(job_id="7d1f2a3e-0000-4000-8000-000000000000"), timeout=TIMEOUT)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert "7d1f2a3e-0000-4000-8000-000000000000" in (missing.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await stub.GetJob(jobs_pb2.GetJobRequest(job_id="not-a-uuid"), timeout=TIMEOUT)
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_progress_beyond_total_or_negative_is_rejected_and_changes_nothing(harness: ServiceHarness) -> None:
    stub = await _stub(harness)
    job = (await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="PIM_IMPORT", total_items=10), timeout=TIMEOUT)).job
    await stub.StartJob(jobs_pb2.StartJobRequest(worker_id="w-1", job_id=job.id), timeout=TIMEOUT)
    for bad in (
        jobs_pb2.ReportProgressRequest(worker_id="w-1", job_id=job.id, processed_items=11),
        jobs_pb2.ReportProgressRequest(worker_id="w-1", job_id=job.id, processed_items=-1),
        jobs_pb2.ReportProgressRequest(
            worker_id="w-1", job_id=job.id, processed_items=5, succeeded_items=4, failed_items=2
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as rejected:
            await stub.ReportProgress(bad, timeout=TIMEOUT)
        assert rejected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stored = (await stub.GetJob(jobs_pb2.GetJobRequest(job_id=job.id), timeout=TIMEOUT)).job
    assert stored.progress.processed_items == 0 and stored.progress.sequence == 0


async def test_a_resent_progress_report_is_applied_once(harness: ServiceHarness) -> None:
    stub = await _stub(harness)
    job = (await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="PIM_IMPORT", total_items=10), timeout=TIMEOUT)).job
    await stub.StartJob(jobs_pb2.StartJobRequest(worker_id="w-1", job_id=job.id), timeout=TIMEOUT)
    newer = jobs_pb2.ReportProgressRequest(worker_id="w-1", job_id=job.id, processed_items=6, sequence=2)
    older = jobs_pb2.ReportProgressRequest(worker_id="w-1", job_id=job.id, processed_items=3, sequence=1)
    assert (await stub.ReportProgress(newer, timeout=TIMEOUT)).applied
    assert not (await stub.ReportProgress(older, timeout=TIMEOUT)).applied
    assert not (await stub.ReportProgress(newer, timeout=TIMEOUT)).applied
    stored = (await stub.GetJob(jobs_pb2.GetJobRequest(job_id=job.id), timeout=TIMEOUT)).job
    assert stored.progress.processed_items == 6 and stored.progress.sequence == 2


async def test_finished_jobs_refuse_further_transitions(harness: ServiceHarness) -> None:
    stub = await _stub(harness)
    job = (await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="CRM_EXPORT"), timeout=TIMEOUT)).job
    await stub.StartJob(jobs_pb2.StartJobRequest(worker_id="w-1", job_id=job.id), timeout=TIMEOUT)
    failed = (
        await stub.FailJob(
            jobs_pb2.FailJobRequest(
                worker_id="w-1",
                job_id=job.id,
                error_message="ERP said 401 for Authorization: Bearer abc.def.ghi",
                error_category="ERP_CONNECTION_FAILED",
                error_class=jobs_pb2.ERROR_CLASS_TRANSIENT,
            ),
            timeout=TIMEOUT,
        )
    ).job
    assert failed.status == jobs_pb2.JOB_STATUS_FAILED
    assert "abc.def.ghi" not in failed.error_message and "masked" in failed.error_message
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w-1", job_id=job.id), timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "FAILED" in (refused.value.details() or "")


async def test_jobs_are_listed_filtered_sorted_and_paged(harness: ServiceHarness) -> None:
    stub = await _stub(harness)
    for i in range(7):
        await stub.CreateJob(
            jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC" if i % 2 else "PIM_IMPORT", tenant_id=f"t{i % 3}"),
            timeout=TIMEOUT,
        )
    request = jobs_pb2.ListJobsRequest(
        filter=jobs_pb2.JobFilter(job_types=["ERP_STOCK_SYNC", "PIM_IMPORT"], tenant_ids=["t0", "t1"]),
        sort_by=jobs_pb2.JOB_SORT_FIELD_CREATED_AT,
        direction=common_pb2.SORT_DIRECTION_ASC,
        page=common_pb2.PageRequest(page_size=2),
    )
    ids: list[str] = []
    pages = 0
    while True:
        page = await stub.ListJobs(request, timeout=TIMEOUT)
        pages += 1
        ids += [j.id for j in page.jobs]
        assert page.page_info.total_count == 5
        if not page.page_info.has_next_page:
            break
        request.page.page_token = page.page_info.next_page_token
    assert len(ids) == 5 and len(set(ids)) == 5 and pages == 3
    running = await stub.ListJobs(
        jobs_pb2.ListJobsRequest(filter=jobs_pb2.JobFilter(statuses=[jobs_pb2.JOB_STATUS_RUNNING])), timeout=TIMEOUT
    )
    assert running.page_info.total_count == 0


async def test_a_malformed_page_token_is_invalid_argument(harness: ServiceHarness) -> None:
    stub = await _stub(harness)
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.ListJobs(
            jobs_pb2.ListJobsRequest(page=common_pb2.PageRequest(page_size=5, page_token="garbage!")), timeout=TIMEOUT
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_same_idempotency_key_creates_one_job(harness: ServiceHarness) -> None:
    stub = await _stub(harness)
    request = jobs_pb2.CreateJobRequest(job_type="ERP_ORDER_EXPORT", idempotency_key="order-42")
    first, second = await asyncio.gather(
        stub.CreateJob(request, timeout=TIMEOUT), stub.CreateJob(request, timeout=TIMEOUT)
    )
    assert first.job.id == second.job.id
