"""Rolling figures of one service: CPU average over the last hour, CPU and memory peaks over the last day.

Kept as per-minute summaries for the last hour and per-hour maxima for the last day, so each sample
costs a few dozen additions however long the window. A new lease holder seeds them from the stored
minute rollups, so the figures do not restart from zero when an agent takes over.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.probes.agent.resources.model import ResourceMetrics, ResourceSample

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass
class MinuteSummary:
    start: datetime
    cpu_count: int = 0
    cpu_sum: float = 0.0
    cpu_max: float = 0.0
    memory_max: int = 0


@dataclass
class _HourPeak:
    start: datetime
    cpu_max: float = 0.0
    memory_max: int = 0


def _floor(at: datetime, unit: timedelta) -> datetime:
    if unit == HOUR:
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(second=0, microsecond=0)


class RollingFigures:
    def __init__(self) -> None:
        self._minutes: deque[MinuteSummary] = deque()
        self._hours: deque[_HourPeak] = deque()
        self._last_cpu: float | None = None

    def seed(self, minutes: list[MinuteSummary]) -> None:
        """Summaries from storage, oldest first; only before the first sample."""
        for summary in minutes:
            hour = _floor(summary.start, HOUR)
            if not self._hours or self._hours[-1].start != hour:
                self._hours.append(_HourPeak(hour))
            peak = self._hours[-1]
            peak.cpu_max = max(peak.cpu_max, summary.cpu_max)
            peak.memory_max = max(peak.memory_max, summary.memory_max)
            self._minutes.append(summary)

    def add(self, sample: ResourceSample) -> None:
        at = sample.sampled_at
        minute, hour = _floor(at, timedelta(minutes=1)), _floor(at, HOUR)
        if not self._minutes or self._minutes[-1].start != minute:
            self._minutes.append(MinuteSummary(minute))
        if not self._hours or self._hours[-1].start != hour:
            self._hours.append(_HourPeak(hour))
        summary, peak = self._minutes[-1], self._hours[-1]
        if sample.cpu_percent is not None:
            self._last_cpu = sample.cpu_percent
            summary.cpu_count += 1
            summary.cpu_sum += sample.cpu_percent
            summary.cpu_max = max(summary.cpu_max, sample.cpu_percent)
            peak.cpu_max = max(peak.cpu_max, sample.cpu_percent)
        if sample.memory_used_bytes is not None:
            summary.memory_max = max(summary.memory_max, sample.memory_used_bytes)
            peak.memory_max = max(peak.memory_max, sample.memory_used_bytes)
        while self._minutes and self._minutes[0].start <= at - HOUR:
            self._minutes.popleft()
        while self._hours and self._hours[0].start <= at - DAY:
            self._hours.popleft()

    def metrics(self, sample: ResourceSample) -> ResourceMetrics:
        """REQ-001 ResourceMetrics as of `sample` (added first)."""
        count = sum(m.cpu_count for m in self._minutes)
        average = sum(m.cpu_sum for m in self._minutes) / count if count else 0.0
        cpu = sample.cpu_percent if sample.cpu_percent is not None else (self._last_cpu or 0.0)
        memory_used = sample.memory_used_bytes or 0
        return ResourceMetrics(
            timestamp=sample.sampled_at,
            cpu_percent=cpu,
            cpu_average=average,
            cpu_peak=max((h.cpu_max for h in self._hours), default=cpu),
            memory_used_bytes=memory_used,
            memory_total_bytes=sample.memory_total_bytes or 0,
            memory_percent=sample.memory_percent or 0.0,
            memory_peak_bytes=max((h.memory_max for h in self._hours), default=memory_used),
            connection_pool_active=sample.pool_active or 0,
            connection_pool_total=sample.pool_total or 0,
            thread_count=sample.threads or 0,
            queue_depth=sample.queue_depth or 0,
            processing_rate_per_minute=sample.processing_rate or 0.0,
        )
