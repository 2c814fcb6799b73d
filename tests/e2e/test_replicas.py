"""The services as replicas: two jobs services, two probes services and two gateways (one health service) as
separate processes on one PostgreSQL and one Redis, under load; one of each is SIGKILLed mid-load.

Workers (the Job SDK) dial both jobs services (`ipv4:a,b`: gRPC fails over to the other), the gateways dial
both jobs and both probes services the same way, and GraphQL subscribers follow jobs on both gateways,
resubscribing to the survivor with `since` when theirs dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
import websockets

from gateway.auth import KeyStore, Role
from services.common.embedded import free_port
from services.jobs.sdk import JobMonitor
from services.jobs.sdk.handle import JobHandle
from services.jobs.sdk.model import JobInfo
from services.jobs.sdk.runner import WorkerRunner
from tests.probes.servers import HttpTestServer, Route
from tests.support import GraphQLWebSocket

pytestmark = pytest.mark.e2e
JOBS = 40
ITEMS = 20
INTERVAL = 5  # the shortest check interval the registry accepts
CREATE = """mutation($type: String!, $key: String!) {
  createJob(input: {jobType: $type, totalItems: 20, idempotencyKey: $key}) { id }
}"""
FOLLOW = """subscription($since: DateTime) {
  jobStatusChanged(since: $since, changes: ["created", "started", "completed", "failed", "cancelled", "resync"]) {
    jobId status job { updatedAt }
  }
}"""


@dataclass
class Replicas:
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    async def spawn(self, name: str, module: str, **env: str) -> None:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115, ASYNC230 - handed to the child
        self.processes[name] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, env={**self.env, **env}, stdout=log, stderr=log
        )
        log.close()

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)

    async def stop_all(self) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 15)
            if process.returncode is None:
                process.kill()
                await process.wait()


async def wait_serving(url: str, what: str, replicas: Replicas) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    logs = {p.name: p.read_text()[-2000:] for p in replicas.log_dir.glob("*.log")}
    raise AssertionError(f"{what} did not become ready: {json.dumps(logs, indent=1)}")


async def create_job(client: httpx.AsyncClient, url: str, key: str, idempotency_key: str) -> str:
    """createJob through `url`; retried (idempotently) while the gateway's channel moves to a live jobs service."""
    for _ in range(50):
        answer = await client.post(
            f"{url}/graphql",
            json={"query": CREATE, "variables": {"type": "ERP_ARTICLE_SYNC", "key": idempotency_key}},
            headers={"Authorization": f"Bearer {key}"},
        )
        body = answer.json()
        if body.get("data") and body["data"].get("createJob"):
            return str(body["data"]["createJob"]["id"])
        assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE", body
        await asyncio.sleep(0.2)
    raise AssertionError("createJob kept failing")


@dataclass
class Subscriber:
    """A GraphQL client that follows every job's status, moving to the other gateway when its own dies."""

    urls: list[str]
    key: str
    statuses: dict[str, str] = field(default_factory=dict)
    last_updated: str | None = None
    reconnects: int = 0

    async def run(self) -> None:
        index = 0
        while True:
            url = self.urls[index % len(self.urls)]
            try:
                async with GraphQLWebSocket(url, {"Authorization": f"Bearer {self.key}"}) as ws:
                    assert (await ws.receive())["type"] == "connection_ack"
                    await ws.subscribe(FOLLOW, {"since": self.last_updated})
                    while True:
                        message = await ws.receive(timeout=3600)
                        event = message["payload"]["data"]["jobStatusChanged"]
                        self.statuses[event["jobId"]] = event["status"]
                        updated = event["job"]["updatedAt"]
                        self.last_updated = max(self.last_updated or updated, updated)
            except (OSError, websockets.ConnectionClosed, TimeoutError, KeyError):
                self.reconnects += 1
                index += 1
                await asyncio.sleep(0.2)


