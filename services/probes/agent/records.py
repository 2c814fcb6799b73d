"""What a periodic check leaves behind: one `CheckRecord` per slot, and the `CheckState` per service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.probes.agent.breaker import BreakerSnapshot
from services.probes.domain import BreakerState, Classification, SpeedRating, Timing


@dataclass
class CheckRecord:
    """One periodic check (or one not sent because the breaker was open)."""

    service_id: str
    slug: str
    slot: int
    agent_id: str
    checked_at: datetime
    success: bool
    summary: str
    total_ms: float
    interval_seconds: int
    breaker: BreakerSnapshot
    degraded: bool = False
    skipped: bool = False
    error: Classification | None = None
    timing: Timing = field(default_factory=Timing)
    status_code: int | None = None
    speed_rating: SpeedRating | None = None
    communication_error_id: str | None = None
    tls_not_after: datetime | None = None


@dataclass(frozen=True)
class CheckState:
    """The latest periodic check of a service (probes.service_latest)."""

    service_id: str
    service_slug: str
    checked_at: datetime
    success: bool
    degraded: bool
    summary: str
    total_latency_ms: float
    consecutive_failures: int
    breaker: BreakerState
    agent_id: str
    interval_seconds: int
    error: Classification | None = None
    speed_rating: SpeedRating | None = None
    breaker_retry_at: datetime | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
