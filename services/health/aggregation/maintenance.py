"""Periodic upkeep of the aggregated view, in every replica (each step is safe to run concurrently).

- Silence: every `silence_every` seconds, services whose checks stopped arriving become UNKNOWN.
- Retention: hourly, rollup hours older than the retention (default 400 days) and check receipts
  older than a day are deleted. Rollups are at most one small row per service and hour, so a delete
  of the oldest hours touches a few hundred rows and needs no partitions; the receipts only have to
  outlive a redelivery (a crash between COMMIT and XACK, an entry claimed after a minute).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from services.common.logging import get_logger
from services.common.tasks import stop_tasks
from services.health.aggregation.service import Aggregator

log = get_logger(__name__)

RECEIPTS_KEPT = timedelta(days=1)


class Pruner(Protocol):
    async def prune(self, rollups_before: datetime, receipts_before: datetime) -> tuple[int, int] | None: ...


class Maintenance:
    def __init__(
        self,
        aggregator: Aggregator,
        pruner: Pruner,
        *,
        retention: timedelta,
        silence_every: float = 30.0,
        prune_every: float = 3600.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._aggregator = aggregator
        self._pruner = pruner
        self._retention = retention
        self._silence_every = silence_every
        self._prune_every = prune_every
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="health-maintenance")

    async def stop(self) -> None:
        await stop_tasks([self._task])
        self._task = None

    async def prune(self) -> tuple[int, int] | None:
        now = self._clock()
        pruned = await self._pruner.prune(now - self._retention, now - RECEIPTS_KEPT)
        if pruned and any(pruned):
            log.info("health rollups past retention deleted", rollup_rows=pruned[0], receipts=pruned[1])
        return pruned

    async def _run(self) -> None:
        pruned_at = -1e18
        while True:
            await asyncio.sleep(self._silence_every)
            try:
                await self._aggregator.mark_silent()
                if time.monotonic() - pruned_at >= self._prune_every:
                    pruned_at = time.monotonic()
                    await self.prune()
            except Exception as error:
                log.warning("health maintenance round failed; next round retries", error=str(error))
