"""The status rules (services/health/status.py) and the overall status (summary.py), as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.health.domain import ResourceSnapshot, ServiceStatus, ServiceType, Thresholds
from services.health.overview.summary import Component, summarize
from services.health.status import (
    BreakerState,
    CheckState,
    SpeedRating,
    Verdict,
    breaker_opened_at,
    combine,
    failure_cause,
    judge_check,
    judge_silence,
    resource_pressure,
)

AT = datetime(2026, 1, 2, 14, 5, tzinfo=UTC)
ONLINE, DEGRADED, OFFLINE, UNKNOWN = (
    ServiceStatus.ONLINE,
    ServiceStatus.DEGRADED,
    ServiceStatus.OFFLINE,
    ServiceStatus.UNKNOWN,
)
HTTP_503 = "HTTP 503 Service Unavailable: the service is temporarily unavailable"


def state(success: bool = True, **fields: object) -> CheckState:
    values: dict[str, object] = {"service_id": "s1", "slug": "erp", "checked_at": AT, "success": success}
    values.update(fields)
    return CheckState(**values)  # type: ignore[arg-type]


def failed(n: int, **fields: object) -> CheckState:
    values: dict[str, object] = {"error_type": "SERVICE_UNAVAILABLE", "summary": HTTP_503}
    values.update(fields)
    return state(False, consecutive_failures=n, **values)


@pytest.mark.parametrize(
    ("check", "enabled", "expected"),
    [
        (None, True, Verdict(UNKNOWN, "not checked yet")),
        (state(), False, Verdict(UNKNOWN, "disabled; not checked")),
        (failed(5), False, Verdict(UNKNOWN, "disabled; not checked")),
        (state(summary="HTTP 200 in 63 ms", latency_ms=63), True, Verdict(ONLINE, "HTTP 200 in 63 ms")),
        (state(speed=SpeedRating.NORMAL, latency_ms=400), True, Verdict(ONLINE, "check passed")),
        (
            state(degraded=True, summary="cluster status yellow in 12 ms"),
            True,
            Verdict(DEGRADED, "degraded: cluster status yellow in 12 ms"),
        ),
        (
            state(speed=SpeedRating.SLOW, latency_ms=1551.4),
            True,
            Verdict(DEGRADED, "slow: 1 551 ms against 1 000 ms"),
        ),
        (failed(1), True, Verdict(DEGRADED, "1 check failed: SERVICE_UNAVAILABLE (HTTP 503 Service Unavailable)")),
        (
            failed(2),
            True,
            Verdict(DEGRADED, "2 consecutive checks failed: SERVICE_UNAVAILABLE (HTTP 503 Service Unavailable)"),
        ),
        (
            failed(3),
            True,
            Verdict(OFFLINE, "3 consecutive checks failed: SERVICE_UNAVAILABLE (HTTP 503 Service Unavailable)"),
        ),
        (failed(0), True, Verdict(DEGRADED, "1 check failed: SERVICE_UNAVAILABLE (HTTP 503 Service Unavailable)")),
        (state(False, consecutive_failures=4), True, Verdict(OFFLINE, "4 consecutive checks failed: failure")),
        (
            failed(5, breaker=BreakerState.OPEN),
            True,
            Verdict(
                OFFLINE,
                "circuit breaker open since 14:05 UTC (5 consecutive checks failed; "
                "last: SERVICE_UNAVAILABLE (HTTP 503 Service Unavailable))",
            ),
        ),
        (
            failed(1, breaker=BreakerState.HALF_OPEN),
            True,
            Verdict(DEGRADED, "1 check failed: SERVICE_UNAVAILABLE (HTTP 503 Service Unavailable)"),
        ),
    ],
)
def test_a_check_gives_the_status_of_the_table(check: CheckState | None, enabled: bool, expected: Verdict) -> None:
    """Each row of the status table in status.py: passed, degraded, slow, 1-2 and 3+ failures, open breaker."""
    assert judge_check(check, enabled=enabled, slow_ms=1000) == expected


def test_an_open_breaker_says_since_when_it_has_been_open() -> None:
    """The breaker's opening time is kept while it stays open, shown with the date when it is not today."""
    first = failed(5, breaker=BreakerState.OPEN, checked_at=AT - timedelta(days=1, minutes=3))
    opened = breaker_opened_at(first, None)
    later = failed(5, breaker=BreakerState.OPEN, error_type="CIRCUIT_BREAKER_OPEN")
    assert breaker_opened_at(later, opened) == opened
    assert later.skipped
    verdict = judge_check(later, enabled=True, slow_ms=1000, breaker_open_since=opened)
    assert verdict == Verdict(OFFLINE, "circuit breaker open since 2026-01-01 14:02 UTC (5 consecutive checks failed)")
    assert breaker_opened_at(state(breaker=BreakerState.CLOSED), opened) is None


