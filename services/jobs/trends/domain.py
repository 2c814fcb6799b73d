"""Trends of finished jobs: outcome counts per day and per job type, and how a window is built. No I/O here.

`jobs.daily_job_stats` is kept by a trigger in the same transaction as the status change that finishes
a job (migration 003), so reading a week costs a few hundred rows however many jobs there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

DEFAULT_DAYS = 7
MAX_DAYS = 90


@dataclass(frozen=True)
class OutcomeCounts:
    """Jobs that finished in a period, by outcome, with the sum of their durations."""

    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    duration_ms_sum: float = 0.0
    timed: int = 0

    def __add__(self, other: OutcomeCounts) -> OutcomeCounts:
        return OutcomeCounts(
            self.completed + other.completed,
            self.failed + other.failed,
            self.cancelled + other.cancelled,
            self.duration_ms_sum + other.duration_ms_sum,
            self.timed + other.timed,
        )

    @property
    def success_rate_percent(self) -> float | None:
        """Completed among completed and failed; cancelled jobs neither succeed nor fail."""
        decided = self.completed + self.failed
        return 100.0 * self.completed / decided if decided else None

    @property
    def average_duration_ms(self) -> float | None:
        return self.duration_ms_sum / self.timed if self.timed else None


@dataclass(frozen=True)
class RollupRow:
    day: date
    job_type: str
    counts: OutcomeCounts


@dataclass(frozen=True)
class JobTrend:
    days: list[tuple[date, OutcomeCounts]]
    by_type: list[tuple[str, OutcomeCounts]]
    total: OutcomeCounts


@dataclass(frozen=True)
class JobFacets:
    job_types: list[str]
    tenant_ids: list[str]


class TrendRepository(Protocol):
    async def rollups(self, first_day: date, tenant_ids: Sequence[str]) -> list[RollupRow]: ...
    async def facets(self, since: date, tenant_ids: Sequence[str]) -> JobFacets: ...


def build_trend(rows: Iterable[RollupRow], first_day: date, days: int) -> JobTrend:
    """Every day of the window (zeros where nothing finished), types by failures, and the total."""
    per_day = {first_day + timedelta(days=i): OutcomeCounts() for i in range(days)}
    per_type: dict[str, OutcomeCounts] = {}
    total = OutcomeCounts()
    for row in rows:
        if row.day not in per_day:
            continue
        per_day[row.day] += row.counts
        per_type[row.job_type] = per_type.get(row.job_type, OutcomeCounts()) + row.counts
        total += row.counts
    by_type = sorted(per_type.items(), key=lambda item: (-item[1].failed, -item[1].completed, item[0]))
    return JobTrend(sorted(per_day.items()), by_type, total)
