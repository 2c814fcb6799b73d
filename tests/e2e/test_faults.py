"""The fault matrix of docs/reliability.md against real PostgreSQL and Redis processes this module owns.

PostgreSQL and Redis are started here (not the session's shared servers) because the tests stop,
restart and freeze them (SIGSTOP). The services run in this process on port 0 with short heartbeat
timeouts and deadlines, so each fault plays out in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import pytest
from b2x.monitoring.v1 import jobs_pb2, jobs_pb2_grpc

from services.common.embedded import EmbeddedPostgres, EmbeddedRedis
from services.common.grpc_server import GrpcServer
from services.common.settings import CommonSettings
from services.jobs.main import build_server as build_jobs
from services.jobs.settings import JobsSettings
from tests.support import ServiceHarness

pytestmark = pytest.mark.e2e
TIMEOUT = 10
HEARTBEAT_TIMEOUT = 2.0
WORKER = "w-faults"


@dataclass
class Faults:
    """The module's own PostgreSQL and Redis, and the faults a test may inflict on them."""

    pg: EmbeddedPostgres
    redis: EmbeddedRedis

    def stop_postgres(self) -> None:
        self.pg.stop()

    def start_postgres(self) -> None:
        self.pg = EmbeddedPostgres.start(self.pg.data_dir, self.pg.port, durable=False)

    def _signal(self, process: Any, sig: signal.Signals) -> None:
        os.killpg(process.pid, sig)  # the server and all its children (PostgreSQL's backends)

    @contextlib.contextmanager
    def frozen(self, what: str) -> Iterator[None]:
        """Every process of PostgreSQL or Redis stopped with SIGSTOP while the block runs."""
        process = self.pg.process if what == "postgres" else self.redis.process
        self._signal(process, signal.SIGSTOP)
        try:
            yield
        finally:
            self._signal(process, signal.SIGCONT)

    def stop_redis(self) -> None:
        self.redis.stop()

    def start_redis(self) -> None:
        self.redis = EmbeddedRedis.start(self.redis.data_dir, self.redis.port, persist=False)


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    base = tmp_path_factory.mktemp("faults")
    state = Faults(EmbeddedPostgres.start(base / "pg" / "data", durable=False), EmbeddedRedis.start(base / "redis"))
    try:
        yield state
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.pg.process.pid, signal.SIGCONT)  # type: ignore[union-attr]
            os.killpg(state.redis.process.pid, signal.SIGCONT)  # type: ignore[union-attr]
        state.pg.stop()
        state.redis.stop()


@pytest.fixture
async def fault_harness(faults: Faults) -> AsyncIterator[ServiceHarness]:
    """A fresh database on the module's PostgreSQL and a namespace on its Redis."""
    name = f"b2x_faults_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(faults.pg.url())
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    settings = CommonSettings(
        database_url=faults.pg.url(name),
        redis_url=faults.redis.url(),
        namespace=f"t{uuid.uuid4().hex[:10]}",
        db_connect_timeout_seconds=1,
        db_command_timeout_seconds=1,
        redis_timeout_seconds=0.5,
        grpc_deadline_seconds=3,
    )
    async with ServiceHarness(settings) as harness:
        yield harness


def jobs_settings(harness: ServiceHarness, **overrides: Any) -> JobsSettings:
    return harness.settings_for(
        JobsSettings,
        jobs_heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT,
        jobs_reaper_interval_seconds=0.2,
        jobs_retry_base_seconds=0,
        **overrides,
    )


async def jobs_stub(harness: ServiceHarness) -> jobs_pb2_grpc.JobsServiceStub:
    address = await harness.serve("jobs", build_jobs, jobs_settings(harness))
    return jobs_pb2_grpc.JobsServiceStub(harness.channel(address))


async def running_job(stub: jobs_pb2_grpc.JobsServiceStub, **kw: Any) -> jobs_pb2.SchedulerJob:
    request = jobs_pb2.CreateJobRequest(job_type="ERP_ARTICLE_SYNC", total_items=10, max_attempts=3, **kw)
    job = (await stub.CreateJob(request, timeout=TIMEOUT)).job
    start = jobs_pb2.StartJobRequest(job_id=job.id, worker_id=WORKER)
    return (await stub.StartJob(start, timeout=TIMEOUT)).job


async def get(stub: jobs_pb2_grpc.JobsServiceStub, job_id: str) -> jobs_pb2.SchedulerJob:
    return (await stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=TIMEOUT)).job


async def attempts(stub: jobs_pb2_grpc.JobsServiceStub, job_id: str) -> list[jobs_pb2.SchedulerJob]:
    details = await stub.GetJobDetails(jobs_pb2.GetJobDetailsRequest(job_id=job_id), timeout=TIMEOUT)
    return list(details.attempts)


