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
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import psutil
import pytest
import websockets
from b2x.monitoring.v1 import common_pb2, jobs_pb2, jobs_pb2_grpc

from gateway.auth import KeyStore, Role
from gateway.settings import GatewaySettings
from services.common.channels import open_channel
from services.common.embedded import EmbeddedPostgres, EmbeddedRedis
from services.common.grpc_server import GrpcServer
from services.common.settings import CommonSettings
from services.health.main import build_server as build_health
from services.health.settings import HealthSettings
from services.jobs.main import build_server as build_jobs
from services.jobs.settings import JobsSettings
from services.probes.main import build_server as build_probes
from services.probes.settings import ProbesSettings
from tests.support import GraphQLWebSocket, ServiceHarness, start_gateway

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
        # The server and every child: PostgreSQL's backends run in sessions of their own, so not killpg.
        parent = psutil.Process(process.pid)
        for each in [parent, *parent.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                each.send_signal(sig)

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
        for process in (state.pg.process, state.redis.process):
            with contextlib.suppress(psutil.NoSuchProcess):
                state._signal(process, signal.SIGCONT)
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
    conn = await asyncpg.connect(fault_harness.settings.database_url)
    try:
        rollup = await conn.fetchrow("SELECT sum(completed) AS c, sum(failed) AS f, sum(cancelled) AS x "
                                     "FROM jobs.daily_job_stats")  # fmt: skip
    finally:
        await conn.close()
    assert rollup is not None and (rollup["c"], rollup["f"], rollup["x"]) == (1, 0, 1), "counted once, as completed"
    other = jobs_pb2.ReportBatchRequest(
        worker_id="someone-else",
        reports=[jobs_pb2.JobReport(job_id=chain[1].id, completed=jobs_pb2.Completion())],
    )
    assert not (await stub.ReportBatch(other, timeout=TIMEOUT)).results[0].accepted


# -- 3. PostgreSQL down or hung: SERVICE_UNAVAILABLE within the deadline, on HTTP, websocket and in the CLI --------

B2C = str(Path(sys.executable).parent / "b2c")
JOBS_QUERY = "{ jobs(first: 5) { totalCount } }"


@dataclass
class Gateway:
    url: str
    key: str
    jobs_addr: str = ""


async def gateway_over_jobs(harness: ServiceHarness, **overrides: Any) -> Gateway:
    jobs_addr = await harness.serve("jobs", build_jobs, jobs_settings(harness))
    url = await harness.gateway(jobs_addr=jobs_addr, health_addr="127.0.0.1:1", probes_addr="127.0.0.1:1", **overrides)
    pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=1)
    key, _ = await KeyStore(pool).create("faults", Role.OPERATOR)
    await pool.close()
    return Gateway(url, key, jobs_addr)


async def post(gateway: Gateway, query: str) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{gateway.url}/graphql", json={"query": query}, headers={"Authorization": f"Bearer {gateway.key}"}
        )
    return response.status_code, response.json(), time.monotonic() - started


