"""Resource thresholds → alerts of one service, sample by sample (REQ-001 ResourceAlertType).

The health service will own the alert lifecycle (acknowledge, notify); until then this module is the
whole of it and is pure, so it can move there as is. Rules, for a limit that is not 0 (off):

    CPU_HIGH         CPU >= cpu_percent
    CPU_SUSTAINED    CPU >= cpu_percent without a break for cpu_sustained_seconds
    MEMORY_HIGH      memory >= memory_percent of the total
    MEMORY_CRITICAL  memory >= memory_critical_percent
    POOL_EXHAUSTED   active connections >= pool_percent of the pool
    QUEUE_BACKLOG    queue depth >= queue_depth

An alert opens once and stays one alert while its condition lasts (deduplicated); it resolves when
the figure drops 5 points below a percentage limit, or below 90 % of the queue limit, so a figure
hovering at the limit does not flap. A sample without the figure (the source does not report it, or
the scrape failed) neither opens nor resolves anything; a limit turned off resolves its open alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.probes.agent.resources.model import AlertType, ResourceAlert, ResourceSample
from services.probes.domain import Thresholds

CLEAR_POINTS = 5.0
QUEUE_CLEAR_RATIO = 0.9


def human_bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


@dataclass(frozen=True)
class _Rule:
    alert_type: AlertType
    limit: float
    value: float | None
    breached: bool
    clear_below: float
    message: str


class ThresholdEvaluator:
    def __init__(self, service_id: str, slug: str, open_alerts: Iterable[ResourceAlert] = ()) -> None:
        self.service_id = service_id
        self.slug = slug
        self._open: dict[AlertType, ResourceAlert] = {a.alert_type: a for a in open_alerts if a.resolved_at is None}
        self._cpu_high_since: datetime | None = None

    @property
    def open_alerts(self) -> list[ResourceAlert]:
        return list(self._open.values())

    def evaluate(self, sample: ResourceSample, limits: Thresholds) -> list[ResourceAlert]:
        """Alerts opened (resolved_at None) and resolved (resolved_at set) by this sample."""
        changes: list[ResourceAlert] = []
        now = sample.sampled_at
        for rule in self._rules(sample, limits):
            current = self._open.get(rule.alert_type)
            if rule.limit <= 0:
                if current is not None:
                    changes.append(self._resolve(current, now))
                continue
            if rule.value is None:
                continue
            if current is None and rule.breached:
                alert = ResourceAlert(
                    id=str(uuid.uuid4()), service_id=self.service_id, service_slug=self.slug,
                    alert_type=rule.alert_type, threshold_value=rule.limit, actual_value=rule.value,
                    triggered_at=now, message=rule.message,
                )  # fmt: skip
                self._open[rule.alert_type] = alert
                changes.append(alert)
            elif current is not None and rule.value < rule.clear_below:
                changes.append(self._resolve(current, now))
        return changes

    def _resolve(self, alert: ResourceAlert, now: datetime) -> ResourceAlert:
        del self._open[alert.alert_type]
        alert.resolved_at = now
        return alert

    def _rules(self, s: ResourceSample, t: Thresholds) -> list[_Rule]:
        cpu, memory, pool = s.cpu_percent, s.memory_percent, s.pool_percent
        if cpu is not None:
            if cpu >= t.cpu_percent > 0:
                self._cpu_high_since = self._cpu_high_since or s.sampled_at
            else:
                self._cpu_high_since = None
        high_for = (s.sampled_at - self._cpu_high_since).total_seconds() if self._cpu_high_since else 0.0
        used = human_bytes(s.memory_used_bytes or 0)
        total = human_bytes(s.memory_total_bytes or 0)
        return [
            _Rule(
                AlertType.CPU_HIGH, t.cpu_percent, cpu, cpu is not None and cpu >= t.cpu_percent,
                t.cpu_percent - CLEAR_POINTS, f"CPU at {cpu or 0:.1f}% is above the {t.cpu_percent:g}% threshold",
            ),
            _Rule(
                AlertType.CPU_SUSTAINED, t.cpu_percent if t.cpu_sustained_seconds > 0 else 0.0, cpu,
                self._cpu_high_since is not None and high_for >= t.cpu_sustained_seconds,
                t.cpu_percent - CLEAR_POINTS,
                f"CPU has stayed above {t.cpu_percent:g}% for {high_for / 60:.0f} min (now {cpu or 0:.1f}%)",
            ),
            _Rule(
                AlertType.MEMORY_HIGH, t.memory_percent, memory, memory is not None and memory >= t.memory_percent,
                t.memory_percent - CLEAR_POINTS,
                f"memory at {memory or 0:.1f}% ({used} of {total}) is above the {t.memory_percent:g}% threshold",
            ),
            _Rule(
                AlertType.MEMORY_CRITICAL, t.memory_critical_percent, memory,
                memory is not None and memory >= t.memory_critical_percent, t.memory_critical_percent - CLEAR_POINTS,
                f"memory at {memory or 0:.1f}% ({used} of {total}) is above the critical "
                f"{t.memory_critical_percent:g}% threshold",
            ),
            _Rule(
                AlertType.POOL_EXHAUSTED, t.pool_percent, pool, pool is not None and pool >= t.pool_percent,
                t.pool_percent - CLEAR_POINTS,
                f"connection pool {s.pool_active or 0} of {s.pool_total or 0} in use ({pool or 0:.0f}%), "
                f"at or above {t.pool_percent:g}%",
            ),
            _Rule(
                AlertType.QUEUE_BACKLOG, float(t.queue_depth), None if s.queue_depth is None else float(s.queue_depth),
                s.queue_depth is not None and s.queue_depth >= t.queue_depth, t.queue_depth * QUEUE_CLEAR_RATIO,
                f"queue holds {s.queue_depth or 0:,} items, at or above the backlog threshold of {t.queue_depth:,}",
            ),
        ]  # fmt: skip
