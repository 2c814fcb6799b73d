"""The Job SDK's reports as the jobs service stores them: progress, logs, steps and outcomes."""

from __future__ import annotations

import asyncio
import time

import pytest
from b2x.monitoring.v1 import common_pb2, jobs_pb2

from services.common.protoconv import from_struct
from services.jobs.sdk import JobMonitor, TransientJobError
from tests.jobs.sdk.helpers import JobsServer, Stub, attempts, eventually, get_job, job_logs


def monitor_for(server: JobsServer, **options: float) -> JobMonitor:
    return JobMonitor(server.address, "sdk-test-worker", flush_interval=0.05, **options)  # type: ignore[arg-type]


async def test_a_thousand_progress_calls_make_a_handful_of_reports_and_the_last_state_is_exact(
    jobs_server: JobsServer, stub: Stub
) -> None:
    """Coalescing: 1 000 item_done() calls over ~2 s become a few stored reports; the final counts are exact."""
    async with monitor_for(jobs_server) as monitor:
        job = await monitor.create_job("PIM_IMPORT", tenant_id="tenant-a", total_items=1000)
        handle = monitor.attach(job.id)
        handle.start()
        for item in range(1000):
            handle.item_done(ok=item % 10 != 0)
            if item % 50 == 49:
                await asyncio.sleep(0.1)
        handle.complete("1000 rows imported")
        assert await handle.wait_reported(timeout=20)
    stored = await get_job(stub, job.id)
    assert stored.status == jobs_pb2.JOB_STATUS_COMPLETED
    assert (stored.progress.processed_items, stored.progress.succeeded_items, stored.progress.failed_items) == (
        1000,
        900,
        100,
    )
    # One report per second at most (min_report_interval) over ~2 s, plus the final one.
    assert 1 <= stored.progress.sequence <= 5
    assert monitor.stats.progress_reports == stored.progress.sequence


async def test_progress_is_reported_every_hundred_items_but_at_most_once_per_min_interval(
    jobs_server: JobsServer, stub: Stub
) -> None:
    """The seed's rule: 100 items since the last report trigger one, yet never more often than min_report_interval."""
    async with monitor_for(jobs_server, min_report_interval=0.0) as monitor:
        job = await monitor.create_job("ERP_STOCK_SYNC", total_items=300)
        handle = monitor.attach(job.id)
        handle.start()
        await eventually(lambda: _running(stub, job.id), what="the job to start")
        for _ in range(99):
            handle.item_done()
        await asyncio.sleep(0.5)
        assert (await get_job(stub, job.id)).progress.sequence == 0, "99 items are not a report yet"
        handle.item_done()
        first = await eventually(lambda: _sequence_at_least(stub, job.id, 1), what="the 100-item report")
        assert first.progress.processed_items == 100
        handle.complete()

    async with monitor_for(jobs_server, min_report_interval=60.0) as slow:
        job = await slow.create_job("ERP_STOCK_SYNC", total_items=1000)
        handle = slow.attach(job.id)
        handle.start()
        await eventually(lambda: _running(stub, job.id), what="the job to start")
        for _ in range(100):
            handle.item_done()
        await eventually(lambda: _sequence_at_least(stub, job.id, 1), what="the first report")
        for _ in range(500):
            handle.item_done()
        await asyncio.sleep(0.5)
        assert (await get_job(stub, job.id)).progress.processed_items == 100, "held back by min_report_interval"
        handle.complete()
    assert (await get_job(stub, job.id)).progress.processed_items == 600, "the final state goes with the outcome"


def _call_erp() -> None:
    raise TimeoutError("enventa Trade did not answer")


def _update_prices() -> None:
    raise TransientJobError("ORM session expired", category="ERP_SESSION_TIMEOUT")


async def _running(stub: Stub, job_id: str) -> bool:
    return (await get_job(stub, job_id)).status == jobs_pb2.JOB_STATUS_RUNNING


