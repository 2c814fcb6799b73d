"""The system at a glance: one row per service and the overall status. Pure.

The overall status is the worst status of the enabled services, with UNKNOWN services left out:
ONLINE (healthy) when every checked service is online, DEGRADED when some are degraded, OFFLINE
(unhealthy) when at least one is offline. A service not checked yet says nothing either way; only
when no enabled service has been checked is the overall status UNKNOWN. Disabled services are
listed but not counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.health.domain import ServiceStatus, ServiceType

# Worst first.
SEVERITY = (ServiceStatus.OFFLINE, ServiceStatus.DEGRADED, ServiceStatus.ONLINE)
_NAMES_SHOWN = 3


@dataclass(frozen=True)
class Component:
    """A row of the summary."""

    service_id: str
    slug: str
    name: str
    type: ServiceType
    status: ServiceStatus
    status_reason: str
    enabled: bool
    average_latency_ms: float | None = None
    uptime_percent: float | None = None
    cpu_percent: float | None = None
    memory_percent: float | None = None
    last_checked: datetime | None = None
    last_successful: datetime | None = None
    status_changed_at: datetime | None = None


@dataclass(frozen=True)
class HealthSummary:
    overall_status: ServiceStatus
    overall_reason: str
    counts: dict[ServiceStatus, int]
    disabled: int
    components: tuple[Component, ...]
    generated_at: datetime


def _names(components: Sequence[Component]) -> str:
    names = [c.name for c in components[:_NAMES_SHOWN]]
    more = len(components) - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _services(n: int) -> str:
    return "1 service" if n == 1 else f"{n} services"


def summarize(components: Sequence[Component], generated_at: datetime) -> HealthSummary:
    """Counts and overall status of `components` (already in display order)."""
    enabled = [c for c in components if c.enabled]
    counts = Counter(c.status for c in enabled)
    full = {status: counts.get(status, 0) for status in ServiceStatus}
    disabled = len(components) - len(enabled)
    total = len(enabled)
    for status in SEVERITY:
        if not counts.get(status):
            continue
        if status is ServiceStatus.ONLINE:
            reason = f"all {_services(total)} online" if counts[status] == total else (
                f"{counts[status]} of {total} services online, {full[ServiceStatus.UNKNOWN]} not checked yet"
            )  # fmt: skip
        else:
            worst = [c for c in enabled if c.status is status]
            reason = f"{len(worst)} of {_services(total)} {status.value.lower()}: {_names(worst)}"
        return HealthSummary(status, reason, full, disabled, tuple(components), generated_at)
    reason = "no services registered" if total == 0 else f"none of {_services(total)} checked yet"
    return HealthSummary(ServiceStatus.UNKNOWN, reason, full, disabled, tuple(components), generated_at)
