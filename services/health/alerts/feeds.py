"""What feeds the alert rules, and where their changes go live.

    jobs' outcome stream   {namespace}:jobs:outcomes, group "health-alerts"   → jobs.* rules  (durable)
    probes' check states   the aggregation's consumer hands each batch on     → service.* rules (durable)
    ResourceAlertTriggered pub/sub, topic resource-alerts                      → resource.* rules
    ResourceMetricsUpdated pub/sub, topic resource-metrics (open alerts)        → resource.* reconciled
    CommunicationErrorRecorded pub/sub, topic communication-errors             → errors.spike
    every 30 s             failure-rate windows that emptied                   → resolved; history past a year purged

Resource alerts come over pub/sub (the probes evaluate the thresholds on their samples), so an
opened/resolved event can be missed. Every live resource update also carries the alerts open after
that sample; each sweep compares them with what fires here and sets right a difference that two
sweeps in a row see (`AlertService.reconcile_resources`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import redis.asyncio as aioredis

from services.common.events import EventBus, Resync, Subscription, Topic, job_outcomes_stream, new_event
from services.common.logging import get_logger
from services.common.tasks import stop_tasks
from services.health.aggregation.consumer import ConsumerConfig, StreamConsumer
from services.health.alerts.convert import (
    alert_to_proto,
    error_from_event,
    job_outcome_from_bytes,
    open_resource_alerts,
    resource_alert_from_event,
)
from services.health.alerts.domain import Alert, Change
from services.health.alerts.rules import JobOutcome, ResourceAlertSeen
from services.health.alerts.service import AlertService
from services.health.metrics import ALERTS_FIRING

log = get_logger(__name__)

OUTCOMES_GROUP = "health-alerts"


class BusAlertAnnouncer:
    """AlertTriggered on the `alerts` topic for every change; publish failures are logged by the bus."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    async def alerts_changed(self, changes: Sequence[tuple[Alert, Change]]) -> None:
        batch = []
        for alert, _ in changes:
            event = new_event("health", tenant_id=alert.tenant)
            event.alert_triggered.alert.CopyFrom(alert_to_proto(alert))
            batch.append(event)
        await self._bus.publish_many(Topic.ALERTS, batch)


def outcome_consumer(redis: aioredis.Redis, config: ConsumerConfig, alerts: AlertService) -> StreamConsumer[JobOutcome]:
    return StreamConsumer(
        redis,
        config,
        alerts.on_job_outcomes,
        key=job_outcomes_stream(config.namespace),
        group=OUTCOMES_GROUP,
        field=b"outcome",
        parse=job_outcome_from_bytes,
        name="job-outcomes",
    )


class AlertFeeds:
    """The alert side's background work, started and stopped with the server."""

    def __init__(
        self,
        alerts: AlertService,
        bus: EventBus,
        outcomes: StreamConsumer[JobOutcome],
        sweep_seconds: float = 30.0,
        metrics_seconds: float = 5.0,
    ) -> None:
        self._alerts = alerts
        self._bus = bus
        self._outcomes = outcomes
        self._sweep_seconds = sweep_seconds
        self._metrics_seconds = metrics_seconds
        self._subscription: Subscription | None = None
        self._errors: Subscription | None = None
        self._figures: Subscription | None = None
        # service id → (monotonic time received, the alerts open after its latest sample)
        self._open_resources: dict[str, tuple[float, list[ResourceAlertSeen]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._outcomes.start()
        self._subscription = await self._bus.subscribe(Topic.RESOURCE_ALERTS)
        self._errors = await self._bus.subscribe(Topic.COMMUNICATION_ERRORS)
        self._figures = await self._bus.subscribe(Topic.RESOURCE_METRICS)
        self._tasks = [
            asyncio.create_task(self._resource_figures(self._figures), name="health-alerts-figures"),
            asyncio.create_task(self._resource_alerts(self._subscription), name="health-alerts-resources"),
            asyncio.create_task(self._communication_errors(self._errors), name="health-alerts-errors"),
            asyncio.create_task(self._sweep_loop(), name="health-alerts-sweep"),
            asyncio.create_task(self._metrics_loop(), name="health-alerts-metrics"),
        ]

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
        self._tasks = []
        for subscription in (self._subscription, self._errors, self._figures):
            if subscription is not None:
                await subscription.close()
        self._subscription = self._errors = self._figures = None
        await self._outcomes.stop()

    async def _resource_alerts(self, subscription: Subscription) -> None:
        async for item in subscription:
            if isinstance(item, Resync):
                log.info("resource alert changes may have been missed", reason=item.reason)
                continue
            if item.WhichOneof("payload") != "resource_alert_triggered":
                continue
            seen = resource_alert_from_event(item.resource_alert_triggered)
            if seen is None:
                continue
            try:
                await self._alerts.on_resource_alerts([seen])
            except Exception as error:
                log.warning("resource alert not applied", error=str(error), service_id=seen.service_id)

    async def _resource_figures(self, subscription: Subscription) -> None:
        async for item in subscription:
            if isinstance(item, Resync) or item.WhichOneof("payload") != "resource_metrics_updated":
                continue
            update = item.resource_metrics_updated
            if update.service_id:
                self._open_resources[update.service_id] = (time.monotonic(), open_resource_alerts(update))

    async def reconcile_resources(self) -> None:
        """Resource alerts set right from the figures received in the last two sweeps."""
        fresh_after = time.monotonic() - 2 * self._sweep_seconds
        self._open_resources = {k: v for k, v in self._open_resources.items() if v[0] >= fresh_after}
        await self._alerts.reconcile_resources({k: v[1] for k, v in self._open_resources.items()})

    async def _communication_errors(self, subscription: Subscription) -> None:
        async for item in subscription:
            if isinstance(item, Resync) or item.WhichOneof("payload") != "communication_error_recorded":
                continue
            seen = error_from_event(item.communication_error_recorded)
            if seen is None:
                continue
            try:
                await self._alerts.on_communication_errors([seen])
            except Exception as error:
                log.warning("communication error not counted for alerts", error=str(error))

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_seconds)
            try:
                await self._alerts.sweep()
                await self.reconcile_resources()
                await self._alerts.purge()
            except Exception as error:
                log.warning("alert sweep failed; will retry", error=str(error))

    async def _metrics_loop(self) -> None:
        while True:
            try:
                await self.refresh_metrics()
            except Exception as error:
                log.debug("alerts gauge not refreshed", error=str(error))
            await asyncio.sleep(self._metrics_seconds)

    async def refresh_metrics(self) -> None:
        """`b2x_alerts_firing` from the alerts table: the same figure on every replica (aggregate with max)."""
        counts = await self._alerts.open_counts()
        ALERTS_FIRING.clear()
        for (rule, severity), count in counts.items():
            ALERTS_FIRING.labels(rule, severity).set(count)