def test_an_open_breaker_keeps_the_last_real_cause_beside_it() -> None:
    """The check that opened the breaker names the cause; the skipped checks after it keep that cause in the
    reason; a success clears it."""
    opening = failed(3, breaker=BreakerState.OPEN, error_type="CERTIFICATE_EXPIRED",
                     summary="the TLS certificate of erp expired on 2026-01-02")  # fmt: skip
    cause = failure_cause(opening, "")
    assert cause == "CERTIFICATE_EXPIRED (the TLS certificate of erp expired on 2026-01-02)"
    skipped = failed(3, breaker=BreakerState.OPEN, error_type="CIRCUIT_BREAKER_OPEN", summary="circuit breaker open")
    assert failure_cause(skipped, cause) == cause
    verdict = judge_check(skipped, enabled=True, slow_ms=1000, breaker_open_since=AT, last_failure=cause)
    assert verdict.reason.endswith(f"(3 consecutive checks failed; last: {cause})")
    assert failure_cause(state(), cause) == ""


LIMITS = Thresholds()  # memory critical 95 %, pool 90 %, queue 1000, CPU 80 %
FRESH = AT - timedelta(seconds=5)


@pytest.mark.parametrize(
    ("figures", "under_pressure", "expected"),
    [
        (
            ResourceSnapshot(
                FRESH, cpu_percent=99, memory_percent=92, connection_pool_active=8, connection_pool_total=10
            ),
            False,
            "",
        ),
        (ResourceSnapshot(FRESH, memory_percent=96.2), False, "memory at 96 % (critical at 95 %)"),
        (
            ResourceSnapshot(FRESH, connection_pool_active=9, connection_pool_total=10),
            False,
            "connection pool 9 of 10 in use",
        ),
        (ResourceSnapshot(FRESH, queue_depth=1250), False, "queue backlog of 1 250 (limit 1 000)"),
        (ResourceSnapshot(FRESH, cpu_average=87), False, "CPU averaged 87 % over the last hour (limit 80 %)"),
        (ResourceSnapshot(FRESH, memory_percent=92), True, "memory at 92 % (critical at 95 %)"),
        (ResourceSnapshot(FRESH, memory_percent=89), True, ""),
        (ResourceSnapshot(FRESH, queue_depth=950), True, "queue backlog of 950 (limit 1 000)"),
        (ResourceSnapshot(AT - timedelta(minutes=6), memory_percent=99), False, ""),
        (None, True, ""),
        (
            ResourceSnapshot(FRESH, memory_percent=97, queue_depth=2000),
            False,
            "memory at 97 % (critical at 95 %); queue backlog of 2 000 (limit 1 000)",
        ),
    ],
)
def test_resource_figures_put_a_service_under_pressure_only_when_users_wait(
    figures: ResourceSnapshot | None, under_pressure: bool, expected: str
) -> None:
    """Critical memory, a full pool, a backlog or an hour of high CPU degrade; spikes and stale figures do not;
    leaving pressure needs a margin below the limit."""
    assert resource_pressure(figures, LIMITS, now=AT, under_pressure=under_pressure) == expected


