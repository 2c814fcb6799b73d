"""The alert rules, pure: observations in, `Signal`s (firing or cleared) out.

    jobs.failure_rate    more than N failed jobs of one type and tenant within M minutes   critical
    jobs.failed          a job failed permanently or exhausted its automatic retries        error
    service.offline      a connected service failed N consecutive checks                    critical
    service.degraded     a connected service degraded for M minutes                         warning
    tls.expiring         a connected service's TLS certificate expires within N days         warning
    errors.spike         a service's communication errors of one group in the last M minutes
                         reach N and three times their rate of the hour before               error
    resource.<type>      the six resource alert types the probes evaluate against thresholds
                         (cpu_high, cpu_sustained, memory_high, memory_critical, pool_exhausted,
                         queue_backlog)

Each signal carries the labels `rule`, `severity` and, where they apply, `service` (the slug),
`tenant` and `job_type`, and a summary a person can act on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum

from services.health.alerts.domain import Signal
from services.health.alerts.notice import Severity
from services.health.domain import InvalidFieldError
from services.health.status import CheckState


class JobStatus(StrEnum):
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class JobOutcome:
    """A finished job, as the jobs service's outcome feed reports it."""

    job_id: str
    job_type: str
    tenant: str
    status: JobStatus
    finished_at: datetime
    attempt: int = 1
    max_attempts: int = 1
    error_message: str = ""
    error_category: str = ""
    will_retry: bool = False

    @property
    def final_failure(self) -> bool:
        return self.status is JobStatus.FAILED and not self.will_retry


@dataclass(frozen=True)
class RuleSettings:
    """The rules' parameters (the `alerts:` section of the declarative file)."""

    job_failure_rate_count: int = 5
    job_failure_rate_minutes: int = 10
    service_offline_checks: int = 3
    service_degraded_minutes: int = 5
    error_spike_count: int = 10
    error_spike_minutes: int = 10
    tls_expiry_days: int = 14

    def __post_init__(self) -> None:
        limits = {
            "job_failure_rate_count": (1, 100_000),
            "job_failure_rate_minutes": (1, 1440),
            "service_offline_checks": (1, 1000),
            "service_degraded_minutes": (1, 1440),
            "error_spike_count": (1, 100_000),
            "error_spike_minutes": (1, 60),
            "tls_expiry_days": (1, 365),
        }
        for f in fields(self):
            low, high = limits[f.name]
            value = getattr(self, f.name)
            if not isinstance(value, int) or not low <= value <= high:
                raise InvalidFieldError(f.name, f"must be a whole number from {low} to {high} (got {value!r})")

    @property
    def failure_window(self) -> timedelta:
        return timedelta(minutes=self.job_failure_rate_minutes)


@dataclass(frozen=True)
class RuleInfo:
    """A rule as `ListAlertRules` shows it."""

    name: str
    severity: Severity
    description: str
    parameters: dict[str, str] = field(default_factory=dict)


RESOURCE_SEVERITY: dict[str, Severity] = {
    "cpu_high": Severity.WARNING,
    "cpu_sustained": Severity.ERROR,
    "memory_high": Severity.WARNING,
    "memory_critical": Severity.CRITICAL,
    "pool_exhausted": Severity.ERROR,
    "queue_backlog": Severity.WARNING,
}


def catalog(settings: RuleSettings) -> list[RuleInfo]:
    s = settings
    rules = [
        RuleInfo(
            "jobs.failure_rate",
            Severity.CRITICAL,
            f"more than {s.job_failure_rate_count} failed jobs of one type and tenant within "
            f"{s.job_failure_rate_minutes} minutes",
            {"count": str(s.job_failure_rate_count), "minutes": str(s.job_failure_rate_minutes)},
        ),
        RuleInfo("jobs.failed", Severity.ERROR, "a job failed permanently or exhausted its automatic retries"),
        RuleInfo(
            "service.offline",
            Severity.CRITICAL,
            f"a connected service failed {s.service_offline_checks} consecutive checks",
            {"checks": str(s.service_offline_checks)},
        ),
        RuleInfo(
            "service.degraded",
            Severity.WARNING,
            f"a connected service stayed degraded for {s.service_degraded_minutes} minutes",
            {"minutes": str(s.service_degraded_minutes)},
        ),
        RuleInfo(
            "tls.expiring",
            Severity.WARNING,
            f"a connected service's TLS certificate expires within {s.tls_expiry_days} days",
            {"days": str(s.tls_expiry_days)},
        ),
        RuleInfo(
            "errors.spike",
            Severity.ERROR,
            f"at least {s.error_spike_count} communication errors of one group within {s.error_spike_minutes} "
            f"minutes, and {SPIKE_FACTOR:g} times the rate of the hour before",
            {"count": str(s.error_spike_count), "minutes": str(s.error_spike_minutes)},
        ),
    ]
    for kind, severity in RESOURCE_SEVERITY.items():
        rules.append(
            RuleInfo(f"resource.{kind}", severity, f"{kind.replace('_', ' ')} above the service's resource threshold")
        )
    return rules