async def _sequence_at_least(stub: Stub, job_id: str, sequence: int) -> jobs_pb2.SchedulerJob | None:
    job = await get_job(stub, job_id)
    return job if job.progress.sequence >= sequence else None


async def test_log_lines_arrive_in_order_with_their_context_and_none_is_lost(
    jobs_server: JobsServer, stub: Stub
) -> None:
    """Every line logged (from the loop and from a thread) is stored once, in sequence order, with level, context and stack."""
    async with monitor_for(jobs_server) as monitor:
        job = await monitor.create_job("ERP_ARTICLE_SYNC", tenant_id="tenant-b")
        handle = monitor.attach(job.id)
        handle.start()
        for n in range(1, 301):
            handle.info(f"article {n} synced", article=f"A-{n}", batch={"n": n, "tags": ["x", "y"]})
            if n % 100 == 0:
                await asyncio.sleep(0.1)
        await asyncio.to_thread(lambda: [handle.warning("from a thread", n=n) for n in range(50)])
        try:
            _call_erp()
        except TimeoutError:
            handle.error("ERP call failed", exc_info=True, endpoint="/api/articles")
        handle.complete()
    logs = await job_logs(stub, job.id)
    assert [line.sequence for line in logs] == list(range(1, 352))
    assert [line.message for line in logs[:300]] == [f"article {n} synced" for n in range(1, 301)]
    assert from_struct(logs[41].context) == {"article": "A-42", "batch": {"n": 42.0, "tags": ["x", "y"]}}
    assert all(line.level == common_pb2.LOG_LEVEL_WARNING for line in logs[300:350])
    assert logs[-1].level == common_pb2.LOG_LEVEL_ERROR
    assert "TimeoutError: enventa Trade did not answer" in logs[-1].stack_trace
    assert from_struct(logs[-1].context) == {"endpoint": "/api/articles"}


async def test_steps_are_recorded_with_their_status_and_times(jobs_server: JobsServer, stub: Stub) -> None:
    """`with handle.step()` and `async with` record RUNNING then COMPLETED, or FAILED with the error."""
    async with monitor_for(jobs_server) as monitor:
        job = await monitor.create_job("CRM_EXPORT")
        handle = monitor.attach(job.id)
        handle.start()
        with handle.step("connect"):
            await asyncio.sleep(0.05)
        async with handle.step("load"):
            await asyncio.sleep(0.05)
        with pytest.raises(ValueError, match="bad segment"), handle.step("transform"):
            raise ValueError("bad segment")
        handle.fail("transform failed", category="DATA_VALIDATION")
    stored = await get_job(stub, job.id)
    assert [(s.index, s.name, s.status) for s in stored.steps] == [
        (0, "connect", jobs_pb2.JOB_STEP_STATUS_COMPLETED),
        (1, "load", jobs_pb2.JOB_STEP_STATUS_COMPLETED),
        (2, "transform", jobs_pb2.JOB_STEP_STATUS_FAILED),
    ]
    assert stored.steps[2].message == "ValueError: bad segment"
    for step in stored.steps:
        assert step.started_at.ToDatetime() <= step.completed_at.ToDatetime()
    assert stored.steps[1].completed_at.ToNanoseconds() - stored.steps[1].started_at.ToNanoseconds() >= 40_000_000


async def test_a_transient_failure_queues_an_automatic_retry_for_later(jobs_server: JobsServer, stub: Stub) -> None:
    """fail(TransientJobError) stores FAILED/TRANSIENT with the stack trace, and the service queues attempt 2 with a future available_at."""
    async with monitor_for(jobs_server) as monitor:
        job = await monitor.create_job("ERP_PRICE_UPDATE", max_attempts=3, parameters={"list": "PL-2026"})
        handle = monitor.attach(job.id)
        handle.start()
        try:
            _update_prices()
        except TransientJobError as error:
            handle.fail(error)
        assert await handle.wait_reported(timeout=20)
    assert handle.status == "FAILED"
    failed = await get_job(stub, job.id)
    assert failed.error_class == jobs_pb2.ERROR_CLASS_TRANSIENT
    assert failed.error_category == "ERP_SESSION_TIMEOUT"
    assert failed.error_message == "TransientJobError: ORM session expired"
    assert "in _update_prices" in failed.error_stack_trace
    chain = await attempts(stub, job.id)
    assert len(chain) == 2
    retry = chain[1]
    assert retry.status == jobs_pb2.JOB_STATUS_QUEUED and retry.attempt == 2 and retry.retry_of_job_id == job.id
    assert retry.available_at.ToNanoseconds() > time.time_ns()
    assert from_struct(retry.parameters) == {"list": "PL-2026"}


