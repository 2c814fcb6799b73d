"""The Job SDK when things break: a worker killed mid-job, the jobs service restarted, a long outage."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from b2x.monitoring.v1 import jobs_pb2

from services.jobs.sdk import JobMonitor
from tests.jobs.sdk.helpers import JobsServer, Stub, attempts, eventually, get_job, job_logs, status_is


async def test_a_worker_killed_mid_job_fails_it_as_worker_lost_and_it_is_retried(
    jobs_server: JobsServer, stub: Stub, repo_root: Path
) -> None:
    """SIGKILL of a worker process: within the heartbeat timeout the job is FAILED/WORKER_LOST and a retry is queued."""
    job = (await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="ERP_ARTICLE_SYNC", max_attempts=3), timeout=10)).job
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.jobs.sdk.worker_process",
        jobs_server.address,
        "doomed-worker",
        cwd=repo_root,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert worker.stdout is not None
        while not (line := (await asyncio.wait_for(worker.stdout.readline(), 30)).decode()).startswith("claimed"):
            assert line, "the worker exited before claiming the job"
        assert line.split()[1] == job.id
        running = await eventually(lambda: _reporting(stub, job.id), what="the worker's first progress report")
        assert running.worker_id == "doomed-worker"
    finally:
        worker.kill()
        await worker.wait()

    failed = await eventually(lambda: status_is(stub, job.id, jobs_pb2.JOB_STATUS_FAILED), what="the reaper")
    assert failed.error_category == "WORKER_LOST"
    assert failed.error_class == jobs_pb2.ERROR_CLASS_TRANSIENT
    assert "doomed-worker" in failed.error_message
    chain = await attempts(stub, job.id)
    assert [(a.attempt, a.status) for a in chain] == [(1, jobs_pb2.JOB_STATUS_FAILED), (2, jobs_pb2.JOB_STATUS_QUEUED)]


async def _reporting(stub: Stub, job_id: str) -> jobs_pb2.SchedulerJob | None:
    job = await get_job(stub, job_id)
    return job if job.status == jobs_pb2.JOB_STATUS_RUNNING and job.progress.sequence >= 1 else None


async def _delivered(stub: Stub, job_id: str) -> bool:
    job = await get_job(stub, job_id)
    return job.progress.sequence >= 1 and job.log_sequence >= 1


async def test_restarting_the_jobs_service_mid_run_loses_no_progress_and_no_log_line(
    jobs_server: JobsServer, stub: Stub
) -> None:
    """The service stops and comes back on its port while a job runs: every log sequence 1..N is stored once and the counts are exact."""
    items = 600
    async with JobMonitor(
        jobs_server.address, "steady-worker", flush_interval=0.05, min_report_interval=0.2
    ) as monitor:
        job = await monitor.create_job("ERP_CUSTOMER_SYNC", tenant_id="tenant-c", total_items=items)
        handle = monitor.attach(job.id)
        handle.start()
        for n in range(1, items + 1):
            handle.item_done(ok=n % 7 != 0)
            handle.info(f"customer {n} synced", customer=n)
            if n == items // 3:
                await eventually(lambda: _delivered(stub, job.id), what="reports before the restart")
                await jobs_server.stop()
            if n == 2 * items // 3:
                assert monitor.stats.send_failures > 0, "the monitor noticed the service was away"
                await jobs_server.start()
            await asyncio.sleep(0.002)
        handle.complete(f"{items} customers synced")
        assert await handle.wait_reported(timeout=30)
    assert handle.status == "COMPLETED"
    stored = await get_job(stub, job.id)
    assert stored.status == jobs_pb2.JOB_STATUS_COMPLETED
    progress = stored.progress
    assert (progress.processed_items, progress.succeeded_items, progress.failed_items) == (items, 515, 85)
    logs = await job_logs(stub, job.id)
    assert [line.sequence for line in logs] == list(range(1, items + 1))
    assert [line.message for line in logs] == [f"customer {n} synced" for n in range(1, items + 1)]


async def test_a_full_log_buffer_drops_the_oldest_lines_and_the_job_log_says_so(
    jobs_server: JobsServer, stub: Stub
) -> None:
    """With max_pending_logs=50 and the service away, 200 lines keep the newest 50; a warning in the job's log counts the 150 lost."""
    async with JobMonitor(jobs_server.address, "chatty-worker", flush_interval=0.05, max_pending_logs=50) as monitor:
        job = await monitor.create_job("PIM_IMPORT")
        handle = monitor.attach(job.id)
        handle.start()
        handle.info("before the outage")
        await eventually(lambda: _log_stored(stub, job.id), what="the first line")
        await jobs_server.stop()
        for n in range(200):
            handle.info(f"line {n}")
        assert monitor.dropped_log_lines == 150
        await jobs_server.start()
        handle.complete()
        assert await handle.wait_reported(timeout=30)
    messages = [line.message for line in await job_logs(stub, job.id)]
    assert messages[0] == "before the outage"
    assert messages[1:51] == [f"line {n}" for n in range(150, 200)]
    assert messages[51].startswith("150 log lines of this job were dropped")
    assert len(messages) == 52
    assert (await get_job(stub, job.id)).status == jobs_pb2.JOB_STATUS_COMPLETED


async def _log_stored(stub: Stub, job_id: str) -> bool:
    return (await get_job(stub, job_id)).log_sequence >= 1


async def test_a_job_started_while_the_service_is_down_starts_when_it_is_back(
    jobs_server: JobsServer, stub: Stub
) -> None:
    """start() during an outage is retried with the rest: the job becomes RUNNING, then COMPLETED, with its log."""
    async with JobMonitor(jobs_server.address, "patient-worker", flush_interval=0.05) as monitor:
        job = await monitor.create_job("ERP_ORDER_EXPORT", total_items=3)
        await jobs_server.stop()
        handle = monitor.attach(job.id)
        handle.start()
        handle.info("exporting while the service is away")
        for _ in range(3):
            handle.item_done()
        await asyncio.sleep(0.5)
        assert monitor.stats.send_failures > 0
        await jobs_server.start()
        await eventually(lambda: status_is(stub, job.id, jobs_pb2.JOB_STATUS_RUNNING), what="the start")
        handle.complete()
        assert await handle.wait_reported(timeout=30)
    done = await get_job(stub, job.id)
    assert (done.status, done.worker_id, done.progress.processed_items) == (
        jobs_pb2.JOB_STATUS_COMPLETED,
        "patient-worker",
        3,
    )
    assert [line.message for line in await job_logs(stub, job.id)] == ["exporting while the service is away"]
