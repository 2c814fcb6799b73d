"""The worker runner against the real jobs service: claiming, concurrency, outcomes, cancel, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from b2x.monitoring.v1 import jobs_pb2

from services.jobs.sdk import (
    Handler,
    JobHandle,
    JobInfo,
    JobMonitor,
    PermanentJobError,
    TransientJobError,
    WorkerRunner,
)
from tests.jobs.sdk.helpers import JobsServer, Stub, attempts, eventually, get_job, status_is


@contextlib.asynccontextmanager
async def running_worker(
    server: JobsServer, handlers: dict[str, Handler], **options: float
) -> AsyncIterator[tuple[JobMonitor, WorkerRunner]]:
    """A monitor and a runner with a fast poll; stopped (gracefully) when the block ends."""
    async with JobMonitor(server.address, "runner-test-worker", flush_interval=0.05) as monitor:
        runner = WorkerRunner(monitor, handlers, poll_interval=0.1, **options)  # type: ignore[arg-type]
        task = asyncio.create_task(runner.run())
        try:
            yield monitor, runner
        finally:
            runner.stop()
            await asyncio.wait_for(task, 30)


async def test_the_runner_claims_only_its_types_and_never_runs_more_than_its_concurrency(
    jobs_server: JobsServer, stub: Stub
) -> None:
    """Six ERP_STOCK_SYNC jobs run two at a time and complete; the PIM_IMPORT jobs nobody handles stay QUEUED."""
    running = 0
    peak = 0

    async def stock_sync(job: JobInfo, handle: JobHandle) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            handle.start(total_items=10)
            for _ in range(10):
                await asyncio.sleep(0.03)
                handle.item_done()
        finally:
            running -= 1

    async with running_worker(jobs_server, {"ERP_STOCK_SYNC": stock_sync}, concurrency=2) as (monitor, runner):
        mine = [await monitor.create_job("ERP_STOCK_SYNC", tenant_id="tenant-a") for _ in range(6)]
        others = [await monitor.create_job("PIM_IMPORT", tenant_id="tenant-a") for _ in range(3)]
        for job in mine:
            done = await eventually(
                lambda j=job: status_is(stub, j.id, jobs_pb2.JOB_STATUS_COMPLETED), what="completion"
            )
            assert done.worker_id == "runner-test-worker"
            assert done.progress.processed_items == 10 and done.progress.total_items == 10
    assert peak == 2
    assert runner.claimed == 6
    for job in others:
        assert (await get_job(stub, job.id)).status == jobs_pb2.JOB_STATUS_QUEUED


async def test_handler_exceptions_fail_the_job_with_the_right_class(jobs_server: JobsServer, stub: Stub) -> None:
    """TransientJobError and ConnectionError fail TRANSIENT (a retry is queued); PermanentJobError and ValueError PERMANENT (none)."""
    failures: dict[str, BaseException] = {
        "transient": TransientJobError("enventa Trade did not answer within 30 s", category="ERP_CONNECTION_FAILED"),
        "connection": ConnectionResetError("connection reset by peer"),
        "validation": PermanentJobError("article 4711-B: unknown price group", category="erp data validation"),
        "bug": ValueError("unexpected None in row 17"),
    }

    async def sync(job: JobInfo, handle: JobHandle) -> None:
        handle.item_done()
        raise failures[job.parameters["case"]]

    async with running_worker(jobs_server, {"ERP_ARTICLE_SYNC": sync}) as (monitor, _):
        jobs = {
            case: await monitor.create_job("ERP_ARTICLE_SYNC", parameters={"case": case}, max_attempts=2)
            for case in failures
        }
        failed = {
            case: await eventually(lambda j=job: status_is(stub, j.id, jobs_pb2.JOB_STATUS_FAILED), what=case)
            for case, job in jobs.items()
        }
        retries = {case: len(await attempts(stub, job.id)) for case, job in jobs.items()}
    expected = {
        "transient": (jobs_pb2.ERROR_CLASS_TRANSIENT, "ERP_CONNECTION_FAILED", 2),
        "connection": (jobs_pb2.ERROR_CLASS_TRANSIENT, "CONNECTION_FAILED", 2),
        "validation": (jobs_pb2.ERROR_CLASS_PERMANENT, "ERP_DATA_VALIDATION", 1),
        "bug": (jobs_pb2.ERROR_CLASS_PERMANENT, "INTERNAL", 1),
    }
    for case, (error_class, category, chain) in expected.items():
        assert (failed[case].error_class, failed[case].error_category, retries[case]) == (error_class, category, chain)
    assert failed["bug"].error_message == "ValueError: unexpected None in row 17"
    assert failed["bug"].progress.processed_items == 1, "the final progress goes with the failure"


async def test_a_cancel_request_reaches_the_running_handler_within_two_seconds(
    jobs_server: JobsServer, stub: Stub
) -> None:
    """CancelJob on a running job: the handler's task is cancelled within 2 s and the job ends CANCELLED."""
    started = asyncio.Event()
    cancelled_at: list[float] = []
    saw_event: list[bool] = []

    async def endless(job: JobInfo, handle: JobHandle) -> None:
        started.set()
        try:
            while True:
                await asyncio.sleep(0.02)
                handle.item_done()
        except asyncio.CancelledError:
            cancelled_at.append(time.monotonic())
            saw_event.append(handle.cancel_requested)
            raise

    async with running_worker(jobs_server, {"CRM_EXPORT": endless}) as (monitor, _):
        job = await monitor.create_job("CRM_EXPORT")
        await asyncio.wait_for(started.wait(), 20)
        requested_at = time.monotonic()
        await stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.id, reason="wrong tenant"), timeout=10)
        done = await eventually(lambda: status_is(stub, job.id, jobs_pb2.JOB_STATUS_CANCELLED), what="cancellation")
    assert cancelled_at and cancelled_at[0] - requested_at < 2.0
    assert saw_event == [True], "the cancel event is set before the task is cancelled"
    assert done.cancel_reason == "wrong tenant"
    assert done.progress.processed_items > 0
    assert len(await attempts(stub, job.id)) == 1, "a cancelled job is not retried"


