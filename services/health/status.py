"""The status rules: what a connected service's latest check and resource figures say about it. Pure.

From the latest periodic check (a probe agent's `ServiceCheckState`), in this order:

    disabled service                                   UNKNOWN   "disabled; not checked"
    never checked                                      UNKNOWN   "not checked yet"
    circuit breaker OPEN (checks paused)               OFFLINE   "circuit breaker open since 14:02 UTC (…; last: TYPE)"
    failed, >= 3 consecutive failures                  OFFLINE   "3 consecutive checks failed: TYPE (detail)"
    failed, 1-2 consecutive failures                   DEGRADED  "1 check failed: TYPE (detail)"
    passed but degraded (Elasticsearch yellow, ...)    DEGRADED  "degraded: <the probe's summary>"
    passed but rated SLOW                              DEGRADED  "slow: 1 551 ms against 1 000 ms"
    passed                                             ONLINE    "<the probe's summary>"

Resource figures then may lower an ONLINE service to DEGRADED (never to OFFLINE, never raise one):
the figures that mean users already wait, not momentary spikes. With the service's thresholds
(a limit of 0 is off):

    memory at or above memory_critical_percent
    connection pool use at or above pool_percent
    queue depth at or above queue_depth
    CPU averaged over the last hour at or above cpu_percent (sustained load, not a spike)

A CPU or memory spike above the plain limits raises a resource alert but leaves the status alone.
Once a service is under pressure it leaves it only 5 points below a percentage limit or below 90 %
of the queue limit, as the resource alerts do, so a figure hovering at a limit does not flap. Figures
older than `STALE_FIGURES` are ignored: a sampler that stopped must not pin a status.

A service whose checks stop arriving (no probe agent holds it) is UNKNOWN after `stale_after`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.health.domain import ResourceSnapshot, ServiceStatus, Thresholds

OFFLINE_AFTER_FAILURES = 3
STALE_FIGURES = timedelta(minutes=5)
CLEAR_POINTS = 5.0
QUEUE_CLEAR_RATIO = 0.9
_DETAIL_LENGTH = 120
BREAKER_OPEN_ERROR = "CIRCUIT_BREAKER_OPEN"

NOT_CHECKED = "not checked yet"
DISABLED = "disabled; not checked"


class SpeedRating(StrEnum):
    FAST = "FAST"
    NORMAL = "NORMAL"
    SLOW = "SLOW"


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(frozen=True)
class CheckState:
    """The outcome of one periodic check, as a probe agent hands it over."""

    service_id: str
    slug: str
    checked_at: datetime
    success: bool
    latency_ms: float = 0.0
    degraded: bool = False
    summary: str = ""
    speed: SpeedRating | None = None
    consecutive_failures: int = 0
    breaker: BreakerState | None = None
    # CommunicationErrorType without its prefix ("SERVICE_UNAVAILABLE"); empty when it passed.
    error_type: str = ""
    # HTTPS: when the server's certificate expires.
    tls_not_after: datetime | None = None

    @property
    def skipped(self) -> bool:
        """Not sent, because the circuit breaker was open: it says nothing about latency."""
        return self.error_type == BREAKER_OPEN_ERROR


@dataclass(frozen=True)
class Verdict:
    status: ServiceStatus
    reason: str


def number(value: float) -> str:
    """1551.4 -> "1 551": grouped with spaces, as the reasons are read by people."""
    return f"{value:,.0f}".replace(",", " ")


def _percent(value: float) -> str:
    return f"{value:.0f} %"


def _detail(state: CheckState) -> str:
    # The probe's summary is one line like "HTTP 503 Service Unavailable: the service is unavailable";
    # its first clause is the useful part next to the error type.
    first = state.summary.split(": ", 1)[0].split("; ", 1)[0].strip()
    if len(first) > _DETAIL_LENGTH:
        first = first[: _DETAIL_LENGTH - 1] + "…"
    kind = state.error_type or "failure"
    return f"{kind} ({first})" if first and first != kind else kind


def _at(moment: datetime, reference: datetime) -> str:
    same_day = moment.date() == reference.date()
    return f"{moment:%H:%M} UTC" if same_day else f"{moment:%Y-%m-%d %H:%M} UTC"


def breaker_opened_at(state: CheckState, previous: datetime | None) -> datetime | None:
    """When the breaker of this state's service opened: kept while it stays open, cleared when it closes."""
    if state.breaker is not BreakerState.OPEN:
        return None
    return previous or state.checked_at