def test_a_limit_of_zero_turns_its_rule_off() -> None:
    """Thresholds set to 0 never put a service under pressure."""
    off = Thresholds(cpu_percent=0, memory_critical_percent=0, pool_percent=0, queue_depth=0)
    figures = ResourceSnapshot(FRESH, cpu_average=100, memory_percent=100, connection_pool_active=10,
                               connection_pool_total=10, queue_depth=10**6)  # fmt: skip
    assert resource_pressure(figures, off, now=AT, under_pressure=False) == ""


@pytest.mark.parametrize(
    ("check", "pressure", "expected"),
    [
        (Verdict(ONLINE, "HTTP 200 in 5 ms"), "", Verdict(ONLINE, "HTTP 200 in 5 ms")),
        (Verdict(ONLINE, "HTTP 200 in 5 ms"), "connection pool 10 of 10 in use", Verdict(DEGRADED, "connection pool 10 of 10 in use")),
        (Verdict(DEGRADED, "slow: 1 200 ms against 1 000 ms"), "queue backlog of 2 000 (limit 1 000)",
         Verdict(DEGRADED, "slow: 1 200 ms against 1 000 ms; queue backlog of 2 000 (limit 1 000)")),
        (Verdict(OFFLINE, "3 consecutive checks failed: X"), "memory at 99 % (critical at 95 %)",
         Verdict(OFFLINE, "3 consecutive checks failed: X")),
        (Verdict(UNKNOWN, "not checked yet"), "memory at 99 % (critical at 95 %)", Verdict(UNKNOWN, "not checked yet")),
    ],
)  # fmt: skip
def test_resource_pressure_lowers_only_an_online_or_degraded_service(
    check: Verdict, pressure: str, expected: Verdict
) -> None:
    """Pressure turns ONLINE into DEGRADED and adds to a DEGRADED reason, but leaves OFFLINE and UNKNOWN alone."""
    assert combine(check, pressure) == expected


def test_silence_makes_a_service_unknown_and_says_since_when() -> None:
    """A service whose checks stopped is UNKNOWN with the time of its last check and the expected interval."""
    verdict = judge_silence(AT, 30)
    assert verdict.status is UNKNOWN
    assert verdict.reason.startswith("no check since 2026-01-02 14:05 UTC (expected every 30 s)")


def component(name: str, status: ServiceStatus, enabled: bool = True) -> Component:
    return Component(name, name.lower(), name, ServiceType.OTHER, status, "", enabled)


@pytest.mark.parametrize(
    ("statuses", "overall", "reason"),
    [
        ([], UNKNOWN, "no services registered"),
        ([UNKNOWN, UNKNOWN], UNKNOWN, "none of 2 services checked yet"),
        ([ONLINE, ONLINE], ONLINE, "all 2 services online"),
        ([ONLINE, UNKNOWN], ONLINE, "1 of 2 services online, 1 not checked yet"),
        ([ONLINE, DEGRADED, UNKNOWN], DEGRADED, "1 of 3 services degraded: S1"),
        ([OFFLINE, DEGRADED, ONLINE], OFFLINE, "1 of 3 services offline: S0"),
        ([OFFLINE] * 5, OFFLINE, "5 of 5 services offline: S0, S1, S2 and 2 more"),
    ],
)
def test_the_overall_status_is_the_worst_of_the_checked_enabled_services(
    statuses: list[ServiceStatus], overall: ServiceStatus, reason: str
) -> None:
    """OFFLINE beats DEGRADED beats ONLINE; UNKNOWN services neither help nor hurt; the reason names the worst."""
    summary = summarize([component(f"S{i}", s) for i, s in enumerate(statuses)], AT)
    assert (summary.overall_status, summary.overall_reason) == (overall, reason)
    assert sum(summary.counts.values()) == len(statuses)


def test_disabled_services_are_listed_but_not_counted() -> None:
    """A disabled offline service does not make the system unhealthy; it is counted as disabled."""
    summary = summarize([component("A", ONLINE), component("B", OFFLINE, enabled=False)], AT)
    assert summary.overall_status is ONLINE
    assert summary.disabled == 1 and summary.counts[OFFLINE] == 0
    assert [c.name for c in summary.components] == ["A", "B"]
