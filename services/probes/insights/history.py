"""Histories from rollups: which rollup a range reads, and how rollup rows merge into chart points.

A range up to 6 hours is drawn per minute, up to 7 days per hour, longer per day (hour rollups merged
in UTC days). Raw results and samples are never read for a history. A request may name its bucket,
as long as that gives at most MAX_POINTS points (a year per minute is refused, not scanned).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from services.common.errors import InvalidArgumentError
from services.probes.agent import histogram
from services.probes.agent.store import truncate

MAX_POINTS = 2000
R = TypeVar("R")


class Bucket(StrEnum):
    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"


WIDTH = {Bucket.MINUTE: timedelta(minutes=1), Bucket.HOUR: timedelta(hours=1), Bucket.DAY: timedelta(days=1)}
# The rollup table each bucket reads: days merge hour rows.
SOURCE = {Bucket.MINUTE: "minute", Bucket.HOUR: "hour", Bucket.DAY: "hour"}


def choose_bucket(start: datetime, end: datetime, requested: Bucket | None) -> Bucket:
    if end <= start:
        raise InvalidArgumentError("the time range is empty: start must be before end")
    span = end - start
    if requested is None:
        if span <= timedelta(hours=6):
            return Bucket.MINUTE
        return Bucket.HOUR if span <= timedelta(days=7) else Bucket.DAY
    points = span / WIDTH[requested]
    if points > MAX_POINTS:
        raise InvalidArgumentError(
            f"{points:.0f} {requested.value.lower()} points are too many for one history (at most {MAX_POINTS}); "
            "use a wider bucket or a shorter range"
        )
    return requested


def _group(rows: Iterable[R], start_of: Callable[[R], datetime], bucket: Bucket) -> dict[datetime, list[R]]:
    unit = bucket.value.lower()
    groups: dict[datetime, list[R]] = {}
    for row in rows:
        groups.setdefault(truncate(start_of(row), unit), []).append(row)
    return dict(sorted(groups.items()))


@dataclass(frozen=True)
class LatencyRow:
    start: datetime
    checks: int
    failures: int
    skipped: int
    ok_ms_sum: float
    ok_ms_max: float
    histogram: list[int] = field(default_factory=histogram.empty)


@dataclass(frozen=True)
class LatencyPoint:
    start: datetime
    checks: int = 0
    failures: int = 0
    skipped: int = 0
    availability_percent: float = 0.0
    avg_latency_ms: float = 0.0
    p95_latency_ms: float = 0.0
    max_latency_ms: float = 0.0


def merge_latency(start: datetime, rows: list[LatencyRow]) -> LatencyPoint:
    checks = sum(r.checks for r in rows)
    failures = sum(r.failures for r in rows)
    ok = checks - failures
    top = max((r.ok_ms_max for r in rows), default=0.0)
    return LatencyPoint(
        start=start,
        checks=checks,
        failures=failures,
        skipped=sum(r.skipped for r in rows),
        availability_percent=ok * 100 / checks if checks else 0.0,
        avg_latency_ms=sum(r.ok_ms_sum for r in rows) / ok if ok else 0.0,
        p95_latency_ms=histogram.quantile(histogram.merge(r.histogram for r in rows), 0.95, top),
        max_latency_ms=top,
    )


def latency_points(rows: list[LatencyRow], bucket: Bucket) -> list[LatencyPoint]:
    return [merge_latency(start, group) for start, group in _group(rows, lambda r: r.start, bucket).items()]


@dataclass(frozen=True)
class ResourceRow:
    start: datetime
    samples: int
    cpu_sum: float
    cpu_max: float
    mem_pct_sum: float
    mem_pct_max: float
    mem_used_sum: float
    mem_used_max: int
    mem_total_max: int
    pool_active_max: int
    pool_total_max: int
    threads_max: int
    queue_sum: float
    queue_max: int


@dataclass(frozen=True)
class ResourcePoint:
    start: datetime
    samples: int
    cpu_avg: float
    cpu_max: float
    memory_percent_avg: float
    memory_percent_max: float
    memory_used_avg_bytes: int
    memory_used_max_bytes: int
    memory_total_bytes: int
    pool_active_max: int
    pool_total: int
    threads_max: int
    queue_depth_avg: float
    queue_depth_max: int


def merge_resources(start: datetime, rows: list[ResourceRow]) -> ResourcePoint:
    n = sum(r.samples for r in rows) or 1
    return ResourcePoint(
        start=start,
        samples=sum(r.samples for r in rows),
        cpu_avg=sum(r.cpu_sum for r in rows) / n,
        cpu_max=max(r.cpu_max for r in rows),
        memory_percent_avg=sum(r.mem_pct_sum for r in rows) / n,
        memory_percent_max=max(r.mem_pct_max for r in rows),
        memory_used_avg_bytes=int(sum(r.mem_used_sum for r in rows) / n),
        memory_used_max_bytes=max(r.mem_used_max for r in rows),
        memory_total_bytes=max(r.mem_total_max for r in rows),
        pool_active_max=max(r.pool_active_max for r in rows),
        pool_total=max(r.pool_total_max for r in rows),
        threads_max=max(r.threads_max for r in rows),
        queue_depth_avg=sum(r.queue_sum for r in rows) / n,
        queue_depth_max=max(r.queue_max for r in rows),
    )


def resource_points(rows: list[ResourceRow], bucket: Bucket) -> list[ResourcePoint]:
    return [merge_resources(start, group) for start, group in _group(rows, lambda r: r.start, bucket).items()]
