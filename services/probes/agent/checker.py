"""Runs the periodic checks of the targets this agent holds leases for, each once per slot.

Targets are scheduled on their epoch-aligned slots (`slots.py`) in one heap read by one task. When
a slot is due, the agent writes the slot number to Redis (so a new holder resumes after it), asks the
target's circuit breaker, and either runs the engine (with its retries) or records the check as
CIRCUIT_BREAKER_OPEN without sending anything. Records go to the batching recorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from redis.exceptions import RedisError

from services.common.logging import get_logger
from services.common.tasks import stop_tasks
from services.probes.agent.breaker import Breaker, BreakerPolicy, BreakerSnapshot, Transition, restore, snapshot
from services.probes.agent.leases import Coordination
from services.probes.agent.recorder import CheckRecorder
from services.probes.agent.records import CheckRecord
from services.probes.agent.slots import first_slot, phase_of, slot_start
from services.probes.domain import (
    CommunicationError,
    ConnectionTestResult,
    ErrorDetails,
    ErrorType,
    Target,
    error_from_result,
)
from services.probes.probing.classify import make
from services.probes.probing.engine import ProbeEngine

log = get_logger(__name__)

# Checks due within this many seconds of each other fire together (one Redis write for their slots).
_COALESCE = 0.005


class SavedState(Protocol):
    """What the previous holders of targets stored: their breakers and the slot of their latest stored check."""

    async def breakers(self, service_ids: Sequence[str]) -> dict[str, BreakerSnapshot]: ...

    async def stored_slots(self, service_ids: Sequence[str]) -> dict[str, int | None]: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CheckAgent:
    def __init__(
        self,
        engine: ProbeEngine,
        recorder: CheckRecorder,
        coordination: Coordination,
        breakers: SavedState,
        agent_id: str,
        policy: BreakerPolicy,
        *,
        lookup: Callable[[str], Target | None],
        owns: Callable[[str], bool],
        max_concurrency: int,
        tick: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._recorder = recorder
        self._coord = coordination
        self._saved = breakers
        self.agent_id = agent_id
        self._policy = policy
        self._lookup = lookup
        self._owns = owns
        self._tick = tick
        self._clock = clock
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._breakers: dict[str, Breaker] = {}
        self._intervals: dict[str, int] = {}
        self._generation: dict[str, int] = {}
        self._next_due: dict[str, float] = {}
        self._heap: list[tuple[float, int, str, int, int]] = []
        self._sequence = 0
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self.checks_run = 0

    # -- lease changes (called by the lease keeper) -----------------------------------------------

    async def gained(self, service_ids: list[str]) -> None:
        """Resume each new target's breaker and schedule its first slot after the last one checked."""
        try:
            saved = await self._saved.breakers(service_ids)
        except Exception as error:
            log.warning("breaker states not loaded; starting closed", error=str(error))
            saved = {}
        try:
            last = await self._coord.last_slots(service_ids)
        except (RedisError, OSError) as error:
            log.warning("last checked slots not read; starting at the next slot", error=str(error))
            last = {}
        stored: dict[str, int | None] | None
        try:
            stored = await self._saved.stored_slots(service_ids)
        except Exception as error:
            log.warning("stored slots not read; a slot lost with its holder stays unchecked", error=str(error))
            stored = None
        now = self._clock()
        for service_id in service_ids:
            target = self._lookup(service_id)
            if target is None:
                continue
            self._breakers[service_id] = restore(self._policy, saved.get(service_id))
            self._intervals[service_id] = target.interval_seconds
            phase = phase_of(service_id, target.interval_seconds)
            marked = last.get(service_id)
            kept = None if stored is None else stored.get(service_id)
            # Marked in Redis but never stored: its holder died mid-check (a live holder keeps a target whose
            # record is not stored yet, see `busy`).
            unfinished = stored is not None and marked is not None and (kept is None or kept < marked)
            slot, catch_up = first_slot(now, target.interval_seconds, phase, marked, unfinished=unfinished)
            self._schedule(service_id, now if catch_up else slot_start(slot, target.interval_seconds, phase), slot)
        log.info("targets taken", agent=self.agent_id, count=len(service_ids))

    def lost(self, service_ids: list[str]) -> None:
        for service_id in service_ids:
            self._generation[service_id] = self._generation.get(service_id, 0) + 1
            self._breakers.pop(service_id, None)
            self._intervals.pop(service_id, None)
            self._next_due.pop(service_id, None)

    def retarget(self, target: Target) -> None:
        """A held target's definition changed; a new interval takes effect from its next slot."""
        service_id = target.service_id
        if self._intervals.get(service_id, target.interval_seconds) == target.interval_seconds:
            return
        self._intervals[service_id] = target.interval_seconds
        self._generation[service_id] = self._generation.get(service_id, 0) + 1
        phase = phase_of(service_id, target.interval_seconds)
        slot, _ = first_slot(self._clock(), target.interval_seconds, phase, None)
        self._schedule(service_id, slot_start(slot, target.interval_seconds, phase), slot)

    def busy(self, service_id: str) -> bool:
        """Running, due within two ticks, or checked but not stored yet: not a moment to hand the target over."""
        due = self._next_due.get(service_id)
        return (
            service_id in self._in_flight
            or (due is not None and due - self._clock() < 2 * self._tick)
            or self._recorder.pending(service_id)
        )

    def breaker_of(self, service_id: str) -> Breaker | None:
        return self._breakers.get(service_id)

    # -- scheduling ----------------------------------------------------------------------------

    def _schedule(self, service_id: str, due: float, slot: int) -> None:
        self._sequence += 1
        self._next_due[service_id] = due
        heapq.heappush(self._heap, (due, self._sequence, service_id, slot, self._generation.get(service_id, 0)))
        self._wake.set()

    def _current(self, entry: tuple[float, int, str, int, int]) -> bool:
        _, _, service_id, _, generation = entry
        return service_id in self._breakers and generation == self._generation.get(service_id, 0)

    async def _wait_for_due(self) -> None:
        while True:
            while self._heap and not self._current(self._heap[0]):
                heapq.heappop(self._heap)
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = self._heap[0][0] - self._clock()
            if delay <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def run(self) -> None:
        while True:
            await self._wait_for_due()
            horizon = self._clock() + _COALESCE
            due: list[tuple[str, int]] = []
            while self._heap and self._heap[0][0] <= horizon:
                entry = heapq.heappop(self._heap)
                if not self._current(entry):
                    continue
                _, _, service_id, slot, _ = entry
                interval = self._intervals[service_id]
                phase = phase_of(service_id, interval)
                self._schedule(service_id, slot_start(slot + 1, interval, phase), slot + 1)
                if service_id in self._in_flight or not self._owns(service_id):
                    log.debug("slot not checked", service_id=service_id, slot=slot)
                    continue
                due.append((service_id, slot))
            if not due:
                continue
            # In flight from now on: the lease keeper must not hand these over while their slot is written.
            self._in_flight.update(service_id for service_id, _ in due)
            try:
                await self._coord.mark_slots(dict(due))
            except (RedisError, OSError) as error:
                log.warning("checked slots not written to Redis", count=len(due), error=str(error))
            for service_id, slot in due:
                target = self._lookup(service_id)
                if target is None:
                    self._in_flight.discard(service_id)
                    continue
                task = asyncio.create_task(self._check(target, slot), name=f"check-{target.slug}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # -- one check -------------------------------------------------------------------------------

    async def _check(self, target: Target, slot: int) -> None:
        service_id = target.service_id
        try:
            async with self._semaphore:
                breaker = self._breakers.get(service_id) or Breaker(self._policy)
                started = _utcnow()
                if not breaker.allow(started):
                    self._recorder.add(self._skipped(target, slot, started, breaker))
                    return
                result = await self._engine.test(target)
                transition = breaker.record(result.success, _utcnow())
                self.checks_run += 1
                errors: list[CommunicationError] = []
                if (error := error_from_result(result)) is not None:
                    error.connection_test_id = None  # periodic checks are not stored as connection tests
                    errors.append(error)
                if transition is Transition.OPENED:
                    errors.append(self._opened(target, breaker, result))
                if transition is not None:
                    log.info("circuit breaker " + transition.value, service=target.slug, failures=breaker.failures)
                self._recorder.add(self._record(target, slot, result, breaker), errors)
        except Exception as error:
            # Record the failure anyway: a target whose check raised must not stay UNKNOWN forever.
            log.exception("periodic check failed unexpectedly", service=target.slug)
            with contextlib.suppress(Exception):
                self._recorder.add(self._crashed(target, slot, error))
        finally:
            self._in_flight.discard(service_id)

    def _record(self, target: Target, slot: int, result: ConnectionTestResult, breaker: Breaker) -> CheckRecord:
        return CheckRecord(
            service_id=target.service_id,
            slug=target.slug,
            slot=slot,
            agent_id=self.agent_id,
            checked_at=result.executed_at,
            success=result.success,
            summary=result.summary,
            total_ms=result.metrics.total_latency_ms,
            interval_seconds=target.interval_seconds,
            breaker=snapshot(breaker),
            degraded=result.degraded,
            error=result.error,
            timing=result.evidence.timing,
            status_code=result.evidence.http_status_code,
            speed_rating=result.speed_rating,
            communication_error_id=result.communication_error_id,
            tls_not_after=result.tls_not_after,
        )

    def _crashed(self, target: Target, slot: int, error: Exception) -> CheckRecord:
        summary = f"the check could not run: {type(error).__name__}: {str(error)[:300]}".rstrip(": ")
        breaker = self._breakers.get(target.service_id) or Breaker(self._policy)
        return CheckRecord(
            service_id=target.service_id,
            slug=target.slug,
            slot=slot,
            agent_id=self.agent_id,
            checked_at=_utcnow(),
            success=False,
            summary=summary,
            total_ms=0.0,
            interval_seconds=target.interval_seconds,
            breaker=snapshot(breaker),
            error=make(ErrorType.UNKNOWN, type(error).__name__, summary),
        )

    def _skipped(self, target: Target, slot: int, now: datetime, breaker: Breaker) -> CheckRecord:
        retry = f"{breaker.retry_at:%H:%M:%S} UTC" if breaker.retry_at else "the next check"
        summary = f"circuit breaker open after {breaker.failures} failed checks; not sent, next trial at {retry}"
        return CheckRecord(
            service_id=target.service_id,
            slug=target.slug,
            slot=slot,
            agent_id=self.agent_id,
            checked_at=now,
            success=False,
            summary=summary,
            total_ms=0.0,
            interval_seconds=target.interval_seconds,
            breaker=snapshot(breaker),
            skipped=True,
            error=make(ErrorType.CIRCUIT_BREAKER_OPEN, "CIRCUIT_OPEN", summary),
        )

    def _opened(self, target: Target, breaker: Breaker, result: ConnectionTestResult) -> CommunicationError:
        """The one error recorded when the breaker opens; the skipped checks after it record none."""
        last = result.error.error_type.value if result.error else "failure"
        retry = f"{breaker.retry_at:%H:%M:%S} UTC" if breaker.retry_at else "later"
        message = (
            f"circuit breaker opened after {breaker.failures} consecutive failed checks (last: {last}); "
            f"periodic checks paused for {breaker.cooldown_seconds:g} s, trial check at {retry}"
        )
        details = result.evidence if result.evidence.correlation_id else ErrorDetails(correlation_id=str(uuid.uuid4()))
        return CommunicationError(
            id=str(uuid.uuid4()),
            service_id=target.service_id,
            service_slug=target.slug,
            timestamp=_utcnow(),
            classification=make(ErrorType.CIRCUIT_BREAKER_OPEN, "CIRCUIT_OPEN", message),
            details=details,
            recommendations=[
                f"{target.name} failed {breaker.failures} checks in a row; fix the cause shown in the previous "
                "errors, then run a connection test — it bypasses the breaker"
            ],
        )

    async def stop(self) -> None:
        await stop_tasks(list(self._tasks))