async def complete(stub: jobs_pb2_grpc.JobsServiceStub, job_id: str) -> jobs_pb2.JobReportResult:
    report = jobs_pb2.JobReport(job_id=job_id, completed=jobs_pb2.Completion(message="all synced"))
    answer = await stub.ReportBatch(jobs_pb2.ReportBatchRequest(worker_id=WORKER, reports=[report]), timeout=TIMEOUT)
    return answer.results[0]


@contextlib.asynccontextmanager
async def heartbeating(stub_of: Any, job_id: str, every: float = 1.0) -> AsyncIterator[None]:
    """A live worker: heartbeats every `every` seconds through `stub_of()`, shrugging off failures."""

    async def beat() -> None:
        while True:
            with contextlib.suppress(grpc.aio.AioRpcError):
                request = jobs_pb2.ReportBatchRequest(worker_id=WORKER, heartbeat_job_ids=[job_id])
                await stub_of().ReportBatch(request, timeout=2)
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- 1. no reaping on evidence the service could not have received ---------------------------------------


async def test_a_postgres_outage_longer_than_the_heartbeat_timeout_reaps_no_live_job(
    faults: Faults, fault_harness: ServiceHarness
) -> None:
    """PostgreSQL away for longer than the heartbeat timeout while the worker keeps sending: once it is back the
    job stays RUNNING (the grace lets the heartbeats land), and the worker's completion is its one outcome."""
    stub = await jobs_stub(fault_harness)
    job = await running_job(stub)
    async with heartbeating(lambda: stub, job.id):
        faults.stop_postgres()
        await asyncio.sleep(HEARTBEAT_TIMEOUT + 1.5)
        faults.start_postgres()
        await asyncio.sleep(HEARTBEAT_TIMEOUT * 1.5)
        assert (await get(stub, job.id)).status == jobs_pb2.JOB_STATUS_RUNNING
    result = await complete(stub, job.id)
    assert result.accepted and result.status == jobs_pb2.JOB_STATUS_COMPLETED
    assert [a.status for a in await attempts(stub, job.id)] == [jobs_pb2.JOB_STATUS_COMPLETED]


async def test_a_jobs_service_restarted_after_a_long_stop_gives_workers_a_grace_period(
    fault_harness: ServiceHarness,
) -> None:
    """The jobs service down for longer than the heartbeat timeout: the new one reaps nothing before the worker
    could have reached it, so a worker that resumes heartbeats keeps its job."""
    settings = jobs_settings(fault_harness)
    first: GrpcServer = build_jobs(await fault_harness.resources("jobs", settings), settings)
    port = await first.start("127.0.0.1", 0)
    stub = jobs_pb2_grpc.JobsServiceStub(fault_harness.channel(f"127.0.0.1:{port}"))
    job = await running_job(stub)
    await first.stop(0)
    await asyncio.sleep(HEARTBEAT_TIMEOUT + 1)
    second: GrpcServer = build_jobs(await fault_harness.resources("jobs", settings), settings)
    await second.start("127.0.0.1", port)
    try:
        async with heartbeating(lambda: stub, job.id, every=0.5):
            await asyncio.sleep(HEARTBEAT_TIMEOUT * 1.5)
            assert (await get(stub, job.id)).status == jobs_pb2.JOB_STATUS_RUNNING
        result = await complete(stub, job.id)
        assert result.accepted and result.status == jobs_pb2.JOB_STATUS_COMPLETED
    finally:
        await second.stop(0)


async def test_the_owners_outcome_after_a_reap_is_accepted_and_its_queued_retry_cancelled(
    fault_harness: ServiceHarness,
) -> None:
    """A worker silent past the timeout is reaped (FAILED/WORKER_LOST, retry queued); when its completion arrives
    after all, it is accepted: the attempt is COMPLETED and the queued retry CANCELLED, so the work runs once."""
    stub = await jobs_stub(fault_harness)
    job = await running_job(stub)
    for _ in range(100):
        if (await get(stub, job.id)).status != jobs_pb2.JOB_STATUS_RUNNING:
            break
        await asyncio.sleep(0.1)
    reaped = await get(stub, job.id)
    assert reaped.status == jobs_pb2.JOB_STATUS_FAILED and reaped.error_category == "WORKER_LOST"
    assert reaped.retried_by_job_id

    result = await complete(stub, job.id)
    assert result.accepted, result.error
    assert result.status == jobs_pb2.JOB_STATUS_COMPLETED
    chain = await attempts(stub, job.id)
    assert [(a.attempt, a.status) for a in chain] == [
        (1, jobs_pb2.JOB_STATUS_COMPLETED),
        (2, jobs_pb2.JOB_STATUS_CANCELLED),
    ]
    assert chain[0].error_category == "" and chain[0].error_message == ""
    other = jobs_pb2.ReportBatchRequest(
        worker_id="someone-else",
        reports=[jobs_pb2.JobReport(job_id=chain[1].id, completed=jobs_pb2.Completion())],
    )
    assert not (await stub.ReportBatch(other, timeout=TIMEOUT)).results[0].accepted