# -- jobs -------------------------------------------------------------------------------------------


def job_failed_signal(outcome: JobOutcome) -> Signal | None:
    """Firing for a final failure; cleared when a job of the same type and tenant completes."""
    labels = {"job_type": outcome.job_type, "tenant": outcome.tenant}
    if outcome.final_failure:
        why = "exhausted its automatic retries" if outcome.attempt > 1 else "failed permanently"
        category = f" [{outcome.error_category}]" if outcome.error_category else ""
        return Signal(
            rule="jobs.failed",
            severity=Severity.ERROR,
            labels=labels,
            summary=f"{outcome.job_type} job {outcome.job_id[:8]} {why} (attempt {outcome.attempt})",
            description=f"{outcome.error_message or 'no error message'}{category}",
            at=outcome.finished_at,
            annotations={"job_id": outcome.job_id, "attempt": str(outcome.attempt)},
        )
    if outcome.status is JobStatus.COMPLETED:
        return Signal(
            rule="jobs.failed",
            severity=Severity.ERROR,
            labels=labels,
            summary=f"{outcome.job_type} job {outcome.job_id[:8]} completed",
            description="a later job of this type completed",
            at=outcome.finished_at,
            firing=False,
        )
    return None


def failure_rate_signal(job_type: str, tenant: str, failed: int, settings: RuleSettings, at: datetime) -> Signal:
    """Firing while more than the allowed number of jobs failed within the window."""
    limit, minutes = settings.job_failure_rate_count, settings.job_failure_rate_minutes
    return Signal(
        rule="jobs.failure_rate",
        severity=Severity.CRITICAL,
        labels={"job_type": job_type, "tenant": tenant},
        summary=f"{failed} {job_type} jobs failed in the last {minutes} minutes"
        + (f" for tenant {tenant}" if tenant else ""),
        description=f"more than {limit} failed jobs of one type within {minutes} minutes",
        at=at,
        firing=failed > limit,
        annotations={"failed": str(failed)},
    )


# -- connected services ----------------------------------------------------------------------------


def offline_signal(state: CheckState, settings: RuleSettings) -> Signal | None:
    """Firing after N consecutive failed checks; cleared by a passing check."""
    n = settings.service_offline_checks
    labels = {"service": state.slug}
    if state.success:
        return Signal("service.offline", Severity.CRITICAL, labels, f"{state.slug} is reachable again",
                      state.summary, state.checked_at, firing=False)  # fmt: skip
    if state.consecutive_failures < n:
        return None
    return Signal(
        rule="service.offline",
        severity=Severity.CRITICAL,
        labels=labels,
        summary=f"{state.slug} is offline: {state.consecutive_failures} consecutive checks failed",
        description=state.summary or state.error_type or "the check failed",
        at=state.checked_at,
        annotations={"service_id": state.service_id, "error_type": state.error_type},
    )


@dataclass(frozen=True)
class ServiceStatusSeen:
    """A connected service's aggregated status (health.services) after a batch of checks was applied."""

    service_id: str
    slug: str
    status: str  # ONLINE, DEGRADED, OFFLINE, UNKNOWN
    since: datetime | None  # when the status last changed


