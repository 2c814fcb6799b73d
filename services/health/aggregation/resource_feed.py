"""The latest resource sample of every service, from the probes' ResourceMetricsUpdated events.

Samples arrive every few seconds per service over pub/sub. Only the newest per service matters, so
they are kept in memory and stored every `flush_seconds` in one batch. Pub/sub is not durable, and
need not be here: a missed sample is replaced by the next one seconds later. A batch PostgreSQL
refused is kept and merged with the next (newer samples win).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping

from services.common.events import EventBus, Resync, Subscription, Topic
from services.common.logging import get_logger
from services.common.tasks import stop_tasks
from services.health.aggregation.feeds import snapshot_from_proto
from services.health.domain import ResourceSnapshot

log = get_logger(__name__)


class ResourceFeed:
    def __init__(
        self,
        bus: EventBus,
        apply: Callable[[Mapping[str, ResourceSnapshot]], Awaitable[object]],
        flush_seconds: float,
    ) -> None:
        self._bus = bus
        self._apply = apply
        self._flush_seconds = flush_seconds
        self._latest: dict[str, ResourceSnapshot] = {}
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._subscription = await self._bus.subscribe(Topic.RESOURCE_METRICS)
        self._tasks = [
            asyncio.create_task(self._read(self._subscription), name="health-resource-feed"),
            asyncio.create_task(self._flush_loop(), name="health-resource-flush"),
        ]

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
        self._tasks = []
        if self._subscription is not None:
            await self._subscription.close()
            self._subscription = None
        with contextlib.suppress(Exception):
            await self.flush()

    def add(self, service_id: str, sample: ResourceSnapshot) -> None:
        current = self._latest.get(service_id)
        if current is None or sample.sampled_at >= current.sampled_at:
            self._latest[service_id] = sample

    async def _read(self, subscription: Subscription) -> None:
        async for item in subscription:
            if isinstance(item, Resync):
                log.info("resource samples may have been missed; the next ones replace them", reason=item.reason)
                continue
            if item.WhichOneof("payload") != "resource_metrics_updated":
                continue
            update = item.resource_metrics_updated
            self.add(update.service_id, snapshot_from_proto(update.metrics))

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                await self.flush()
            except Exception as error:
                log.warning("resource samples not stored yet; will retry", error=str(error))

    async def flush(self) -> int:
        """Store what arrived since the last flush; on failure keep it (newer samples still win)."""
        batch, self._latest = self._latest, {}
        if not batch:
            return 0
        try:
            await self._apply(batch)
        except Exception:
            for service_id, sample in batch.items():
                self.add(service_id, sample)
            raise
        return len(batch)