def failure_cause(state: CheckState, previous: str) -> str:
    """The last real failure after this check: a failed check's own, kept across the checks an open breaker
    did not send, cleared by a success."""
    if state.success:
        return ""
    return previous if state.skipped else _detail(state)


def judge_check(
    state: CheckState | None,
    *,
    enabled: bool,
    slow_ms: float,
    breaker_open_since: datetime | None = None,
    last_failure: str = "",
) -> Verdict:
    """The status a service's latest check gives it (the table in the module docstring)."""
    if not enabled:
        return Verdict(ServiceStatus.UNKNOWN, DISABLED)
    if state is None:
        return Verdict(ServiceStatus.UNKNOWN, NOT_CHECKED)
    failures = max(state.consecutive_failures, 0 if state.success else 1)
    if state.breaker is BreakerState.OPEN:
        since = breaker_open_since or state.checked_at
        cause = last_failure or ("" if state.skipped else _detail(state))
        last = f"; last: {cause}" if cause else ""
        return Verdict(
            ServiceStatus.OFFLINE,
            f"circuit breaker open since {_at(since, state.checked_at)} ({failures} consecutive checks failed{last})",
        )
    if not state.success:
        status = ServiceStatus.OFFLINE if failures >= OFFLINE_AFTER_FAILURES else ServiceStatus.DEGRADED
        counted = "1 check failed" if failures == 1 else f"{failures} consecutive checks failed"
        return Verdict(status, f"{counted}: {_detail(state)}")
    if state.degraded:
        return Verdict(ServiceStatus.DEGRADED, f"degraded: {state.summary or 'the service reports a degraded state'}")
    if state.speed is SpeedRating.SLOW:
        return Verdict(ServiceStatus.DEGRADED, f"slow: {number(state.latency_ms)} ms against {number(slow_ms)} ms")
    return Verdict(ServiceStatus.ONLINE, state.summary or "check passed")


def resource_pressure(
    figures: ResourceSnapshot | None, limits: Thresholds, *, now: datetime, under_pressure: bool
) -> str:
    """Why the resource figures degrade the service ("" when they do not), in one line."""
    if figures is None or now - figures.sampled_at > STALE_FIGURES:
        return ""
    # Leaving pressure takes a margin below the limit, entering it takes the limit itself.
    margin = CLEAR_POINTS if under_pressure else 0.0
    ratio = QUEUE_CLEAR_RATIO if under_pressure else 1.0
    reasons: list[str] = []
    if limits.memory_critical_percent > 0 and figures.memory_percent >= limits.memory_critical_percent - margin:
        reasons.append(
            f"memory at {_percent(figures.memory_percent)} (critical at {_percent(limits.memory_critical_percent)})"
        )
    if limits.pool_percent > 0 and figures.connection_pool_total > 0:
        used = 100.0 * figures.connection_pool_active / figures.connection_pool_total
        if used >= limits.pool_percent - margin:
            reasons.append(
                f"connection pool {figures.connection_pool_active} of {figures.connection_pool_total} in use"
            )
    if limits.queue_depth > 0 and figures.queue_depth >= math.ceil(limits.queue_depth * ratio):
        reasons.append(f"queue backlog of {number(figures.queue_depth)} (limit {number(limits.queue_depth)})")
    if limits.cpu_percent > 0 and figures.cpu_average >= limits.cpu_percent - margin:
        reasons.append(
            f"CPU averaged {_percent(figures.cpu_average)} over the last hour (limit {_percent(limits.cpu_percent)})"
        )
    return "; ".join(reasons)


def combine(check: Verdict, pressure: str) -> Verdict:
    """The status shown: the check's verdict, lowered to DEGRADED by resource pressure when it was ONLINE."""
    if not pressure or check.status in (ServiceStatus.UNKNOWN, ServiceStatus.OFFLINE):
        return check
    if check.status is ServiceStatus.ONLINE:
        return Verdict(ServiceStatus.DEGRADED, pressure)
    return Verdict(ServiceStatus.DEGRADED, f"{check.reason}; {pressure}")


def stale_after(interval_seconds: int) -> timedelta:
    """How long without a check before the last one no longer vouches for the service: three intervals
    and a minute, so a lease changing hands or a slow flush never counts as silence."""
    return timedelta(seconds=3 * interval_seconds + 60)


def judge_silence(last_checked: datetime, interval_seconds: int) -> Verdict:
    """The verdict for a service whose checks stopped arriving."""
    return Verdict(
        ServiceStatus.UNKNOWN,
        f"no check since {last_checked:%Y-%m-%d %H:%M} UTC (expected every {interval_seconds} s); "
        "is a probe agent running?",
    )
