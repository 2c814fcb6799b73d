"""Use cases of the aggregated view: fold check states and resource samples into each service's status.

Each batch is one transaction: lock the services it touches (in id order), count the checks into
the hourly rollups (a check delivered twice is counted once), apply the status rules
(`services/health/status.py`), write every touched service in one statement, commit, then announce the status
changes. Checks may arrive out of order across replicas: only a check newer than the stored one
moves the status, while every check counts in the rollups. A check taken before the definition last
changed (endpoint, enabled) counts in the rollups but says nothing about the service as it is now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from services.common.logging import get_logger
from services.health.domain import ResourceSnapshot, ServiceStatus, StatusAnnouncer, StatusChange, Thresholds
from services.health.status import (
    CheckState,
    Verdict,
    breaker_opened_at,
    combine,
    failure_cause,
    judge_check,
    judge_silence,
    resource_pressure,
)

log = get_logger(__name__)


@dataclass(frozen=True)
class AggregateRow:
    """What the status rules need of a stored service (locked for the batch)."""

    service_id: str
    slug: str
    name: str
    enabled: bool
    removed: bool
    definition_changed_at: datetime
    thresholds: Thresholds
    interval_seconds: int
    status: ServiceStatus
    status_reason: str
    check: Verdict
    pressure: str = ""
    breaker_open_since: datetime | None = None
    last_checked: datetime | None = None
    last_successful: datetime | None = None
    # The last real failure ("TYPE (detail)"); what an open circuit breaker's reason names as its cause.
    last_failure: str = ""
    resources: ResourceSnapshot | None = None


@dataclass(frozen=True)
class AggregateUpdate:
    """The new aggregated columns of one service; the store also recomputes its latency and uptime."""

    service_id: str
    verdict: Verdict
    check: Verdict
    pressure: str
    breaker_open_since: datetime | None
    last_checked: datetime | None
    last_successful: datetime | None
    changed_at: datetime
    last_failure: str = ""


class AggregationWriter(Protocol):
    async def lock(self, service_ids: Sequence[str]) -> dict[str, AggregateRow]: ...
    async def count_checks(self, states: Sequence[CheckState]) -> None: ...
    async def save_resources(self, samples: Mapping[str, ResourceSnapshot]) -> None: ...
    async def lock_silent(self, now: datetime) -> dict[str, AggregateRow]: ...
    async def save(self, updates: Sequence[AggregateUpdate], now: datetime) -> None: ...


class AggregationStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[AggregationWriter]: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


def fold_checks(row: AggregateRow, states: Sequence[CheckState], *, slow_ms: float, now: datetime) -> AggregateUpdate:
    """The service after these checks (in any order, possibly seen before)."""
    last_checked, last_ok = row.last_checked, row.last_successful
    open_since = row.breaker_open_since
    cause = row.last_failure
    newest: CheckState | None = None
    for state in sorted(states, key=lambda s: s.checked_at):
        if state.success:
            last_ok = _latest(last_ok, state.checked_at)
        if last_checked is not None and state.checked_at <= last_checked:
            continue
        last_checked = state.checked_at
        if state.checked_at >= row.definition_changed_at:
            newest = state
            open_since = breaker_opened_at(state, open_since)
            cause = failure_cause(state, cause)
    if not row.enabled or row.removed:
        check = judge_check(None, enabled=False, slow_ms=slow_ms)
    elif newest is not None:
        check = judge_check(newest, enabled=True, slow_ms=slow_ms, breaker_open_since=open_since, last_failure=cause)
    else:
        check = row.check
    pressure = resource_pressure(row.resources, row.thresholds, now=now, under_pressure=bool(row.pressure))
    return AggregateUpdate(
        service_id=row.service_id,
        verdict=combine(check, pressure),
        check=check,
        pressure=pressure,
        breaker_open_since=open_since if newest is not None else row.breaker_open_since,
        last_checked=last_checked,
        last_successful=last_ok,
        changed_at=newest.checked_at if newest is not None else now,
        last_failure=cause if newest is not None else row.last_failure,
    )


def _as_stored(row: AggregateRow, now: datetime) -> AggregateUpdate:
    """An update that writes back what is stored; callers `replace` what changes."""
    return AggregateUpdate(
        service_id=row.service_id,
        verdict=Verdict(row.status, row.status_reason),
        check=row.check,
        pressure=row.pressure,
        breaker_open_since=row.breaker_open_since,
        last_checked=row.last_checked,
        last_successful=row.last_successful,
        changed_at=now,
        last_failure=row.last_failure,
    )


def _changes(rows: Mapping[str, AggregateRow], updates: Sequence[AggregateUpdate]) -> list[StatusChange]:
    changes: list[StatusChange] = []
    for update in updates:
        row = rows[update.service_id]
        if row.removed or update.verdict.status is row.status:
            continue
        changes.append(
            StatusChange(
                service_id=row.service_id,
                slug=row.slug,
                name=row.name,
                status=update.verdict.status,
                previous_status=row.status,
                reason=update.verdict.reason,
                changed_at=update.changed_at,
            )
        )
    return changes


class Aggregator:
    """Keeps health.services' aggregated columns and the rollups in line with what the probes report."""

    def __init__(
        self,
        store: AggregationStore,
        announcer: StatusAnnouncer,
        *,
        slow_ms: float,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._store = store
        self._announcer = announcer
        self._slow_ms = slow_ms
        self._clock = clock

    async def apply_checks(self, states: Sequence[CheckState]) -> list[StatusChange]:
        """Store a batch of check states; returns (and announces) the status changes they caused."""
        if not states:
            return []
        now = self._clock()
        by_service: dict[str, list[CheckState]] = defaultdict(list)
        for state in states:
            by_service[state.service_id].append(state)
        async with self._store.transaction() as tx:
            rows = await tx.lock(sorted(by_service))
            if unknown := set(by_service) - set(rows):
                log.info("check states of unregistered services ignored", services=sorted(unknown)[:10])
            await tx.count_checks([s for s in states if s.service_id in rows])
            updates = [fold_checks(row, by_service[sid], slow_ms=self._slow_ms, now=now) for sid, row in rows.items()]
            await tx.save(updates, now)
        return await self._announce(rows, updates)

    async def apply_resources(self, samples: Mapping[str, ResourceSnapshot]) -> list[StatusChange]:
        """Store the latest resource sample of each service; the status follows when the pressure changes."""
        if not samples:
            return []
        now = self._clock()
        async with self._store.transaction() as tx:
            rows = await tx.lock(sorted(samples))
            await tx.save_resources({sid: s for sid, s in samples.items() if sid in rows})
            updates: list[AggregateUpdate] = []
            for sid, row in rows.items():
                pressure = resource_pressure(samples[sid], row.thresholds, now=now, under_pressure=bool(row.pressure))
                if pressure != row.pressure:
                    verdict = combine(row.check, pressure)
                    stored = _as_stored(row, samples[sid].sampled_at)
                    updates.append(replace(stored, verdict=verdict, pressure=pressure))
            await tx.save(updates, now)
        return await self._announce(rows, updates)

    async def mark_silent(self) -> list[StatusChange]:
        """Services whose checks stopped arriving become UNKNOWN: the last check no longer vouches for them."""
        now = self._clock()
        async with self._store.transaction() as tx:
            rows = await tx.lock_silent(now)
            updates = []
            for row in rows.values():
                if row.last_checked is None:
                    continue
                silence = judge_silence(row.last_checked, row.interval_seconds)
                updates.append(replace(_as_stored(row, now), verdict=silence, check=silence))
            await tx.save(updates, now)
        return await self._announce(rows, updates)

    async def _announce(
        self, rows: Mapping[str, AggregateRow], updates: Sequence[AggregateUpdate]
    ) -> list[StatusChange]:
        changes = _changes(rows, updates)
        for change in changes:
            log.info(
                "service status changed",
                service=change.slug,
                status=change.status.value,
                previous=change.previous_status.value,
                reason=change.reason,
            )
        if changes:
            await self._announcer.status_changed(changes)
        return changes
