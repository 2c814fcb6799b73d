"""Pattern analysis of communication errors, from hourly counts per fingerprint. Pure functions.

- Fingerprints: errors of one service with the same type and endpoint key, counted over the range
  and over the period of the same length before it; trend NEW / RISING (+20 %) / FALLING (-20 %) /
  STEADY.
- Heatmap: errors per weekday and hour of day in the caller's time zone (all 168 cells).
- Top types and groups with their share of all errors in the range; a trend line per hour (ranges up
  to two days) or per day.
- Recurring spikes. Over the last (up to) 7 local calendar days lying wholly inside the range, for
  each service and error group: an hour of a day is a *spike* when it holds at least 3 errors and at least 3 times the
  median hour of that day (a median of 0 counts as 1). An hour of the day that spikes on at least 3
  of those days recurs; recurring hours next to each other form one window, phrased for people:
  "Timeout errors spike during 14:00-16:00 daily" (every day considered; the text uses an en dash)
  or "... on 4 of the last 7 days".

Counts are per whole hour: a range starting at 14:20 counts the errors of 14:00-15:00 too.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from services.probes.domain import ErrorGroup, ErrorType
from services.probes.fingerprint import fingerprint

SPIKE_FACTOR = 3.0
SPIKE_MIN_ERRORS = 3
SPIKE_MIN_DAYS = 3
SPIKE_WINDOW_DAYS = 7
TREND_CHANGE = 0.2

GROUP_LABEL = {
    ErrorGroup.NETWORK: "Network",
    ErrorGroup.TIMEOUT: "Timeout",
    ErrorGroup.PROTOCOL: "Protocol",
    ErrorGroup.AUTHENTICATION: "Authentication",
    ErrorGroup.DATA: "Data",
    ErrorGroup.SERVICE: "Service",
}


class Trend(StrEnum):
    NEW = "NEW"
    RISING = "RISING"
    STEADY = "STEADY"
    FALLING = "FALLING"


@dataclass(frozen=True)
class HourlyCount:
    service_id: str
    service_slug: str
    error_type: ErrorType
    group: ErrorGroup
    endpoint: str
    hour: datetime
    count: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class Fingerprint:
    fingerprint: str
    service_id: str
    service_slug: str
    error_type: ErrorType
    group: ErrorGroup
    endpoint: str
    count: int
    previous_count: int
    first_seen: datetime
    last_seen: datetime
    trend: Trend
    change_percent: float


@dataclass(frozen=True)
class Share:
    count: int
    share_percent: float
    group: ErrorGroup
    error_type: ErrorType | None = None


@dataclass(frozen=True)
class DetectedPattern:
    service_id: str
    service_slug: str
    group: ErrorGroup
    start_hour: int
    end_hour: int
    days_matched: int
    days_considered: int
    ratio: float
    text: str
    advice: str
    kind: str = "recurring_spike"


@dataclass(frozen=True)
class PatternReport:
    start: datetime
    end: datetime
    timezone: str
    total: int
    previous_total: int
    fingerprints: list[Fingerprint]
    heatmap: list[tuple[int, int, int]]  # (ISO weekday, hour, count), Monday 00:00 first
    top_types: list[Share]
    top_groups: list[Share]
    trend: list[tuple[datetime, int]]
    patterns: list[DetectedPattern]


def trend_of(count: int, previous: int) -> tuple[Trend, float]:
    if previous == 0:
        return Trend.NEW, 0.0
    change = (count - previous) / previous
    if change >= TREND_CHANGE:
        return Trend.RISING, change * 100
    if change <= -TREND_CHANGE:
        return Trend.FALLING, change * 100
    return Trend.STEADY, change * 100


def _fingerprints(current: list[HourlyCount], previous: list[HourlyCount], limit: int) -> list[Fingerprint]:
    before: dict[tuple[str, ErrorType, str], int] = defaultdict(int)
    for row in previous:
        before[(row.service_id, row.error_type, row.endpoint)] += row.count
    groups: dict[tuple[str, ErrorType, str], list[HourlyCount]] = defaultdict(list)
    for row in current:
        groups[(row.service_id, row.error_type, row.endpoint)].append(row)
    found: list[Fingerprint] = []
    for (service_id, error_type, endpoint), rows in groups.items():
        count = sum(r.count for r in rows)
        trend, change = trend_of(count, before[(service_id, error_type, endpoint)])
        found.append(
            Fingerprint(
                fingerprint(service_id, error_type.value, endpoint), service_id, rows[0].service_slug, error_type,
                rows[0].group, endpoint, count, before[(service_id, error_type, endpoint)],
                min(r.first_seen for r in rows), max(r.last_seen for r in rows), trend, change,
            )
        )  # fmt: skip
    found.sort(key=lambda f: (-f.count, f.service_slug, f.error_type.value, f.endpoint))
    return found[:limit]


def _shares(current: list[HourlyCount], total: int) -> tuple[list[Share], list[Share]]:
    by_type: dict[ErrorType, int] = defaultdict(int)
    by_group: dict[ErrorGroup, int] = defaultdict(int)
    group_of: dict[ErrorType, ErrorGroup] = {}
    for row in current:
        by_type[row.error_type] += row.count
        by_group[row.group] += row.count
        group_of[row.error_type] = row.group
    share = (lambda n: n * 100 / total) if total else (lambda n: 0.0)
    types = [Share(n, share(n), group_of[t], t) for t, n in by_type.items()]
    groups = [Share(n, share(n), g) for g, n in by_group.items()]
    types.sort(key=lambda s: (-s.count, s.error_type.value if s.error_type else ""))
    groups.sort(key=lambda s: (-s.count, s.group.value))
    return types, groups


def _trend_line(current: list[HourlyCount], start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, int]]:
    counts: dict[datetime, int] = defaultdict(int)
    if end - start <= timedelta(days=2):
        step = timedelta(hours=1)
        cursor = start.replace(minute=0, second=0, microsecond=0)
        for row in current:
            counts[row.hour] += row.count
    else:
        step = timedelta(days=1)
        cursor = datetime.combine(start.astimezone(tz).date(), time(), tz)
        for row in current:
            counts[datetime.combine(row.hour.astimezone(tz).date(), time(), tz)] += row.count
    points: list[tuple[datetime, int]] = []
    while cursor < end:
        points.append((cursor, counts.get(cursor, 0)))
        cursor = cursor + step if step.days == 0 else datetime.combine(cursor.date() + step, time(), tz)
    return points


def _hours(start: int, end: int) -> str:
    return f"{start:02d}:00\u2013{end % 24:02d}:00"


def _whole_days(start: datetime, end: datetime, tz: ZoneInfo) -> list[date]:
    """The last (up to 7) local calendar days lying entirely inside [start, end)."""
    day = (end - timedelta(microseconds=1)).astimezone(tz).date()
    days: list[date] = []
    while len(days) < SPIKE_WINDOW_DAYS:
        first, after = datetime.combine(day, time(), tz), datetime.combine(day + timedelta(days=1), time(), tz)
        if first < start:
            break
        if after <= end:
            days.append(day)
        day -= timedelta(days=1)
    return days


def _spikes(
    current: list[HourlyCount], start: datetime, end: datetime, tz: ZoneInfo, several_services: bool
) -> list[DetectedPattern]:
    days = _whole_days(start, end, tz)
    if len(days) < SPIKE_MIN_DAYS:
        return []
    grid: dict[tuple[str, ErrorGroup], dict[date, list[int]]] = defaultdict(lambda: {d: [0] * 24 for d in days})
    slugs: dict[str, str] = {}
    for row in current:
        local = row.hour.astimezone(tz)
        slugs[row.service_id] = row.service_slug
        if local.date() in days:
            grid[(row.service_id, row.group)][local.date()][local.hour] += row.count
    found: list[DetectedPattern] = []
    for (service_id, group), by_day in sorted(grid.items(), key=lambda item: (slugs[item[0][0]], item[0][1].value)):
        spiking: dict[int, list[tuple[date, float]]] = defaultdict(list)
        for day, hours in by_day.items():
            base = max(statistics.median(hours), 1.0)
            for hour, count in enumerate(hours):
                if count >= SPIKE_MIN_ERRORS and count >= SPIKE_FACTOR * base:
                    spiking[hour].append((day, count / base))
        recurring = sorted(h for h, hits in spiking.items() if len(hits) >= SPIKE_MIN_DAYS)
        for window in _windows(recurring):
            hits = [hit for h in window for hit in spiking[h]]
            matched = len({day for day, _ in hits})
            found.append(_phrase(service_id, slugs[service_id], group, window, matched, len(days), hits, tz,
                                 several_services))  # fmt: skip
    return found


def _windows(hours: list[int]) -> list[list[int]]:
    windows: list[list[int]] = []
    for hour in hours:
        if windows and hour == windows[-1][-1] + 1:
            windows[-1].append(hour)
        else:
            windows.append([hour])
    return windows


def _phrase(
    service_id: str,
    slug: str,
    group: ErrorGroup,
    window: list[int],
    matched: int,
    considered: int,
    hits: list[tuple[date, float]],
    tz: ZoneInfo,
    several_services: bool,
) -> DetectedPattern:
    start, end = window[0], window[-1] + 1
    when = "daily" if matched == considered else f"on {matched} of the last {considered} days"
    subject = f"{GROUP_LABEL[group]} errors" + (f" of {slug}" if several_services else "")
    text = f"{subject} spike during {_hours(start, end)} {when}"
    advice = (
        f"Consider scheduling sync jobs{f' against {slug}' if several_services else ''} outside "
        f"{_hours(start, end)} ({tz.key}), or ask the provider what runs then (backups, batch jobs)."
    )
    ratio = sum(r for _, r in hits) / len(hits)
    return DetectedPattern(service_id, slug, group, start, end, matched, considered, ratio, text, advice)


def analyse(
    rows: list[HourlyCount], start: datetime, end: datetime, tz: ZoneInfo, max_fingerprints: int
) -> PatternReport:
    """The whole analysis of `rows`, which cover [start - (end - start), end)."""
    first_hour = start.replace(minute=0, second=0, microsecond=0)
    current = [r for r in rows if first_hour <= r.hour < end]
    previous = [r for r in rows if r.hour < first_hour]
    total = sum(r.count for r in current)
    cells: dict[tuple[int, int], int] = defaultdict(int)
    for row in current:
        local = row.hour.astimezone(tz)
        cells[(local.isoweekday(), local.hour)] += row.count
    top_types, top_groups = _shares(current, total)
    return PatternReport(
        start=start,
        end=end,
        timezone=tz.key,
        total=total,
        previous_total=sum(r.count for r in previous),
        fingerprints=_fingerprints(current, previous, max_fingerprints),
        heatmap=[(day, hour, cells.get((day, hour), 0)) for day in range(1, 8) for hour in range(24)],
        top_types=top_types,
        top_groups=top_groups,
        trend=_trend_line(current, start, end, tz),
        patterns=_spikes(current, start, end, tz, len({r.service_id for r in current}) > 1),
    )