async def test_a_permanent_failure_is_never_retried(jobs_server: JobsServer, stub: Stub) -> None:
    """fail() with an ordinary exception is PERMANENT (category INTERNAL) and no retry attempt appears."""
    async with monitor_for(jobs_server) as monitor:
        job = await monitor.create_job("ERP_ORDER_EXPORT", max_attempts=3)
        handle = monitor.attach(job.id)
        handle.start()
        handle.fail(KeyError("customer_number"))
        assert await handle.wait_reported(timeout=20)
    failed = await get_job(stub, job.id)
    assert failed.status == jobs_pb2.JOB_STATUS_FAILED
    assert failed.error_class == jobs_pb2.ERROR_CLASS_PERMANENT
    assert failed.error_category == "INTERNAL"
    await asyncio.sleep(0.3)
    assert len(await attempts(stub, job.id)) == 1


async def test_a_report_for_a_finished_job_is_refused_once_and_not_retried(jobs_server: JobsServer, stub: Stub) -> None:
    """When someone else finished the job, the handle records the service's reason and the monitor stops sending for it."""
    async with monitor_for(jobs_server) as monitor:
        job = await monitor.create_job("PIM_IMPORT")
        handle = monitor.attach(job.id)
        handle.start()
        await eventually(lambda: _running(stub, job.id), what="the job to start")
        await stub.FailJob(
            jobs_pb2.FailJobRequest(worker_id="sdk-test-worker", job_id=job.id, error_message="failed by its worker"),
            timeout=10,
        )
        handle.complete()
        assert await handle.wait_reported(timeout=20)
        assert handle.rejected is not None and "FAILED" in handle.rejected
        assert monitor.stats.refused == 1
        assert monitor.active_jobs == 0
    assert (await get_job(stub, job.id)).error_message == "failed by its worker"


async def test_an_unknown_job_is_refused_at_start(jobs_server: JobsServer) -> None:
    """attach() of a job id the service does not know ends with handle.rejected, not with endless retries."""
    async with monitor_for(jobs_server) as monitor:
        handle = monitor.attach("7d1f2a3e-0000-4000-8000-000000000000")
        handle.start()
        handle.info("never stored")
        assert await handle.wait_reported(timeout=20)
    assert handle.rejected is not None and "not found" in handle.rejected


async def test_a_count_report_held_back_by_the_minimum_interval_goes_once_it_has_passed(
    jobs_server: JobsServer, stub: Stub
) -> None:
    """100 more items within min_report_interval of the last report are sent as soon as the interval has
    passed, not at the next scan of every job (which, with a long max_report_interval, is seconds away)."""
    async with monitor_for(jobs_server, min_report_interval=0.5, max_report_interval=600.0) as monitor:
        job = await monitor.create_job("ERP_STOCK_SYNC", total_items=1000)
        handle = monitor.attach(job.id)
        handle.start()
        await eventually(lambda: _running(stub, job.id), what="the job to start")
        handle.progress(100)
        await eventually(lambda: _sequence_at_least(stub, job.id, 1), what="the first report")
        handle.progress(200)  # due by count, but within the minimum interval of the first report
        started = time.monotonic()
        second = await eventually(lambda: _sequence_at_least(stub, job.id, 2), what="the held-back report")
        assert second.progress.processed_items == 200
        assert time.monotonic() - started < 3.0, "sent after the minimum interval, not at the next scan (5 s away)"
        handle.complete()
