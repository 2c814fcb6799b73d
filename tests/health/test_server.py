"""The health service as a server: gRPC health, reflection, and `python -m services.health` as a process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import grpc
from b2x.monitoring.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1 import health_pb2 as grpc_health_pb2
from grpc_health.v1 import health_pb2_grpc as grpc_health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.common.embedded import free_port
from services.common.errors import EXIT_CONFIG
from services.health.main import build_server
from services.health.settings import HealthSettings
from tests.support import ROOT, ServiceHarness

TIMEOUT = 10
SERVICE = "b2x.monitoring.v1.HealthService"


async def test_grpc_health_answers_serving_for_the_server_and_the_service(harness: ServiceHarness) -> None:
    """grpc.health.v1 Check says SERVING for "" and for b2x.monitoring.v1.HealthService."""
    address = await harness.serve("health", build_server, harness.settings_for(HealthSettings))
    health = grpc_health_pb2_grpc.HealthStub(harness.channel(address))
    for name in ("", SERVICE):
        response = await health.Check(grpc_health_pb2.HealthCheckRequest(service=name), timeout=TIMEOUT)
        assert response.status == grpc_health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_health_and_alerts_services(harness: ServiceHarness) -> None:
    """Server reflection names HealthService, so `grpcurl -plaintext host:50052 list` works without protos."""
    address = await harness.serve("health", build_server, harness.settings_for(HealthSettings))
    reflection = reflection_pb2_grpc.ServerReflectionStub(harness.channel(address))
    call = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT
    )
    names = [s.name async for response in call for s in response.list_services_response.service]
    assert SERVICE in names
    assert "b2x.monitoring.v1.AlertsService" in names  # the alert lifecycle, on the same server
    assert "grpc.health.v1.Health" in names


def _environment(database_url: str, redis_url: str, namespace: str, port: int, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("B2X_")}
    env.update(
        B2X_DATABASE_URL=database_url,
        B2X_REDIS_URL=redis_url,
        B2X_NAMESPACE=namespace,
        B2X_HEALTH_HOST="127.0.0.1",
        B2X_HEALTH_PORT=str(port),
        B2X_HEALTH_METRICS_PORT="0",
        B2X_CONFIG_FILE=str(config),
    )
    return env


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


async def _wait_serving(address: str, process: asyncio.subprocess.Process, deadline: float, log: Path) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        health = grpc_health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert process.returncode is None, f"the health service exited: {_tail(log)}"
            try:
                response = await health.Check(grpc_health_pb2.HealthCheckRequest(service=SERVICE), timeout=1)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.1)
                continue
            if response.status == grpc_health_pb2.HealthCheckResponse.SERVING:
                return
    raise AssertionError(f"the health service did not become SERVING on {address}: {_tail(log)}")


async def test_the_service_runs_as_its_own_process_and_stops_on_sigterm(
    database_url: str, redis_server_url: str, namespace: str, tmp_path: Path
) -> None:
    """`python -m services.health` syncs the file, serves on B2X_HEALTH_PORT and exits 0 on SIGTERM."""
    config = tmp_path / "services.yaml"
    config.write_text("services:\n  - {slug: erp, type: ERP, endpoint: 'https://erp.example.test'}\n")
    port = free_port()
    log_path = tmp_path / "health.log"
    with log_path.open("wb") as log:  # a file, not a pipe: nobody reads it while the service runs
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.health",
            cwd=ROOT, env=_environment(database_url, redis_server_url, namespace, port, config),
            stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        await _wait_serving(f"127.0.0.1:{port}", process, time.monotonic() + 30, log_path)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthServiceStub(channel)
            listed = await stub.ListServices(health_pb2.ListServicesRequest(), timeout=TIMEOUT)
        assert [s.slug for s in listed.services] == ["erp"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_an_invalid_file_stops_the_process_with_one_line(
    database_url: str, redis_server_url: str, namespace: str, tmp_path: Path
) -> None:
    """With a broken file the process exits EXIT_CONFIG (78: a supervisor must not restart it) and stderr is the
    one line naming the file and the field."""
    config = tmp_path / "services.yaml"
    config.write_text(
        "services:\n  - {slug: erp, type: ERP, endpoint: 'https://erp'}\n  - {slug: pim, type: PIM, endpoint: pim}\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.health",
        cwd=ROOT, env=_environment(database_url, redis_server_url, namespace, free_port(), config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == EXIT_CONFIG
    assert stderr.decode().splitlines() == [
        f"b2x-health: B2X_CONFIG_FILE {config}: services[1].endpoint: must be a URL starting with one of "
        "grpc://, http://, https://, postgres://, postgresql://, redis://, rediss://, tcp://"
    ]
