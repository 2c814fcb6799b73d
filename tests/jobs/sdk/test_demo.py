"""The demo worker of `b2c up --demo`, built on the Job SDK, against the real jobs service."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

from b2x.monitoring.v1 import common_pb2, jobs_pb2

from b2c.stack.demo.worker import run_job
from services.jobs.sdk import JobHandle, JobInfo, JobMonitor, WorkerRunner
from tests.jobs.sdk.helpers import JobsServer, Stub, attempts, eventually, get_job, job_logs, status_is
from tests.support import ServiceHarness


class Fixed(random.Random):
    """Dice that always show the same face, so a test picks the demo job's fate."""

    def __init__(self, face: float) -> None:
        super().__init__(7)
        self.face = face

    def random(self) -> float:
        return self.face


async def run_demo_job(server: JobsServer, job_type: str, items: int, face: float) -> JobInfo:
    async def handler(job: JobInfo, handle: JobHandle) -> None:
        await run_job(job, handle, Fixed(face))

    async with JobMonitor(server.address, "demo-test-worker", flush_interval=0.05) as monitor:
        runner = WorkerRunner(monitor, {job_type: handler}, poll_interval=0.1)
        running = asyncio.create_task(runner.run())
        job = await monitor.create_job(job_type, tenant_id="tenant-north", parameters={"items": items}, max_attempts=3)

        async def handled() -> bool:
            return runner.claimed > 0 and runner.running == 0

        await eventually(handled, what="the demo job to end")
        runner.stop()
        await running
    return job


async def test_a_demo_job_reports_its_steps_logs_and_every_item(jobs_server: JobsServer, stub: Stub) -> None:
    """A successful demo job shows connect → load → transform → write, its log lines with context, and exact counts."""
    job = await run_demo_job(jobs_server, "ERP_STOCK_SYNC", items=40, face=0.5)
    done = await eventually(lambda: status_is(stub, job.id, jobs_pb2.JOB_STATUS_COMPLETED), what="completion")
    assert [(s.name, s.status) for s in done.steps] == [
        (name, jobs_pb2.JOB_STEP_STATUS_COMPLETED) for name in ("connect", "load", "transform", "write")
    ]
    assert (done.progress.total_items, done.progress.processed_items, done.progress.succeeded_items) == (40, 40, 40)
    messages = [line.message for line in await job_logs(stub, job.id)]
    assert messages == ["connected to enventa Trade", "loaded 40 records", "changes committed"]


async def test_a_demo_erp_timeout_fails_transiently_and_the_service_retries_it(
    jobs_server: JobsServer, stub: Stub
) -> None:
    """An ERP timeout at connect fails the job TRANSIENT with the stack trace, and a retry attempt is queued."""
    job = await run_demo_job(jobs_server, "ERP_STOCK_SYNC", items=40, face=0.01)
    failed = await eventually(lambda: status_is(stub, job.id, jobs_pb2.JOB_STATUS_FAILED), what="the failure")
    assert (failed.error_class, failed.error_category) == (jobs_pb2.ERROR_CLASS_TRANSIENT, "ERP_CONNECTION_FAILED")
    assert "enventa Trade login: connection reset by peer" in failed.error_message
    assert "_remote_call" in failed.error_stack_trace and "RemoteTimeout" in failed.error_stack_trace
    assert [s.status for s in failed.steps] == [jobs_pb2.JOB_STEP_STATUS_FAILED]
    chain = await attempts(stub, job.id)
    assert [a.status for a in chain] == [jobs_pb2.JOB_STATUS_FAILED, jobs_pb2.JOB_STATUS_QUEUED]
    last = (await job_logs(stub, job.id))[-1]
    assert last.level == common_pb2.LOG_LEVEL_ERROR and "RemoteTimeout" in last.stack_trace


async def test_a_demo_validation_error_fails_permanently_mid_run(jobs_server: JobsServer, stub: Stub) -> None:
    """A validation error part-way through fails the job PERMANENT with its progress so far, and nothing is retried."""
    job = await run_demo_job(jobs_server, "ERP_STOCK_SYNC", items=40, face=0.055)
    failed = await eventually(lambda: status_is(stub, job.id, jobs_pb2.JOB_STATUS_FAILED), what="the failure")
    assert (failed.error_class, failed.error_category) == (jobs_pb2.ERROR_CLASS_PERMANENT, "ERP_DATA_VALIDATION")
    assert "warehouse W03 does not exist" in failed.error_message
    assert 0 < failed.progress.processed_items < 40
    assert failed.steps[-1].name == "transform" and failed.steps[-1].status == jobs_pb2.JOB_STEP_STATUS_FAILED
    assert len(await attempts(stub, job.id)) == 1


async def test_the_demo_process_feeds_and_runs_jobs_and_stops_cleanly_on_sigterm(
    harness: ServiceHarness, jobs_server: JobsServer, stub: Stub, repo_root: Path
) -> None:
    """`python -m b2c.stack.demo.worker` queues and runs jobs; on SIGTERM it exits 0 and leaves no job RUNNING."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("B2X_")}
    env.update(
        B2X_JOBS_ADDR=jobs_server.address,
        B2X_DATABASE_URL=harness.settings.database_url,
        B2X_REDIS_URL=harness.settings.redis_url,
        B2X_LOG_LEVEL="WARNING",
    )
    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "b2c.stack.demo.worker", cwd=repo_root, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        running = await eventually(lambda: _running_jobs(stub), timeout=30, what="demo jobs running")
        assert running[0].worker_id == f"demo-worker-{demo.pid}"
        await eventually(lambda: _has_steps(stub, running[0].id), what="the demo's steps")
    finally:
        demo.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(demo.wait(), 20)
    assert code == 0, (await demo.stderr.read()).decode()[-2000:] if demo.stderr else ""
    assert await _running_jobs(stub) == []
    listed = await stub.ListJobs(jobs_pb2.ListJobsRequest(), timeout=10)
    tenants = {job.tenant_id for job in listed.jobs}
    assert tenants <= {"tenant-north", "tenant-south", "tenant-west"} and tenants


async def _has_steps(stub: Stub, job_id: str) -> bool:
    return bool((await get_job(stub, job_id)).steps)


async def _running_jobs(stub: Stub) -> list[jobs_pb2.SchedulerJob]:
    request = jobs_pb2.ListJobsRequest(filter=jobs_pb2.JobFilter(statuses=[jobs_pb2.JOB_STATUS_RUNNING]))
    return list((await stub.ListJobs(request, timeout=10)).jobs)
