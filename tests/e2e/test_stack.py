"""The whole system as a newcomer meets it: `b2c up`, gRPC with reflection, GraphQL live updates, the CLI.

These tests start real processes exactly as `b2c up` does (embedded PostgreSQL and Redis, three
services, the gateway) and talk to them only over the network and the command line.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import pytest
from b2x.monitoring.v1 import jobs_pb2, jobs_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from services.common.embedded import free_port
from services.common.errors import EXIT_CONFIG
from tests.support import GraphQLWebSocket

pytestmark = pytest.mark.e2e
B2C = str(Path(sys.executable).parent / "b2c")
PORT_VARS = (
    "B2X_JOBS_PORT", "B2X_HEALTH_PORT", "B2X_PROBES_PORT", "B2X_GATEWAY_PORT",
    "B2X_JOBS_METRICS_PORT", "B2X_HEALTH_METRICS_PORT", "B2X_PROBES_METRICS_PORT",
)  # fmt: skip


def stack_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no external servers, its own data dir, CLI config and free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
    env.update({var: str(free_port()) for var in PORT_VARS})
    env["B2X_DATA_DIR"] = str(tmp_path / "data")
    env["B2C_CONFIG"] = str(tmp_path / "b2c.json")
    return env


@dataclass
class RunningStack:
    process: asyncio.subprocess.Process
    output: list[str]
    env: dict[str, str]
    admin_key: str

    def port(self, var: str) -> int:
        return int(self.env[var])

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port('B2X_GATEWAY_PORT')}"


async def start(env: dict[str, str], *args: str) -> RunningStack:
    process = await asyncio.create_subprocess_exec(
        B2C, "up", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output: list[str] = []
    key = ""
    assert process.stdout is not None
    async with asyncio.timeout(150):
        while True:
            raw = await process.stdout.readline()
            if not raw:
                raise AssertionError("b2c up ended early:\n" + "".join(output))
            line = raw.decode()
            output.append(line)
            if match := re.search(r"Admin key\s+(b2x_\S+)", line):
                key = match.group(1)
            if "is up" in line:
                break
    assert key, "".join(output)
    return RunningStack(process, output, env, key)


async def stop(stack: RunningStack) -> str:
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.stdout is not None
    rest, _ = await asyncio.wait_for(stack.process.communicate(), 60)
    text = "".join(stack.output) + rest.decode()
    assert stack.process.returncode == 0, text
    return text


async def b2c(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        B2C, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def reflected_services(port: int) -> list[str]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return sorted(ProtoReflectionDescriptorDatabase(channel).get_services())


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[RunningStack]:
    running = await start(stack_env(tmp_path))
    try:
        yield running
    finally:
        if running.process.returncode is None:
            await stop(running)


def listening_addresses(port: int) -> set[str]:
    """The addresses something listens on at `port` (IPv4-mapped IPv6 shown as IPv4)."""
    import ipaddress

    import psutil

    found = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == "LISTEN" and conn.laddr.port == port:
            address = ipaddress.ip_address(conn.laddr.ip)
            mapped = getattr(address, "ipv4_mapped", None)
            found.add(str(mapped or address))
    return found


async def test_a_newcomer_starts_the_stack_and_follows_a_job_everywhere(stack: RunningStack) -> None:
    """Every listener (gRPC, gateway, metrics, embedded PostgreSQL and Redis) is on loopback only; reflection
    and grpc health on 50051-50053 equivalents; a job created over gRPC shows up live on a GraphQL
    subscription and in `b2c jobs list --format json`; unknown ids exit 2 with a message."""
    ports = [stack.port(var) for var in PORT_VARS]
    for line in stack.output:
        if match := re.search(r"(PostgreSQL|Redis)\s+\S+://\S*?127\.0\.0\.1:(\d+)", line):
            ports.append(int(match.group(2)))
    assert len(ports) == len(PORT_VARS) + 2, stack.output
    for port in ports:
        assert listening_addresses(port) == {"127.0.0.1"}, (port, listening_addresses(port))
    admin_url = next(m.group(1) for line in stack.output if (m := re.search(r"PostgreSQL\s+(\S+)", line)))
    conn = await asyncpg.connect(admin_url)
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT application_name, usename FROM pg_stat_activity WHERE application_name LIKE 'b2x-%'"
        )
    finally:
        await conn.close()
    users = {r["application_name"]: r["usename"] for r in rows}
    assert users == {f"b2x-{s}": f"b2x_{s}" for s in ("jobs", "health", "probes", "gateway")}, users
    expected = {
        "B2X_JOBS_PORT": "b2x.monitoring.v1.JobsService",
        "B2X_HEALTH_PORT": "b2x.monitoring.v1.HealthService",
        "B2X_PROBES_PORT": "b2x.monitoring.v1.ProbesService",
    }
    for var, service in expected.items():
        names = await asyncio.to_thread(reflected_services, stack.port(var))
        assert service in names and "grpc.health.v1.Health" in names, names
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.port(var)}") as channel:
            for name in ("", service):
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=name), timeout=5
                )
                assert reply.status == health_pb2.HealthCheckResponse.SERVING

    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{stack.port('B2X_JOBS_PORT')}") as channel,
        GraphQLWebSocket(stack.api, {"Authorization": f"Bearer {stack.admin_key}"}) as ws,
    ):
        assert (await ws.receive())["type"] == "connection_ack"
        await ws.subscribe("subscription { jobStatusChanged { jobId status change progress { percent } } }")
        await asyncio.sleep(0.3)
        stub = jobs_pb2_grpc.JobsServiceStub(channel)
        job = (
            await stub.CreateJob(
                jobs_pb2.CreateJobRequest(job_type="ERP_ARTICLE_SYNC", tenant_id="acme", total_items=100), timeout=10
            )
        ).job
        await stub.StartJob(jobs_pb2.StartJobRequest(job_id=job.id, worker_id="e2e"), timeout=10)
        await stub.ReportProgress(
            jobs_pb2.ReportProgressRequest(
                worker_id="e2e", job_id=job.id, processed_items=40, succeeded_items=40, sequence=1
            ),
            timeout=10,
        )
        await stub.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="e2e", job_id=job.id), timeout=10)
        changes = []
        while len(changes) < 4:
            event = (await ws.receive(timeout=15))["payload"]["data"]["jobStatusChanged"]
            if event["jobId"] == job.id:
                changes.append((event["change"], event["status"]))
    assert changes == [
        ("created", "QUEUED"),
        ("started", "RUNNING"),
        ("progress", "RUNNING"),
        ("completed", "COMPLETED"),
    ]

    code, out, err = await b2c(stack.env, "jobs", "list", "--format", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert next(j for j in listed["jobs"] if j["id"] == job.id)["status"] == "COMPLETED"

    code, out, _ = await b2c(stack.env, "jobs", "list")
    assert code == 0 and job.id[:8] in out and "ERP_ARTICLE_SYNC" in out

    code, out, _ = await b2c(stack.env, "jobs", "show", job.id)
    assert code == 0 and "Done" in out and "40/100" in out

    unknown = str(uuid.uuid4())
    code, out, err = await b2c(stack.env, "jobs", "show", unknown)
    assert code == 2 and f"job {unknown} not found" in err and "Traceback" not in err

    code, _, err = await b2c(stack.env, "jobs", "list", "--status", "sleeping")
    assert code == 2 and "unknown status" in err

    # Out of the box the stack watches itself: its PostgreSQL, Redis and services turn ONLINE and
    # `monitor health` exits 0 (issue 14; ADR 0020).
    states: dict[str, str] = {}
    for _ in range(60):
        code, out, err = await b2c(stack.env, "monitor", "health", "--format", "json")
        states = {c["slug"]: c["status"] for c in json.loads(out)["components"]}
        if states and set(states.values()) == {"ONLINE"}:
            break
        await asyncio.sleep(1)
    assert states == dict.fromkeys(("b2x-postgres", "b2x-redis", "b2x-jobs", "b2x-probes"), "ONLINE"), states
    code, out, _ = await b2c(stack.env, "monitor", "health")
    assert code == 0 and "B2X PostgreSQL" in out, out


async def test_the_stack_stops_cleanly_keeps_its_data_and_the_cli_reports_it_gone(tmp_path: Path) -> None:
    """Ctrl-C stops everything with exit 0; a second `b2c up` finds the same jobs and key; with the stack
    down the CLI exits 3."""
    env = stack_env(tmp_path)
    first = await start(env)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port('B2X_JOBS_PORT')}") as channel:
        job = (
            await jobs_pb2_grpc.JobsServiceStub(channel).CreateJob(
                jobs_pb2.CreateJobRequest(job_type="PIM_IMPORT"), timeout=10
            )
        ).job
    text = await stop(first)
    assert "Stopped." in text

    code, _, err = await b2c(env, "jobs", "list")
    assert code == 3 and "cannot reach the API" in err

    second = await start(env)
    try:
        assert second.admin_key == first.admin_key
        code, out, err = await b2c(env, "jobs", "list", "--format", "json", "--since", "all")
        assert code == 0, err
        assert job.id in [j["id"] for j in json.loads(out)["jobs"]]
    finally:
        await stop(second)


async def test_b2c_up_names_the_part_that_failed(tmp_path: Path) -> None:
    """With an unreachable PostgreSQL, `b2c up` exits 2 and says which service failed and why, in one line."""
    env = stack_env(tmp_path)
    env["B2X_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{free_port()}/b2x"
    process = await asyncio.create_subprocess_exec(
        B2C, "up", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 2
    message = err.decode()
    assert "service failed to start" in message and "cannot connect to PostgreSQL at 127.0.0.1" in message
    assert "Traceback" not in message + out.decode()


async def test_a_service_with_bad_configuration_exits_with_one_line(tmp_path: Path) -> None:
    """A missing or malformed variable stops a service with one line that names it, exit status EXIT_CONFIG."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("B2X_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.jobs", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == EXIT_CONFIG
    assert err.decode().strip().splitlines() == ["b2x-jobs: B2X_DATABASE_URL is required but not set"]

    env.update({"B2X_DATABASE_URL": "mysql://x", "B2X_REDIS_URL": "redis://127.0.0.1:1/0"})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.jobs", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    lines = err.decode().strip().splitlines()
    assert process.returncode == EXIT_CONFIG and len(lines) == 1
    assert lines[0].startswith("b2x-jobs: B2X_DATABASE_URL: must be a PostgreSQL URL")
