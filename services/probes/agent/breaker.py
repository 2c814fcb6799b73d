"""The circuit breaker of one target's periodic checks. Pure state, no clock of its own.

    CLOSED ──(N consecutive failed checks)──► OPEN ──(cool-down over)──► HALF_OPEN
       ▲                                       ▲                            │
       └──────────────(trial succeeds)─────────┼────────────────────────────┤
                                               └──(trial fails: cool-down doubles, up to the cap)

While OPEN, due checks are not sent: they are recorded as CIRCUIT_BREAKER_OPEN. The first check
due after the cool-down is the half-open trial. On-demand tests never consult the breaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.probes.domain import BreakerState


class Transition(StrEnum):
    OPENED = "opened"
    REOPENED = "reopened"
    CLOSED = "closed"


@dataclass(frozen=True)
class BreakerPolicy:
    failures: int = 5
    cooldown_seconds: float = 60.0
    max_cooldown_seconds: float = 900.0


@dataclass
class Breaker:
    """State of one target's breaker; persisted with the target's latest check so a new lease holder resumes it."""

    policy: BreakerPolicy
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    cooldown_seconds: float = 0.0
    retry_at: datetime | None = None

    def allow(self, now: datetime) -> bool:
        """Whether the check due `now` may be sent; the first one after the cool-down becomes the trial."""
        if self.state is BreakerState.OPEN:
            if self.retry_at is not None and now < self.retry_at:
                return False
            self.state = BreakerState.HALF_OPEN
        return True

    def record(self, success: bool, now: datetime) -> Transition | None:
        """Account for a check that was sent; returns the transition it caused, if any."""
        if success:
            was_closed = self.state is BreakerState.CLOSED
            self.state, self.failures, self.cooldown_seconds, self.retry_at = BreakerState.CLOSED, 0, 0.0, None
            return None if was_closed else Transition.CLOSED
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN:
            self._open(now, min(self.cooldown_seconds * 2, self.policy.max_cooldown_seconds))
            return Transition.REOPENED
        if self.state is BreakerState.CLOSED and self.failures >= self.policy.failures:
            self._open(now, self.policy.cooldown_seconds)
            return Transition.OPENED
        return None

    def _open(self, now: datetime, cooldown: float) -> None:
        self.state = BreakerState.OPEN
        self.cooldown_seconds = max(cooldown, self.policy.cooldown_seconds)
        self.retry_at = now + timedelta(seconds=self.cooldown_seconds)


@dataclass(frozen=True)
class BreakerSnapshot:
    """What is stored with a target's latest check, and what a new lease holder resumes from."""

    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    cooldown_seconds: float = 0.0
    retry_at: datetime | None = None


def snapshot(breaker: Breaker) -> BreakerSnapshot:
    return BreakerSnapshot(breaker.state, breaker.failures, breaker.cooldown_seconds, breaker.retry_at)


def restore(policy: BreakerPolicy, saved: BreakerSnapshot | None) -> Breaker:
    if saved is None:
        return Breaker(policy)
    return Breaker(policy, saved.state, saved.failures, saved.cooldown_seconds, saved.retry_at)
