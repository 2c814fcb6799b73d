"""Composition root of the jobs service: `python -m services.jobs`."""

from __future__ import annotations

from pathlib import Path

from b2x.monitoring.v1 import jobs_pb2_grpc

from services.common.grpc_server import GrpcServer
from services.common.logging import configure_logging, get_logger
from services.common.metrics import SnapshotRefresher
from services.common.runtime import Resources, run_process, serve_until_signal
from services.common.settings import CommonSettings, load_settings
from services.jobs.events import BusJobEvents
from services.jobs.grpc_api import SERVICE_NAME, JobsServicer
from services.jobs.logs import LogStore
from services.jobs.maintenance import Maintenance
from services.jobs.metrics import JOBS_SNAPSHOT, JobsSnapshotReader, MeteredJobEvents
from services.jobs.reporting import WorkerReporting
from services.jobs.repository import PostgresJobRepository
from services.jobs.service import JobsService
from services.jobs.settings import JobsSettings
from services.jobs.trends.repository import PostgresTrendRepository
from services.jobs.trends.service import JobTrends

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


def build_server(resources: Resources, settings: CommonSettings) -> GrpcServer:
    """Wire repositories, service and servicer onto a gRPC server, with the maintenance loops started
    and stopped alongside it (tests call this with port 0)."""
    jobs_settings = settings if isinstance(settings, JobsSettings) else JobsSettings(**settings.model_dump())
    repository = PostgresJobRepository(resources.pool)
    logs = LogStore(resources.pool)
    events = MeteredJobEvents(BusJobEvents(resources.bus))
    service = JobsService(repository, events, logs, jobs_settings.retry_policy())
    trends = JobTrends(PostgresTrendRepository(resources.pool))
    servicer = JobsServicer(service, WorkerReporting(service, repository, logs, events), trends)
    maintenance = Maintenance(
        service,
        repository,
        logs,
        heartbeat_timeout=jobs_settings.jobs_heartbeat_timeout_seconds,
        interval=jobs_settings.jobs_reaper_interval_seconds,
        retention_days=jobs_settings.jobs_log_retention_days,
    )
    snapshot = SnapshotRefresher(JOBS_SNAPSHOT, JobsSnapshotReader(resources.pool), settings.metrics_snapshot_seconds)

    async def start() -> None:
        await maintenance.prepare()
        await snapshot.start()

    async def stop() -> None:
        await snapshot.stop()
        await maintenance.stop()

    async def readiness() -> bool:
        ready = await resources.database_ready()
        if not ready:
            maintenance.database_lost()
        return ready

    return GrpcServer(
        "jobs",
        [SERVICE_NAME],
        [lambda server: jobs_pb2_grpc.add_JobsServiceServicer_to_server(servicer, server)],
        readiness=readiness,
        readiness_interval=min(5.0, jobs_settings.jobs_heartbeat_timeout_seconds / 4),
        on_start=start,
        on_stop=stop,
        on_serving=maintenance.start,
        keepalive_seconds=settings.grpc_keepalive_seconds,
    )


async def main() -> None:
    settings = load_settings(JobsSettings)
    configure_logging("jobs", settings.log_level, settings.log_format)
    await serve_until_signal(
        "jobs",
        settings,
        lambda resources: build_server(resources, settings),
        migrations=MIGRATIONS,
        host=settings.jobs_host,
        port=settings.jobs_port,
        metrics_port=settings.jobs_metrics_port,
    )


def run() -> None:
    run_process("jobs", main)


if __name__ == "__main__":
    run()