def degraded_signal(seen: ServiceStatusSeen, at: datetime, settings: RuleSettings) -> Signal | None:
    """Firing once the service's aggregated status has been DEGRADED for M minutes (slow, degraded or
    failing now and then; see services/health/status.py); cleared by any other status. Read from the
    registry, so every replica agrees whichever of them consumed the checks."""
    labels = {"service": seen.slug}
    if seen.status != "DEGRADED":
        return Signal("service.degraded", Severity.WARNING, labels, f"{seen.slug} is no longer degraded",
                      f"now {seen.status.lower()}", at, firing=False)  # fmt: skip
    if seen.since is None or at - seen.since < timedelta(minutes=settings.service_degraded_minutes):
        return None
    held = int((at - seen.since).total_seconds() // 60)
    return Signal(
        rule="service.degraded",
        severity=Severity.WARNING,
        labels=labels,
        summary=f"{seen.slug} has been degraded for {held} minutes",
        description=f"degraded since {seen.since:%Y-%m-%d %H:%M} UTC",
        at=at,
        annotations={"service_id": seen.service_id},
    )


def tls_signal(state: CheckState, settings: RuleSettings) -> Signal | None:
    """Firing while the certificate an HTTPS check saw expires within N days; cleared by a later one."""
    if state.tls_not_after is None:
        return None
    left = state.tls_not_after - state.checked_at
    days = settings.tls_expiry_days
    when = f"{state.tls_not_after:%Y-%m-%d %H:%M} UTC"
    return Signal(
        rule="tls.expiring",
        severity=Severity.WARNING,
        labels={"service": state.slug},
        summary=f"the TLS certificate of {state.slug} expires in {max(left.days, 0)} days ({when})",
        description=f"renew it before {when}; alerts start {days} days ahead",
        at=state.checked_at,
        firing=left < timedelta(days=days),
        annotations={"service_id": state.service_id, "not_after": state.tls_not_after.isoformat()},
    )


# -- resources --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceAlertSeen:
    """A resource alert the probes opened (resolved_at None) or resolved."""

    service_id: str
    kind: str  # a key of RESOURCE_SEVERITY
    threshold: float
    actual: float
    message: str
    triggered_at: datetime
    resolved_at: datetime | None = None
    service_slug: str = ""  # filled from the registry


def resource_signal(seen: ResourceAlertSeen) -> Signal:
    firing = seen.resolved_at is None
    return Signal(
        rule=f"resource.{seen.kind}",
        severity=RESOURCE_SEVERITY[seen.kind],
        labels={"service": seen.service_slug},
        summary=f"{seen.service_slug}: {seen.message}",
        description=f"threshold {seen.threshold:g}, actual {seen.actual:g}",
        at=seen.triggered_at if firing else (seen.resolved_at or seen.triggered_at),
        firing=firing,
        annotations={"service_id": seen.service_id, "threshold": f"{seen.threshold:g}", "actual": f"{seen.actual:g}"},
    )


# -- communication errors ---------------------------------------------------------------------------

SPIKE_FACTOR = 3.0
SPIKE_BASELINE = timedelta(hours=1)
_SPIKE_MEMORY = 20_000  # errors remembered per service and group, at most


@dataclass(frozen=True)
class ErrorSeen:
    """A communication error the probes recorded (periodic checks; connection tests aside)."""

    service_id: str
    group: str  # NETWORK, TIMEOUT, PROTOCOL, AUTHENTICATION, DATA, SERVICE
    at: datetime


class SpikeDetector:
    """Errors per (service, group) in the recent window against their rate in the hour before it.

    The pattern detector's idea of a spike (ADR 0012: at least N errors and 3 times the usual rate)
    applied live: kept in memory, a restart forgets the baseline, which only delays a spike's alert by
    up to one window."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], deque[datetime]] = {}

    def observe(self, error: ErrorSeen) -> tuple[str, str]:
        key = (error.service_id, error.group)
        times = self._seen.setdefault(key, deque(maxlen=_SPIKE_MEMORY))
        times.append(error.at)
        return key

    def keys(self) -> list[tuple[str, str]]:
        return list(self._seen)

    def counts(self, key: tuple[str, str], now: datetime, window: timedelta) -> tuple[int, float]:
        """(errors within the window, the hour before's average per window); forgets older errors."""
        times = self._seen.get(key)
        if not times:
            return 0, 0.0
        oldest = now - window - SPIKE_BASELINE
        while times and times[0] < oldest:
            times.popleft()
        if not times:
            del self._seen[key]
            return 0, 0.0
        recent = sum(1 for t in times if t >= now - window)
        before = len(times) - recent
        return recent, before / (SPIKE_BASELINE / window)


def spike_signal(slug: str, group: str, recent: int, baseline: float, settings: RuleSettings, at: datetime) -> Signal:
    """Firing while the window holds at least N errors and 3 times the usual number."""
    minutes = settings.error_spike_minutes
    firing = recent >= settings.error_spike_count and recent >= SPIKE_FACTOR * max(baseline, 1.0)
    return Signal(
        rule="errors.spike",
        severity=Severity.ERROR,
        labels={"service": slug, "error_group": group.lower()},
        summary=f"{recent} {group.lower()} errors from {slug} in the last {minutes} minutes",
        description=f"usually {baseline:.1f} per {minutes} minutes over the hour before",
        at=at,
        firing=firing,
        annotations={"errors": str(recent), "baseline": f"{baseline:.1f}"},
    )
