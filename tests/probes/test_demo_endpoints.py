"""The simulated ERP/PIM/CRM systems of `b2c up --demo`, probed and scraped over real HTTP by the real engine."""

from __future__ import annotations

import asyncio
import random
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from b2c.stack.demo.config import write_demo_config
from b2c.stack.demo.endpoints import BEHAVIOURS, ByPort, Fault, SimulatedSystem, crm_fault, erp_fault, pim_fault
from b2c.stack.demo.systems import SYSTEMS
from b2c.stack.settings import StackPorts
from services.health.registry.config import parse_config
from services.probes.agent.resources.alerts import ThresholdEvaluator
from services.probes.agent.resources.model import AlertType
from services.probes.agent.resources.samplers import PrometheusSampler
from services.probes.domain import ErrorType, ProbeKind, ProbeOptions, ResourceSource, SpeedRating, Target
from services.probes.probing.engine import EngineConfig, ProbeEngine


def test_faults_follow_the_clock() -> None:
    """ERP hangs in its 14:00-16:00 backup window and is slow each quarter hour; PIM answers 503 in its burst
    minutes; CRM tokens expire in minutes 20-22; otherwise the systems mostly answer."""
    at = lambda hour, minute: datetime(2026, 3, 2, hour, minute)  # noqa: E731
    assert erp_fault(at(14, 40), 0.2) is Fault.HANG and erp_fault(at(10, 31), 0.5) is Fault.SLOW
    assert erp_fault(at(10, 5), 0.5) is Fault.NONE
    assert pim_fault(at(9, 50), 0.5) is Fault.UNAVAILABLE and pim_fault(at(9, 52), 0.5) is Fault.NONE
    assert crm_fault(at(9, 21), 0.5) is Fault.TOKEN_EXPIRED and crm_fault(at(9, 40), 0.5) is Fault.NONE


@pytest.fixture
async def systems() -> AsyncIterator[dict[str, tuple[SimulatedSystem, str]]]:
    """The three systems, answering without their usual delays, on free ports behind one uvicorn server."""
    socks, apps, found = [], {}, {}
    for system in SYSTEMS:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        simulated = SimulatedSystem(system, replace(BEHAVIOURS[system.slug], latency=(0.0, 0.0)), random.Random(1))
        apps[port] = simulated.app()
        socks.append(sock)
        found[system.slug] = (simulated, f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(ByPort(apps), log_config=None, lifespan="off", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=socks))
    for _ in range(400):
        if server.started or task.done():
            break
        await asyncio.sleep(0.025)
    assert server.started, "the demo systems did not start"
    yield found
    server.should_exit = True
    await task


def _target(url: str, slug: str, timeout: float = 5.0) -> Target:
    system = next(s for s in SYSTEMS if s.slug == slug)
    options = ProbeOptions(
        headers=(("Authorization", f"Bearer {system.token}"),), max_retries=0, timeout_seconds=timeout
    )
    return Target(str(uuid.uuid4()), slug, system.name, ProbeKind.HTTP, f"{url}/api/health", options)


async def test_each_fault_is_classified_as_an_operator_would_expect(systems) -> None:  # type: ignore[no-untyped-def]
    """Healthy ERP passes; an expired CRM token is TOKEN_EXPIRED, a PIM burst SERVICE_UNAVAILABLE, a hang a
    READ_TIMEOUT, a slow answer rated Slow with advice about time to first byte."""
    engine = ProbeEngine(EngineConfig(timeout_seconds=5.0), {})
    verdicts = {}
    for slug, fault in (("erp", Fault.NONE), ("crm", Fault.TOKEN_EXPIRED), ("pim", Fault.UNAVAILABLE)):
        simulated, url = systems[slug]
        simulated.behaviour = replace(simulated.behaviour, fault=lambda now, roll, f=fault: f)
        verdicts[slug] = await engine.test(_target(url, slug))
    assert verdicts["erp"].success and verdicts["erp"].summary.startswith("HTTP 200")
    assert verdicts["crm"].error is not None and verdicts["crm"].error.error_type is ErrorType.TOKEN_EXPIRED
    assert verdicts["pim"].error is not None and verdicts["pim"].error.error_type is ErrorType.SERVICE_UNAVAILABLE
    erp, url = systems["erp"]
    erp.behaviour = replace(erp.behaviour, fault=lambda now, roll: Fault.HANG)
    hung = await engine.test(_target(url, "erp", timeout=0.5))
    assert hung.error is not None and hung.error.error_type is ErrorType.READ_TIMEOUT
    erp.behaviour = replace(erp.behaviour, fault=lambda now, roll: Fault.SLOW)
    slow = await engine.test(_target(url, "erp"))
    assert slow.success and slow.speed_rating is SpeedRating.SLOW and slow.metrics.time_to_first_byte_ms >= 1000
    assert any("start answering" in advice for advice in slow.recommendations)


async def test_the_crm_metrics_run_above_the_thresholds(systems) -> None:  # type: ignore[no-untyped-def]
    """Two scrapes of the CRM's /metrics give CPU by rate and memory, pool and queue high enough for alerts."""
    _, url = systems["crm"]
    target = replace(_target(url, "crm"), resources=ResourceSource(metrics_url=f"{url}/metrics"))
    async with httpx.AsyncClient() as client:
        sampler = PrometheusSampler(target.resources.metrics_url, {}, client, 5.0)
        await sampler.sample()
        await asyncio.sleep(1.0)
        sample = await sampler.sample()
    assert sample.cpu_percent is not None and 60 < sample.cpu_percent < 110  # two clocks, so not exactly <= 100
    assert sample.memory_percent is not None and sample.memory_percent > 85 and sample.threads
    assert sample.pool_total == 10 and sample.queue_depth is not None
    alerts = {a.alert_type for a in ThresholdEvaluator(target.service_id, "crm").evaluate(sample, target.thresholds)}
    assert AlertType.POOL_EXHAUSTED in alerts  # its pool never drops below 9 of 10


def test_the_demo_file_registers_the_three_systems_and_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file `b2c up --demo` writes passes the health service's validation: ERP, PIM, CRM with tokens and
    metrics URLs, the gateway with its metrics, PostgreSQL and Redis sampled by process name."""
    monkeypatch.setenv("B2X_DEMO_CRM_PORT", "28083")
    path = write_demo_config(
        tmp_path, StackPorts.from_env(), database_url="postgresql://b2x@127.0.0.1:55432/b2x",
        redis_url="redis://127.0.0.1:56379/0",
    )  # fmt: skip
    config = parse_config(path.read_text(), path)
    services = {s.slug: s for s in config.services}
    assert list(services) == ["erp", "pim", "crm", "gateway", "postgres", "redis"]
    crm = services["crm"]
    assert crm.endpoint == "http://127.0.0.1:28083/api/health" and crm.probe.metrics_url.endswith(":28083/metrics")
    assert crm.probe.headers == {"Authorization": "Bearer demo-crm-token"} and crm.name == "CRM Integration"
    assert services["postgres"].probe.process_name == "postgres"
    assert services["redis"].probe.process_name == "redis-server"
    assert services["gateway"].probe.metrics_url.endswith("/metrics")
