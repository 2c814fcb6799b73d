"""Composition root of the health service: `python -m services.health`."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from b2x.monitoring.v1 import alerts_pb2_grpc, health_pb2_grpc

from services.common.events import check_states_stream
from services.common.grpc_server import GrpcServer
from services.common.logging import configure_logging, get_logger
from services.common.metrics import SnapshotRefresher
from services.common.runtime import Resources, run_process, serve_until_signal
from services.common.settings import CommonSettings, load_settings
from services.health.aggregation.consumer import CheckStateConsumer, ConsumerConfig
from services.health.aggregation.maintenance import Maintenance
from services.health.aggregation.resource_feed import ResourceFeed
from services.health.aggregation.service import Aggregator
from services.health.aggregation.store import PostgresAggregationStore
from services.health.alerts.delivery import build_delivery
from services.health.alerts.feeds import AlertFeeds, BusAlertAnnouncer, outcome_consumer
from services.health.alerts.grpc_api import SERVICE_NAME as ALERTS_SERVICE_NAME
from services.health.alerts.grpc_api import AlertsServicer
from services.health.alerts.notice import NotificationSink
from services.health.alerts.repository import PostgresAlertRepository
from services.health.alerts.service import AlertService
from services.health.events import BusStatusAnnouncer
from services.health.grpc_api import SERVICE_NAME, HealthServicer
from services.health.metrics import HEALTH_SNAPSHOT, HealthSnapshotReader
from services.health.overview.repository import PostgresOverview
from services.health.overview.service import HealthOverview
from services.health.registry.config import HealthConfig, load_config
from services.health.registry.repository import PostgresRegistry
from services.health.registry.self_monitoring import self_definitions
from services.health.registry.service import RegistryService
from services.health.settings import HealthSettings
from services.health.status import CheckState

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


def config_for(settings: CommonSettings) -> HealthConfig | None:
    """The validated declarative file, or None when B2X_CONFIG_FILE is unset; StartupError when invalid."""
    path = settings.config_file if isinstance(settings, HealthSettings) else None
    return load_config(path) if path is not None else None


def health_settings(settings: CommonSettings) -> HealthSettings:
    return settings if isinstance(settings, HealthSettings) else HealthSettings(**settings.model_dump())


# Tests replace the notification sink with a fake of the Protocol; the process uses the outbox.
SinkFactory = Callable[[Resources, "HealthConfig | None"], NotificationSink]


@dataclass
class AggregationTasks:
    """What feeds the aggregated view: the check-states consumer, the resource feed and the upkeep."""

    consumer: CheckStateConsumer
    feed: ResourceFeed
    maintenance: Maintenance
    alerts: AlertFeeds

    async def start(self) -> None:
        self.consumer.start()
        await self.feed.start()
        self.maintenance.start()
        await self.alerts.start()

    async def stop(self) -> None:
        await self.alerts.stop()
        await self.consumer.stop()
        await self.feed.stop()
        await self.maintenance.stop()


def consumer_config(settings: HealthSettings) -> ConsumerConfig:
    return ConsumerConfig(
        namespace=settings.namespace,
        consumer=settings.health_consumer_name or socket.gethostname(),
        batch=settings.health_stream_batch,
        # A blocking read must end before the Redis client's command timeout calls it a failure.
        block_ms=min(settings.health_stream_block_ms, int(settings.redis_timeout_seconds * 500)),
        claim_idle_seconds=settings.health_claim_idle_seconds,
    )


def build_aggregation(resources: Resources, settings: HealthSettings, alerts: AlertService) -> AggregationTasks:
    store = PostgresAggregationStore(resources.pool)
    aggregator = Aggregator(store, BusStatusAnnouncer(resources.bus), slow_ms=settings.probes_slow_ms)

    async def apply_checks(states: Sequence[CheckState]) -> None:
        # Stored first: a batch the alert rules fail on is read again, and counted once (check_receipts).
        await aggregator.apply_checks(states)
        await alerts.on_checks(states)

    consumer = CheckStateConsumer(resources.redis, consumer_config(settings), apply_checks)
    feed = ResourceFeed(resources.bus, aggregator.apply_resources, settings.health_resource_flush_seconds)
    retention = timedelta(days=settings.health_rollup_retention_days)
    alert_feeds = AlertFeeds(
        alerts,
        resources.bus,
        outcome_consumer(resources.redis, consumer_config(settings), alerts),
        sweep_seconds=settings.health_alert_sweep_seconds,
        metrics_seconds=settings.metrics_snapshot_seconds,
    )
    return AggregationTasks(consumer, feed, Maintenance(aggregator, store, retention=retention), alert_feeds)


def build_server(
    resources: Resources,
    settings: CommonSettings,
    config: HealthConfig | None = None,
    sink: SinkFactory | None = None,
) -> GrpcServer:
    """Wire repository, service and servicer onto a gRPC server (tests call this with port 0).

    With a config file, the registry is synced to it when the server starts. Without one, the
    file-owned services are left as they are: an unset variable must not empty the registry. Then the
    self-monitoring services are synced (removed when it is off). The aggregation starts after the
    sync and stops after the server.

    Every alert change goes to the notification outbox in its transaction (`sink`, default the
    delivery's OutboxSink); the delivery worker sends what the outbox holds.
    """
    config = config or config_for(settings)
    registry = RegistryService(PostgresRegistry(resources.pool), announcer=BusStatusAnnouncer(resources.bus))
    servicer = HealthServicer(registry, HealthOverview(PostgresOverview(resources.pool), registry))
    # Notification delivery: the sink is what the alert lifecycle submits to; the worker sends.
    outbox_sink, delivery = build_delivery(settings, resources.pool, config)
    alerts = AlertService(
        PostgresAlertRepository(resources.pool),
        sink(resources, config) if sink is not None else outbox_sink,
        BusAlertAnnouncer(resources.bus),
        config.alert_rules if config is not None else None,
    )
    aggregation = build_aggregation(resources, health_settings(settings), alerts)
    streams = {"check-states": check_states_stream(settings.namespace)}
    snapshot = SnapshotRefresher(
        HEALTH_SNAPSHOT,
        HealthSnapshotReader(resources.pool, resources.redis, streams),
        settings.metrics_snapshot_seconds,
    )

    async def start() -> None:
        if config is not None:
            await registry.sync_file(config.services)
        # After the file: a slug the operator declared keeps the operator's definition.
        await registry.sync_self(self_definitions(health_settings(settings)))
        await aggregation.start()
        await snapshot.start()
        delivery.start()

    async def stop() -> None:
        await delivery.stop()
        await snapshot.stop()
        await aggregation.stop()

    # on_start runs before the server listens: nobody reads the registry before it reflects the file,
    # and a failing sync means the process never reports SERVING.
    return GrpcServer(
        "health",
        [SERVICE_NAME, ALERTS_SERVICE_NAME],
        [
            lambda server: health_pb2_grpc.add_HealthServiceServicer_to_server(servicer, server),
            lambda server: alerts_pb2_grpc.add_AlertsServiceServicer_to_server(AlertsServicer(alerts), server),
        ],
        on_start=start,
        on_stop=stop,
        readiness=resources.database_ready,
        keepalive_seconds=settings.grpc_keepalive_seconds,
    )


async def main() -> None:
    settings = load_settings(HealthSettings)
    configure_logging("health", settings.log_level, settings.log_format)
    # Read the file before connecting anywhere, so a typo is reported first and fast.
    config = config_for(settings)
    await serve_until_signal(
        "health",
        settings,
        lambda resources: build_server(resources, settings, config),
        migrations=MIGRATIONS,
        host=settings.health_host,
        port=settings.health_port,
        metrics_port=settings.health_metrics_port,
    )


def run() -> None:
    run_process("health", main)


if __name__ == "__main__":
    run()
