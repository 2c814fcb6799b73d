"""Composition root of the probes service: `python -m services.probes`.

One process serves the gRPC API and (unless B2X_PROBES_AGENT_ENABLED=false) runs a probe agent:
periodic checks and resource sampling of its share of the targets, coordinated with the agents of
the other replicas through Redis leases.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import httpx
from b2x.monitoring.v1 import probes_pb2_grpc

from services.common.grpc_server import GrpcServer
from services.common.logging import configure_logging, get_logger
from services.common.metrics import SnapshotRefresher
from services.common.runtime import Resources, run_process, serve_until_signal
from services.common.settings import CommonSettings, load_settings
from services.probes.agent.breaker import BreakerPolicy
from services.probes.agent.checker import CheckAgent
from services.probes.agent.handoff import CheckStateStream
from services.probes.agent.leases import AgentIdentity, Coordination
from services.probes.agent.maintenance import Maintenance
from services.probes.agent.recorder import CheckRecorder
from services.probes.agent.resources.agent import ResourceAgent
from services.probes.agent.resources.store import ResourceStore
from services.probes.agent.runtime import AgentRuntime, RuntimeConfig, TargetLister, new_identity
from services.probes.agent.store import CheckStore
from services.probes.events import BusProbeEvents
from services.probes.grpc_api import SERVICE_NAME, ProbesServicer
from services.probes.insights.repository import InsightsRepository
from services.probes.insights.service import InsightsService
from services.probes.job_calls import JobCallReports
from services.probes.jobs_source import JobsServiceDirectory
from services.probes.metrics import PROBES_SNAPSHOT, ProbesSnapshotReader
from services.probes.partitions import Partitions
from services.probes.probing.engine import EngineConfig, ProbeEngine
from services.probes.repository import PostgresProbeRepository
from services.probes.service import ProbesService
from services.probes.settings import ProbesSettings
from services.probes.targets import HealthTargetSource

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


def engine_config(settings: ProbesSettings) -> EngineConfig:
    return EngineConfig(
        fast_ms=settings.probes_fast_ms,
        slow_ms=settings.probes_slow_ms,
        timeout_seconds=settings.probes_timeout_seconds,
        max_retries=settings.probes_max_retries,
        backoff_seconds=settings.probes_retry_backoff_seconds,
        max_body_bytes=settings.probes_max_body_bytes,
        max_download_bytes=settings.probes_max_download_bytes,
    )


def probes_settings(settings: CommonSettings) -> ProbesSettings:
    return settings if isinstance(settings, ProbesSettings) else ProbesSettings(**settings.model_dump())


def retention(settings: ProbesSettings) -> dict[str, int]:
    return {
        "probe_results": settings.probes_results_retention_days,
        "latency_minute": settings.probes_minute_rollups_retention_days,
        "latency_hour": settings.probes_hour_rollups_retention_days,
        "resource_samples": settings.probes_samples_retention_days,
        "resource_minute": settings.probes_minute_rollups_retention_days,
        "resource_hour": settings.probes_hour_rollups_retention_days,
        "communication_errors": settings.probes_errors_retention_days,
        "error_counts_hourly": settings.probes_errors_retention_days,
    }


def build_agent(
    resources: Resources,
    settings: CommonSettings,
    targets: TargetLister,
    *,
    identity: AgentIdentity | None = None,
    environ: Mapping[str, str] | None = None,
) -> AgentRuntime:
    """A probe agent over `targets` (the registry in production; tests may pass their own list)."""
    probes = probes_settings(settings)
    identity = identity or new_identity()
    # Placeholders (${ERP_TOKEN}) are looked up in this process's environment at probe time only.
    environ = os.environ if environ is None else environ
    events = BusProbeEvents(resources.bus)
    coordination = Coordination(resources.redis, probes.namespace)
    partitions = Partitions()
    check_store = CheckStore(resources.pool, partitions)
    stream = CheckStateStream(resources.redis, probes.namespace, probes.probes_results_stream_maxlen)
    recorder = CheckRecorder(check_store, events, stream, probes.probes_flush_seconds)
    policy = BreakerPolicy(
        probes.probes_breaker_failures,
        probes.probes_breaker_cooldown_seconds,
        probes.probes_breaker_max_cooldown_seconds,
    )
    engine = ProbeEngine(engine_config(probes), environ)
    maintenance = Maintenance(resources.pool, retention(probes), [partitions])
    config = RuntimeConfig(probes.probes_lease_tick_seconds, probes.probes_lease_seconds,
                           probes.probes_targets_refresh_seconds)  # fmt: skip

    def checks(runtime: AgentRuntime) -> CheckAgent:
        return CheckAgent(
            engine, recorder, coordination, check_store, identity.agent_id, policy,
            lookup=runtime.target, owns=runtime.owns_check,
            max_concurrency=probes.probes_max_concurrent_checks, tick=config.tick,
        )  # fmt: skip

    def sampling(runtime: AgentRuntime) -> ResourceAgent:
        return ResourceAgent(
            ResourceStore(resources.pool, partitions), events, identity.agent_id,
            lookup=runtime.target, owns=runtime.owns_resource,
            interval=probes.probes_resource_interval_seconds, environ=environ, hostname=identity.hostname,
            client=httpx.AsyncClient(follow_redirects=True, headers={"User-Agent": "b2x-probe/1"}),
        )  # fmt: skip

    return AgentRuntime(identity, config, targets, coordination, checks, sampling, recorder, maintenance.run)


def build_server(resources: Resources, settings: CommonSettings, *, with_agent: bool = False) -> GrpcServer:
    """Wire target source, engine, repositories, services and servicer onto a gRPC server (tests use port 0).

    With `with_agent`, the process's probe agent starts with the server and stops after it.
    """
    probes = probes_settings(settings)
    engine = ProbeEngine(engine_config(probes), os.environ)
    targets = HealthTargetSource(probes.health_addr, probes.grpc_deadline_seconds, probes.grpc_tls())
    repository = PostgresProbeRepository(resources.pool)
    service = ProbesService(targets, engine, repository, BusProbeEvents(resources.bus))
    insights = InsightsService(
        InsightsRepository(resources.pool), repository, targets, Coordination(resources.redis, probes.namespace)
    )
    jobs = JobsServiceDirectory(probes.jobs_addr, probes.grpc_deadline_seconds, probes.grpc_tls())
    calls = JobCallReports(targets, jobs, repository, BusProbeEvents(resources.bus), os.environ)
    servicer = ProbesServicer(service, insights, calls)
    agent = build_agent(resources, probes, targets) if with_agent else None
    snapshot = SnapshotRefresher(PROBES_SNAPSHOT, ProbesSnapshotReader(resources.pool), probes.metrics_snapshot_seconds)

    async def start() -> None:
        if agent is not None:
            await agent.start()
        await snapshot.start()

    async def stop() -> None:
        await snapshot.stop()
        if agent is not None:
            await agent.stop()

    return GrpcServer(
        "probes",
        [SERVICE_NAME],
        [lambda server: probes_pb2_grpc.add_ProbesServiceServicer_to_server(servicer, server)],
        readiness=resources.database_ready,
        on_start=start,
        on_stop=stop,
        keepalive_seconds=settings.grpc_keepalive_seconds,
    )


async def main() -> None:
    settings = load_settings(ProbesSettings)
    configure_logging("probes", settings.log_level, settings.log_format)
    await serve_until_signal(
        "probes",
        settings,
        lambda resources: build_server(resources, settings, with_agent=settings.probes_agent_enabled),
        migrations=MIGRATIONS,
        host=settings.probes_host,
        port=settings.probes_port,
        metrics_port=settings.probes_metrics_port,
    )


def run() -> None:
    run_process("probes", main)


if __name__ == "__main__":
    run()