@pytest.fixture
async def replicas(pg_admin_url: str, redis_server_url: str, tmp_path: Path) -> AsyncIterator[Replicas]:
    name = f"b2x_replicas_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    database_url = pg_admin_url.rpartition("/")[0] + f"/{name}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
    env.update({
        "B2X_DATABASE_URL": database_url, "B2X_REDIS_URL": redis_server_url,
        "B2X_NAMESPACE": f"t{uuid.uuid4().hex[:10]}", "B2X_LOG_LEVEL": "WARNING", "B2X_LOG_FORMAT": "console",
        "B2X_JOBS_HOST": "127.0.0.1", "B2X_HEALTH_HOST": "127.0.0.1", "B2X_PROBES_HOST": "127.0.0.1",
        "B2X_GATEWAY_HOST": "127.0.0.1", "B2X_JOBS_METRICS_PORT": "0", "B2X_HEALTH_METRICS_PORT": "0",
        "B2X_PROBES_METRICS_PORT": "0", "B2X_JOBS_HEARTBEAT_TIMEOUT_SECONDS": "6",
        "B2X_JOBS_REAPER_INTERVAL_SECONDS": "0.5", "B2X_PROBES_LEASE_SECONDS": "2",
        "B2X_PROBES_LEASE_TICK_SECONDS": "0.5", "B2X_PROBES_FLUSH_SECONDS": "0.2",
        "B2X_PROBES_TARGETS_REFRESH_SECONDS": "1", "B2X_GRPC_DEADLINE_SECONDS": "5",
    })  # fmt: skip
    (tmp_path / "logs").mkdir()
    running = Replicas(env, tmp_path / "logs")
    try:
        yield running
    finally:
        await running.stop_all()
        admin = await asyncpg.connect(pg_admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def start_replicas(replicas: Replicas, config: Path) -> tuple[str, list[str]]:
    """Health, two jobs, two probes and two gateway processes; returns the workers' jobs address and the gateways'
    URLs once both gateways are ready."""
    ports = {name: free_port() for name in ("jobs-1", "jobs-2", "probes-1", "probes-2", "health", "gw-1", "gw-2")}
    jobs_addr = f"ipv4:127.0.0.1:{ports['jobs-1']},127.0.0.1:{ports['jobs-2']}"
    probes_addr = f"ipv4:127.0.0.1:{ports['probes-1']},127.0.0.1:{ports['probes-2']}"
    health_addr = f"127.0.0.1:{ports['health']}"
    await replicas.spawn("health", "services.health", B2X_HEALTH_PORT=str(ports["health"]), B2X_CONFIG_FILE=str(config))
    for n in ("1", "2"):
        await replicas.spawn(f"jobs-{n}", "services.jobs", B2X_JOBS_PORT=str(ports[f"jobs-{n}"]))
        await replicas.spawn(
            f"probes-{n}", "services.probes", B2X_PROBES_PORT=str(ports[f"probes-{n}"]), B2X_HEALTH_ADDR=health_addr
        )
    for n in ("1", "2"):
        await replicas.spawn(
            f"gw-{n}", "gateway", B2X_GATEWAY_PORT=str(ports[f"gw-{n}"]),
            B2X_JOBS_ADDR=jobs_addr, B2X_PROBES_ADDR=probes_addr, B2X_HEALTH_ADDR=health_addr,
        )  # fmt: skip
    urls = [f"http://127.0.0.1:{ports[g]}" for g in ("gw-1", "gw-2")]
    for url in urls:
        await wait_serving(f"{url}/health/ready", url, replicas)
    return jobs_addr, urls


async def load_and_kill(replicas: Replicas, urls: list[str], key: str) -> tuple[list[str], float]:
    """Create the jobs through both gateways, 0.2 s apart; half-way, SIGKILL jobs-1, probes-1 and gw-1.
    Returns the jobs' ids and when the kill happened (loop time)."""
    created: list[str] = []
    killed_at = 0.0
    async with httpx.AsyncClient(timeout=10) as client:
        for n in range(JOBS):
            if n == JOBS // 2:
                for victim in ("jobs-1", "probes-1", "gw-1"):
                    replicas.kill(victim)
                killed_at = asyncio.get_running_loop().time()
            url = urls[n % 2] if n < JOBS // 2 else urls[1]
            created.append(await create_job(client, url, key, f"load-{n}"))
            await asyncio.sleep(0.2)
    return created, killed_at


async def until(condition: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.2) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():  # noqa: ASYNC110 - polling the database and other processes
            await asyncio.sleep(every)


async def test_replicas_survive_losing_one_of_each_mid_load(replicas: Replicas, tmp_path: Path) -> None:
    """40 jobs created through both gateways and run by two workers dialling both jobs services; mid-load one
    jobs service, one probes service and one gateway are SIGKILLed. Every job completes exactly once (one
    attempt, its handler run once), every target is checked in every interval slot (no gap, no repeat), and
    every subscriber, moved to the surviving gateway, shows every job COMPLETED."""
    async with HttpTestServer({"/a": Route(200), "/b": Route(200), "/c": Route(200)}) as web:
        config = tmp_path / "services.yaml"
        config.write_text(
            "services:\n"
            + "".join(
                f"  - {{slug: {s}, type: ERP, endpoint: '{web.url('/' + s)}', interval_seconds: {INTERVAL}}}\n"
                for s in ("a", "b", "c")
            )
        )
        jobs_addr, urls = await start_replicas(replicas, config)
        pool = await asyncpg.create_pool(replicas.env["B2X_DATABASE_URL"], min_size=1, max_size=2)
        key, _ = await KeyStore(pool).create("replicas", Role.OPERATOR)
        subscribers = [Subscriber([urls[i % 2], urls[(i + 1) % 2]], key) for i in range(4)]
        following = [asyncio.create_task(s.run()) for s in subscribers]
        runs: Counter[str] = Counter()

        async def work(job: JobInfo, handle: JobHandle) -> None:
            runs[job.id] += 1
            handle.start(ITEMS)
            for _ in range(ITEMS):
                await asyncio.sleep(0.05)
                handle.item_done()

        async def all_finished() -> bool:
            rows = await pool.fetch("SELECT status FROM jobs.jobs")
            return len(rows) >= JOBS and all(r["status"] in ("COMPLETED", "FAILED", "CANCELLED") for r in rows)

        async with contextlib.AsyncExitStack() as workers:
            runners = []
            for worker in ("worker-a", "worker-b"):
                monitor = await workers.enter_async_context(JobMonitor(jobs_addr, worker, flush_interval=0.1))
                runner = WorkerRunner(monitor, {"ERP_ARTICLE_SYNC": work}, concurrency=5, poll_interval=0.2)
                runners.append((runner, asyncio.create_task(runner.run())))
            await asyncio.sleep(1)  # the subscribers are in place
            created, killed_at = await load_and_kill(replicas, urls, key)
            await until(all_finished, 90, every=0.5)
            for runner, task in runners:
                runner.stop()
                await task

        rows = await pool.fetch("SELECT id::text AS id, status FROM jobs.jobs")
        assert sorted(str(r["id"]) for r in rows) == sorted(created), "no job ran as a second attempt"
        assert Counter(str(r["status"]) for r in rows) == Counter({"COMPLETED": JOBS}), [dict(r) for r in rows]
        assert set(runs) == set(created) and set(runs.values()) == {1}, "each handler ran exactly once"

        async def caught_up() -> bool:
            return all(s.statuses.get(j) == "COMPLETED" for s in subscribers for j in created)

        await until(caught_up, 30)
        for task in following:
            task.cancel()
        assert all(s.reconnects >= 1 for s in subscribers[::2]), "the first gateway's subscribers moved"

        # Two whole intervals after the kill, so the targets the dead agent held were taken over and checked.
        await asyncio.sleep(max(0.0, killed_at + 2 * INTERVAL + 2 - asyncio.get_running_loop().time()))
        slots = await pool.fetch(
            "SELECT service_id, array_agg(slot ORDER BY slot) AS slots FROM probes.probe_results "
            "WHERE NOT skipped GROUP BY service_id"
        )
        await pool.close()
    assert len(slots) == 3
    for row in slots:
        seen = [int(slot) for slot in row["slots"]]
        assert seen == list(range(seen[0], seen[0] + len(seen))), f"{row['service_id']}: {seen}"
        assert len(seen) >= 3
