"""Use cases of the aggregated view's reads: the health summary and the health history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from typing import Protocol

from services.health.domain import ConnectedService
from services.health.overview.history import HistoryBucket, HistoryPlan, HistoryPoint, Tally, fill, plan
from services.health.overview.summary import Component, HealthSummary, summarize
from services.health.registry.service import RegistryService


class OverviewReader(Protocol):
    async def components(self, now: datetime) -> list[Component]: ...
    async def tallies(self, plan: HistoryPlan, service_id: str | None) -> dict[datetime, Tally]: ...


@dataclass(frozen=True)
class HealthHistory:
    service: ConnectedService | None  # None: every service together
    bucket: HistoryBucket
    points: list[HistoryPoint]

    @property
    def total(self) -> Tally:
        return reduce(lambda a, b: a + b, (p.tally for p in self.points), Tally())


def _utcnow() -> datetime:
    return datetime.now(UTC)


class HealthOverview:
    def __init__(
        self, reader: OverviewReader, registry: RegistryService, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._reader = reader
        self._registry = registry
        self._clock = clock

    async def summary(self) -> HealthSummary:
        """Overall status, counts and one row per live service (summary.py has the rules)."""
        now = self._clock()
        return summarize(await self._reader.components(now), now)

    async def history(
        self,
        ref: str,
        start: datetime | None,
        end: datetime | None,
        bucket: HistoryBucket | None,
        time_zone: str = "",
    ) -> HealthHistory:
        """Checks per bucket of one service (id or slug) or, with an empty ref, of all of them."""
        service = await self._registry.get(ref) if ref.strip() else None
        chosen = plan(start, end, bucket, time_zone, self._clock())
        tallies = await self._reader.tallies(chosen, service.id if service else None)
        return HealthHistory(service, chosen.bucket, fill(chosen, tallies))
