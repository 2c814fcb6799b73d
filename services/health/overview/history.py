"""Health history from the hourly rollups: which buckets a request covers, and every bucket filled. Pure.

A range is rounded out to whole buckets: HOUR buckets start on the hour (UTC), DAY buckets at
midnight in the requested time zone (23 or 25 hours on daylight-saving days). With no bucket asked
for, ranges up to 7 days get hours and longer ones days. Unset bounds: the 24 hours up to now.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.common.errors import InvalidArgumentError

DEFAULT_RANGE = timedelta(hours=24)
MAX_RANGE = timedelta(days=400)
HOURLY_UP_TO = timedelta(days=7)


class HistoryBucket(StrEnum):
    HOUR = "hour"
    DAY = "day"


@dataclass(frozen=True)
class HistoryPlan:
    """The buckets to read: [start, end) in UTC, bucket width, and the zone days start in."""

    start: datetime
    end: datetime
    bucket: HistoryBucket
    zone: ZoneInfo

    @property
    def zone_name(self) -> str:
        return self.zone.key

    def bucket_starts(self) -> Iterator[datetime]:
        """Every bucket's start in UTC, oldest first."""
        at = self.start
        while at < self.end:
            yield at
            at = _next(at, self.bucket, self.zone)


@dataclass(frozen=True)
class Tally:
    """Checks of a bucket (or a whole range)."""

    checks: int = 0
    failures: int = 0
    latency_sum_ms: float = 0.0
    latency_count: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.checks + other.checks,
            self.failures + other.failures,
            self.latency_sum_ms + other.latency_sum_ms,
            self.latency_count + other.latency_count,
        )

    @property
    def availability_percent(self) -> float | None:
        return None if self.checks == 0 else 100.0 * (self.checks - self.failures) / self.checks

    @property
    def average_latency_ms(self) -> float | None:
        return None if self.latency_count == 0 else self.latency_sum_ms / self.latency_count


@dataclass(frozen=True)
class HistoryPoint:
    bucket_start: datetime
    tally: Tally


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name.strip() or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgumentError(f"time_zone: {name!r} is not an IANA time zone such as Europe/Berlin") from None


def _floor(at: datetime, bucket: HistoryBucket, zone: ZoneInfo) -> datetime:
    if bucket is HistoryBucket.HOUR:
        return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    local = at.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def _next(at: datetime, bucket: HistoryBucket, zone: ZoneInfo) -> datetime:
    if bucket is HistoryBucket.HOUR:
        return at + timedelta(hours=1)
    local = at.astimezone(zone)
    following = (local.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
    return following.astimezone(UTC)


def plan(
    start: datetime | None, end: datetime | None, bucket: HistoryBucket | None, time_zone: str, now: datetime
) -> HistoryPlan:
    """The buckets covering [start, end); InvalidArgumentError for an empty, reversed or too long range."""
    zone = zone_of(time_zone)
    end = end or now
    start = start or end - DEFAULT_RANGE
    if start >= end:
        raise InvalidArgumentError("range: start must be before end")
    if end - start > MAX_RANGE:
        raise InvalidArgumentError(f"range: at most {MAX_RANGE.days} days")
    chosen = bucket or (HistoryBucket.HOUR if end - start <= HOURLY_UP_TO else HistoryBucket.DAY)
    first = _floor(start, chosen, zone)
    last = _floor(end, chosen, zone)
    if last < end:
        last = _next(last, chosen, zone)
    return HistoryPlan(first, last, chosen, zone)


def fill(history: HistoryPlan, tallies: Mapping[datetime, Tally]) -> list[HistoryPoint]:
    """Every bucket of the plan, with the tally the rollups gave it or an empty one."""
    return [HistoryPoint(at, tallies.get(at, Tally())) for at in history.bucket_starts()]
