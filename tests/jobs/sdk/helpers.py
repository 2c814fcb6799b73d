"""Helpers for the Job SDK tests: a restartable jobs service, polling with generous deadlines, reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

from b2x.monitoring.v1 import jobs_pb2, jobs_pb2_grpc

from services.common.grpc_server import GrpcServer
from services.common.runtime import Resources
from services.jobs.main import build_server
from services.jobs.settings import JobsSettings
from tests.support import ServiceHarness

T = TypeVar("T")
Stub: TypeAlias = "jobs_pb2_grpc.JobsServiceAsyncStub"  # exists for type checkers only
TIMEOUT = 10


class JobsServer:
    """The jobs service in this process, which a test may stop and start again on the same port."""

    def __init__(self, resources: Resources, settings: JobsSettings) -> None:
        self._resources = resources
        self._settings = settings
        self._server: GrpcServer | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> str:
        self._server = build_server(self._resources, self._settings)
        self.port = await self._server.start("127.0.0.1", self.port)
        return self.address

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)
            self._server = None


async def start_jobs_server(harness: ServiceHarness, **overrides: Any) -> AsyncIterator[JobsServer]:
    settings = harness.settings_for(JobsSettings, **overrides)
    server = JobsServer(await harness.resources("jobs", settings), settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 20, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after a generous deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def get_job(stub: jobs_pb2_grpc.JobsServiceAsyncStub, job_id: str) -> jobs_pb2.SchedulerJob:
    return (await stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=TIMEOUT, wait_for_ready=True)).job


async def job_logs(stub: jobs_pb2_grpc.JobsServiceAsyncStub, job_id: str) -> list[jobs_pb2.JobExecutionLog]:
    reply = await stub.ListJobLogs(
        jobs_pb2.ListJobLogsRequest(job_id=job_id, limit=10_000), timeout=TIMEOUT, wait_for_ready=True
    )
    return list(reply.logs)


async def attempts(stub: jobs_pb2_grpc.JobsServiceAsyncStub, job_id: str) -> list[jobs_pb2.SchedulerJob]:
    reply = await stub.GetJobDetails(jobs_pb2.GetJobDetailsRequest(job_id=job_id), timeout=TIMEOUT, wait_for_ready=True)
    return list(reply.attempts)


async def status_is(stub: jobs_pb2_grpc.JobsServiceAsyncStub, job_id: str, status: int) -> jobs_pb2.SchedulerJob | None:
    job = await get_job(stub, job_id)
    return job if job.status == status else None