async def run_b2c(gateway: Gateway, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
    env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": gateway.url, "B2C_API_KEY": gateway.key})
    proc = await asyncio.create_subprocess_exec(
        B2C, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
async def test_graphql_answers_service_unavailable_while_postgres_is_stopped_or_frozen(
    faults: Faults, fault_harness: ServiceHarness, tmp_path: Path, fault: str
) -> None:
    """PostgreSQL stopped (connections refused) or frozen with SIGSTOP (nothing answers): a request whose key must
    be verified gets HTTP 503 with SERVICE_UNAVAILABLE well within the deadline, a websocket handshake closes with
    1013, and `b2c jobs list` says the service is unavailable and exits 3; all is well again once it is back."""
    gateway = await gateway_over_jobs(fault_harness, api_key_cache_seconds=0)
    assert (await post(gateway, JOBS_QUERY))[0] == 200
    outage = contextlib.ExitStack()
    if fault == "stopped":
        faults.stop_postgres()
        outage.callback(faults.start_postgres)
    else:
        outage.enter_context(faults.frozen("postgres"))
    with outage:
        status, body, took = await post(gateway, JOBS_QUERY)
        assert status == 503, body
        assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "unavailable" in body["errors"][0]["message"]
        assert took < fault_harness.settings.db_command_timeout_seconds + 1.5

        async with GraphQLWebSocket(gateway.url, {"Authorization": f"Bearer {gateway.key}"}) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.receive(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013

        code, output = await run_b2c(gateway, tmp_path, "jobs", "list")
        assert code == 3, output
        assert "unavailable" in output and "api-url" not in output
    for _ in range(50):
        if (await post(gateway, JOBS_QUERY))[0] == 200:
            break
        await asyncio.sleep(0.2)
    status, body, _ = await post(gateway, JOBS_QUERY)
    assert status == 200 and body["data"]["jobs"]["totalCount"] == 0


async def test_a_frozen_postgres_behind_a_service_is_unavailable_within_its_timeout(
    faults: Faults, fault_harness: ServiceHarness
) -> None:
    """PostgreSQL frozen: the jobs service answers UNAVAILABLE once its statement timeout passes, rather than
    holding the call until the caller gives up; through the gateway (key cached) that is SERVICE_UNAVAILABLE."""
    jobs_addr = await fault_harness.serve("jobs", build_jobs, jobs_settings(fault_harness))
    stub = jobs_pb2_grpc.JobsServiceStub(fault_harness.channel(jobs_addr))
    url = await fault_harness.gateway(jobs_addr=jobs_addr, health_addr="127.0.0.1:1", probes_addr="127.0.0.1:1")
    pool = await asyncpg.create_pool(fault_harness.settings.database_url, min_size=1, max_size=1)
    key, _ = await KeyStore(pool).create("faults", Role.OPERATOR)
    await pool.close()
    gateway = Gateway(url, key)
    assert (await post(gateway, JOBS_QUERY))[0] == 200
    # A timed-out statement is cancelled over a new connection, which has the connect timeout of its own.
    settings = fault_harness.settings
    limit = settings.db_command_timeout_seconds + settings.db_connect_timeout_seconds + 1
    with faults.frozen("postgres"):
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListJobs(jobs_pb2.ListJobsRequest(), timeout=8)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < limit
        _, body, took = await post(gateway, JOBS_QUERY)
    assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE", body
    assert took < limit


# -- 2. a frozen Redis stalls neither the write path nor GraphQL ------------------------------------------------


def progress_report(job_id: str, processed: int, sequence: int) -> jobs_pb2.JobReport:
    entry = jobs_pb2.LogEntry(sequence=sequence, level=common_pb2.LOG_LEVEL_INFO, message=f"{processed} items done")
    entry.timestamp.GetCurrentTime()
    return jobs_pb2.JobReport(
        job_id=job_id,
        progress=jobs_pb2.ProgressUpdate(total_items=10, processed_items=processed, sequence=sequence),
        logs=[entry],
    )


async def test_a_frozen_redis_stalls_neither_batch_reports_nor_heartbeats(
    faults: Faults, fault_harness: ServiceHarness
) -> None:
    """Redis frozen (SIGSTOP) for longer than the heartbeat timeout: each batch report still answers within a
    second or two, progress and log lines are stored, the heartbeats keep the job RUNNING; it completes once."""
    stub = await jobs_stub(fault_harness)
    job = await running_job(stub)
    with faults.frozen("redis"):
        for n in range(1, 6):
            started = time.monotonic()
            request = jobs_pb2.ReportBatchRequest(worker_id=WORKER, reports=[progress_report(job.id, n, n)])
            answer = await stub.ReportBatch(request, timeout=5)
            assert answer.results[0].accepted, answer.results[0].error
            assert time.monotonic() - started < 2
            await asyncio.sleep(HEARTBEAT_TIMEOUT / 2)
        stored = await get(stub, job.id)
        assert stored.status == jobs_pb2.JOB_STATUS_RUNNING
        assert stored.progress.processed_items == 5 and stored.log_sequence == 5
    result = await complete(stub, job.id)
    assert result.accepted and result.status == jobs_pb2.JOB_STATUS_COMPLETED


async def test_a_frozen_redis_does_not_hold_graphql_requests(faults: Faults, fault_harness: ServiceHarness) -> None:
    """The rate limiter fails open on a Redis that hangs, as it does on one that refuses: requests keep being
    answered at once (a slow machine aside), never held until Redis returns."""
    gateway = await gateway_over_jobs(fault_harness)
    assert (await post(gateway, JOBS_QUERY))[0] == 200
    with faults.frozen("redis"):
        for _ in range(3):
            status, body, took = await post(gateway, JOBS_QUERY)
            assert status == 200 and body["data"]["jobs"]["totalCount"] == 0, body
            assert took < 3, f"answered after {took:.2f} s"


# -- 4. jobStatusChanged resumes where a client left off ---------------------------------------------------------

STATUS_SUBSCRIPTION = """subscription($since: DateTime) {
  jobStatusChanged(since: $since) { jobId change status job { updatedAt } }
}"""


async def test_a_client_resubscribing_after_a_gateway_restart_catches_up_on_missed_transitions(
    fault_harness: ServiceHarness,
) -> None:
    """The gateway dies under an open jobStatusChanged subscription; meanwhile the job completes. The client
    subscribes to a new gateway with `since` = the updatedAt it last saw and first receives the job as COMPLETED
    (change 'resync'), instead of showing it RUNNING forever."""
    settings = jobs_settings(fault_harness)
    jobs_addr = await fault_harness.serve("jobs", build_jobs, settings)
    stub = jobs_pb2_grpc.JobsServiceStub(fault_harness.channel(jobs_addr))
    addresses = {"jobs_addr": jobs_addr, "health_addr": "127.0.0.1:1", "probes_addr": "127.0.0.1:1"}
    first = contextlib.AsyncExitStack()
    url = await start_gateway(first, fault_harness.settings_for(GatewaySettings, **addresses))
    pool = await asyncpg.create_pool(fault_harness.settings.database_url, min_size=1, max_size=1)
    key, _ = await KeyStore(pool).create("faults", Role.OPERATOR)
    await pool.close()
    auth = {"Authorization": f"Bearer {key}"}
    async with GraphQLWebSocket(url, auth) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        op = await ws.subscribe(STATUS_SUBSCRIPTION)
        await asyncio.sleep(0.3)
        job = await running_job(stub)
        seen = await ws.receive()
        while seen["payload"]["data"]["jobStatusChanged"]["status"] != "RUNNING":
            seen = await ws.receive()
        assert seen["id"] == op
        last_updated = seen["payload"]["data"]["jobStatusChanged"]["job"]["updatedAt"]
        await first.aclose()  # the gateway goes away under the subscription

    assert (await complete(stub, job.id)).status == jobs_pb2.JOB_STATUS_COMPLETED
    second = await fault_harness.gateway(**addresses)
    async with GraphQLWebSocket(second, auth) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        await ws.subscribe(STATUS_SUBSCRIPTION, {"since": last_updated})
        caught_up = (await ws.receive(timeout=5))["payload"]["data"]["jobStatusChanged"]
    assert caught_up == {
        "jobId": job.id,
        "change": "resync",
        "status": "COMPLETED",
        "job": {"updatedAt": caught_up["job"]["updatedAt"]},
    }
    assert caught_up["job"]["updatedAt"] > last_updated


# -- 5. one rule for late writes; the reap is logged and ends log followers ------------------------------------------

LOG_SUBSCRIPTION = """subscription($id: ID!) {
  jobLogAppended(jobId: $id, afterSequence: 0) { lines { sequence level message } }
}"""


async def test_a_reap_is_logged_ends_log_followers_and_late_lines_are_refused_like_progress(
    fault_harness: ServiceHarness,
) -> None:
    """A follower of a job's log sees the worker's line, then the reaper's line naming the lost worker, then the
    subscription completes. Lines and progress the worker sends after the reap are both refused and not stored."""
    gateway = await gateway_over_jobs(fault_harness)
    stub = jobs_pb2_grpc.JobsServiceStub(fault_harness.channel(gateway.jobs_addr))
    job = await running_job(stub)
    first = jobs_pb2.ReportBatchRequest(worker_id=WORKER, reports=[progress_report(job.id, 1, 1)])
    assert (await stub.ReportBatch(first, timeout=TIMEOUT)).results[0].accepted
    async with GraphQLWebSocket(gateway.url, {"Authorization": f"Bearer {gateway.key}"}) as ws:
        assert (await ws.receive())["type"] == "connection_ack"
        op = await ws.subscribe(LOG_SUBSCRIPTION, {"id": job.id})
        lines: list[dict[str, Any]] = []
        while True:
            message = await ws.receive(timeout=HEARTBEAT_TIMEOUT * 4)
            assert message["id"] == op
            if message["type"] == "complete":
                break
            lines += message["payload"]["data"]["jobLogAppended"]["lines"]
    assert [line["sequence"] for line in lines] == [1, 2]
    assert lines[1]["level"] == "ERROR" and WORKER in lines[1]["message"] and "lost" in lines[1]["message"]

    late = jobs_pb2.ReportBatchRequest(worker_id=WORKER, reports=[progress_report(job.id, 2, 3)])
    result = (await stub.ReportBatch(late, timeout=TIMEOUT)).results[0]
    assert not result.accepted and "not running" in result.error
    stored = await stub.ListJobLogs(jobs_pb2.ListJobLogsRequest(job_id=job.id), timeout=TIMEOUT)
    assert [line.sequence for line in stored.logs] == [1, 2]
    assert (await get(stub, job.id)).progress.processed_items == 1


# -- 7. keepalive: the servers accept the pings the clients send ----------------------------------------------------


async def test_clients_pinging_idle_channels_get_no_goaway_from_the_services(fault_harness: ServiceHarness) -> None:
    """A channel opened like the gateway's and the probes' (open_channel), pinging every second while idle, stays
    READY for several seconds against the jobs service configured alike: no GOAWAY too_many_pings, no reconnect,
    and the next call succeeds on the same connection."""
    settings = jobs_settings(fault_harness, grpc_keepalive_seconds=1)
    address = await fault_harness.serve("jobs", build_jobs, settings)
    channel = open_channel(address, keepalive_seconds=1)
    try:
        stub = jobs_pb2_grpc.JobsServiceStub(channel)
        await stub.ListJobs(jobs_pb2.ListJobsRequest(), timeout=TIMEOUT)
        states: list[grpc.ChannelConnectivity] = []

        async def watch() -> None:
            state = channel.get_state()
            while True:
                await channel.wait_for_state_change(state)
                state = channel.get_state()
                states.append(state)

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(6)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        assert states == [], f"the connection was dropped: {states}"
        await stub.ListJobs(jobs_pb2.ListJobsRequest(), timeout=TIMEOUT)
    finally:
        await channel.close()


# -- 6. readiness follows recovery promptly and steadily; failed maintenance rounds are one warning ------------------


async def ready_status(url: str) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(f"{url}/health/ready")).status_code


async def full_stack(harness: ServiceHarness) -> str:
    """Jobs, health and probes services and a gateway in front of them; returns the gateway's URL."""
    jobs_addr = await harness.serve("jobs", build_jobs, jobs_settings(harness))
    health_addr = await harness.serve("health", build_health, harness.settings_for(HealthSettings))
    probes_addr = await harness.serve(
        "probes", build_probes, harness.settings_for(ProbesSettings, health_addr=health_addr)
    )
    return await harness.gateway(jobs_addr=jobs_addr, health_addr=health_addr, probes_addr=probes_addr)


async def test_readiness_follows_postgres_back_within_a_second_and_redis_without_a_flap(
    faults: Faults, fault_harness: ServiceHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    """/health/ready turns 503 while PostgreSQL is away and 200 again within a second of its return; after Redis
    comes back it stays 200 (no flap). The jobs maintenance rounds that failed meanwhile logged one warning line
    each, no traceback."""
    url = await full_stack(fault_harness)
    assert await ready_status(url) == 200
    faults.stop_postgres()
    try:
        await asyncio.sleep(HEARTBEAT_TIMEOUT)
        assert await ready_status(url) == 503
    finally:
        faults.start_postgres()
    back = time.monotonic()
    while await ready_status(url) != 200:
        assert time.monotonic() - back < 5, "readiness did not follow PostgreSQL back"
        await asyncio.sleep(0.05)
    assert time.monotonic() - back <= 1.0, f"ready {time.monotonic() - back:.2f} s after PostgreSQL returned"
    output = capsys.readouterr().out
    failures = [line for line in output.splitlines() if "maintenance round failed" in line]
    assert failures and all("warning" in line for line in failures)
    assert "Traceback" not in output

    faults.stop_redis()
    try:
        await asyncio.sleep(1)
        assert await ready_status(url) == 503
    finally:
        faults.start_redis()
    for _ in range(50):
        if await ready_status(url) == 200:
            break
        await asyncio.sleep(0.1)
    statuses = []
    for _ in range(20):
        statuses.append(await ready_status(url))
        await asyncio.sleep(0.1)
    assert statuses == [200] * 20
