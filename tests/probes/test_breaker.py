"""The circuit breaker of periodic checks, as a pure state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.probes.agent.breaker import Breaker, BreakerPolicy, Transition, restore, snapshot
from services.probes.domain import BreakerState

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
POLICY = BreakerPolicy(failures=3, cooldown_seconds=10, max_cooldown_seconds=25)


def test_opens_after_the_configured_number_of_consecutive_failures() -> None:
    """Two failures leave it closed, the third opens it with the first cool-down."""
    breaker = Breaker(POLICY)
    assert breaker.record(False, T0) is None and breaker.record(False, T0) is None
    assert breaker.record(False, T0) is Transition.OPENED
    assert breaker.state is BreakerState.OPEN and breaker.retry_at == T0 + timedelta(seconds=10)


def test_a_success_resets_the_count_of_failures() -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    breaker = Breaker(POLICY)
    breaker.record(False, T0)
    breaker.record(False, T0)
    breaker.record(True, T0)
    assert breaker.record(False, T0) is None and breaker.failures == 1


def test_checks_are_held_back_until_the_cool_down_ends_then_one_trial_runs() -> None:
    """While open nothing is sent; the first check after the cool-down is the half-open trial."""
    breaker = Breaker(POLICY, BreakerState.OPEN, 3, 10, T0 + timedelta(seconds=10))
    assert not breaker.allow(T0 + timedelta(seconds=9))
    assert breaker.allow(T0 + timedelta(seconds=10)) and breaker.state is BreakerState.HALF_OPEN


def test_a_failed_trial_reopens_with_a_doubled_cool_down_up_to_the_cap() -> None:
    """10 s, then 20 s, then the 25 s cap."""
    breaker = Breaker(POLICY, BreakerState.OPEN, 3, 10, T0)
    cooldowns = []
    for _ in range(3):
        assert breaker.allow(breaker.retry_at or T0)
        assert breaker.record(False, T0) is Transition.REOPENED
        cooldowns.append(breaker.cooldown_seconds)
    assert cooldowns == [20, 25, 25]


def test_a_successful_trial_closes_the_breaker() -> None:
    """The trial succeeding closes it and forgets failures and cool-down."""
    breaker = Breaker(POLICY, BreakerState.OPEN, 4, 20, T0)
    assert breaker.allow(T0)
    assert breaker.record(True, T0) is Transition.CLOSED
    assert (breaker.state, breaker.failures, breaker.cooldown_seconds, breaker.retry_at) == (
        BreakerState.CLOSED, 0, 0.0, None
    )  # fmt: skip


def test_a_snapshot_restores_the_same_breaker_for_a_new_lease_holder() -> None:
    """What the latest row stores is enough for another agent to resume the open period."""
    breaker = Breaker(POLICY)
    for _ in range(3):
        breaker.record(False, T0)
    resumed = restore(POLICY, snapshot(breaker))
    assert not resumed.allow(T0 + timedelta(seconds=5))
    assert restore(POLICY, None).state is BreakerState.CLOSED