async def test_a_handler_that_reports_its_own_outcome_keeps_it(jobs_server: JobsServer, stub: Stub) -> None:
    """A handler that calls handle.fail() and returns is not completed by the runner afterwards."""

    async def partial(job: JobInfo, handle: JobHandle) -> None:
        handle.progress(10, succeeded=7, failed=3, total=10)
        handle.fail("3 of 10 rows rejected", category="ERP_BULK_PARTIAL", transient=False)

    async with running_worker(jobs_server, {"ERP_CUSTOMER_SYNC": partial}) as (monitor, _):
        job = await monitor.create_job("ERP_CUSTOMER_SYNC")
        failed = await eventually(lambda: status_is(stub, job.id, jobs_pb2.JOB_STATUS_FAILED), what="the failure")
    assert (failed.error_category, failed.error_class) == ("ERP_BULK_PARTIAL", jobs_pb2.ERROR_CLASS_PERMANENT)
    assert (failed.progress.succeeded_items, failed.progress.failed_items) == (7, 3)


async def test_stop_lets_short_handlers_finish_and_fails_long_ones_as_transient(
    jobs_server: JobsServer, stub: Stub
) -> None:
    """On stop(), a handler ending within the grace completes; one still running after it fails TRANSIENT/WORKER_SHUTDOWN and is retried."""
    both_started = asyncio.Barrier(3)

    async def work(job: JobInfo, handle: JobHandle) -> None:
        await both_started.wait()
        await asyncio.sleep(job.parameters["seconds"])

    async with JobMonitor(jobs_server.address, "stopping-worker", flush_interval=0.05) as monitor:
        runner = WorkerRunner(monitor, {"ERP_STOCK_SYNC": work}, poll_interval=0.1, shutdown_grace=1.0)
        short = await monitor.create_job("ERP_STOCK_SYNC", parameters={"seconds": 0.2})
        long = await monitor.create_job("ERP_STOCK_SYNC", parameters={"seconds": 3600})
        task = asyncio.create_task(runner.run())
        await asyncio.wait_for(both_started.wait(), 20)
        runner.stop()
        await asyncio.wait_for(task, 20)
    assert (await get_job(stub, short.id)).status == jobs_pb2.JOB_STATUS_COMPLETED
    stopped = await get_job(stub, long.id)
    assert stopped.status == jobs_pb2.JOB_STATUS_FAILED
    assert (stopped.error_class, stopped.error_category) == (jobs_pb2.ERROR_CLASS_TRANSIENT, "WORKER_SHUTDOWN")
    chain = await attempts(stub, long.id)
    assert [a.status for a in chain] == [jobs_pb2.JOB_STATUS_FAILED, jobs_pb2.JOB_STATUS_QUEUED]


async def test_a_sync_handler_runs_in_a_thread_and_stops_when_asked(jobs_server: JobsServer, stub: Stub) -> None:
    """A plain function handler reports progress from its thread; it completes, or sees stop_requested on a cancel."""

    def crunch(job: JobInfo, handle: JobHandle) -> None:
        items = int(job.parameters["items"])
        handle.start(total_items=items)
        for _ in range(items):
            if handle.stop_requested:
                return
            sum(range(2000))
            handle.item_done()
            time.sleep(0.001)
        handle.info("crunched", items=items)

    async with running_worker(jobs_server, {"PIM_IMPORT": crunch}) as (monitor, _):
        quick = await monitor.create_job("PIM_IMPORT", parameters={"items": 300})
        endless = await monitor.create_job("PIM_IMPORT", parameters={"items": 10_000_000})
        done = await eventually(lambda: status_is(stub, quick.id, jobs_pb2.JOB_STATUS_COMPLETED), what="completion")
        await eventually(lambda: status_is(stub, endless.id, jobs_pb2.JOB_STATUS_RUNNING), what="the long job")
        await stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=endless.id), timeout=10)
        await eventually(lambda: status_is(stub, endless.id, jobs_pb2.JOB_STATUS_CANCELLED), what="cancellation")
    assert done.progress.processed_items == 300 and done.progress.succeeded_items == 300
