"""Use cases of the probes service: on-demand connection tests and reading their history.

No transport here. Targets come from a `TargetSource` (the health service's registry in production),
tests run on the `ProbeEngine`, results go to a `ProbeRepository` and are announced on a
`ProbeEventSink`: each phase as it completes, then the result, and the communication error when the
test failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from services.common.errors import InvalidArgumentError
from services.common.logging import get_logger
from services.common.tasks import stop_tasks
from services.probes.domain import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    BreakerState,
    CommunicationError,
    ConnectionTestResult,
    ErrorFilter,
    Page,
    Phase,
    Target,
    error_from_result,
)
from services.probes.probing.engine import ProbeEngine

log = get_logger(__name__)

MAX_TIMEOUT_SECONDS = 120.0
# Services tested at once by TestAllConnections.
TEST_ALL_CONCURRENCY = 8


class TargetSource(Protocol):
    """Where connected services are looked up by id or slug."""

    async def get(self, service: str) -> Target:
        """The target; NotFoundError for an unknown service, UnavailableError when the source is down."""
        ...

    async def list_named(self, services: list[str]) -> list[Target]:
        """The named services (even disabled ones), or every enabled one when none is named."""
        ...


class ProbeRepository(Protocol):
    async def save(self, result: ConnectionTestResult, error: CommunicationError | None) -> None: ...
    async def get_test(self, test_id: str) -> ConnectionTestResult: ...
    async def list_tests(self, service: str, page_size: int, cursor: str | None) -> Page[ConnectionTestResult]: ...
    async def get_error(self, error_id: str, tenant_id: str = "") -> CommunicationError: ...
    async def list_errors(self, flt: ErrorFilter, page_size: int, cursor: str | None) -> Page[CommunicationError]: ...
    async def breaker_state(self, service_id: str) -> BreakerState | None: ...


class ProbeEventSink(Protocol):
    async def phase_completed(self, test_id: str, service_id: str, phase: Phase) -> None: ...
    async def test_finished(self, result: ConnectionTestResult) -> None: ...
    async def error_recorded(self, error: CommunicationError) -> None: ...


@dataclass(frozen=True)
class ConnectionTestRequest:
    service: str
    timeout_seconds: float = 0.0
    test_id: str = ""


def _page_size(value: int) -> int:
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidArgumentError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (got {value})")
    return value or DEFAULT_PAGE_SIZE


class ProbesService:
    def __init__(
        self, targets: TargetSource, engine: ProbeEngine, repository: ProbeRepository, events: ProbeEventSink
    ) -> None:
        self._targets = targets
        self._engine = engine
        self._repo = repository
        self._events = events

    async def test_connection(
        self, request: ConnectionTestRequest, on_phase: Callable[[Phase], None] | None = None
    ) -> ConnectionTestResult:
        """Resolve the service, test it now, store and announce the result."""
        service = request.service.strip()
        if not service:
            raise InvalidArgumentError("service is required: a connected service's id or slug")
        if not 0 <= request.timeout_seconds <= MAX_TIMEOUT_SECONDS:
            raise InvalidArgumentError(f"timeout_seconds must be between 0 and {MAX_TIMEOUT_SECONDS:g}")
        target = await self._targets.get(service)
        test_id = request.test_id or str(uuid.uuid4())
        phases: asyncio.Queue[Phase | None] = asyncio.Queue()

        def listener(phase: Phase) -> None:
            # Called between timed steps: hand off and return, publishing happens in its own task.
            phases.put_nowait(phase)
            if on_phase is not None:
                on_phase(phase)

        publisher = asyncio.create_task(self._publish_phases(test_id, target.service_id, phases))
        try:
            result = await self._engine.test(
                target, test_id=test_id, timeout=request.timeout_seconds, listener=listener
            )
        finally:
            phases.put_nowait(None)
            with contextlib.suppress(Exception):
                await publisher
        error = error_from_result(result)
        # On-demand tests bypass the periodic checks' breaker; the result says where it stands.
        result.breaker = await self._repo.breaker_state(target.service_id)
        await self._repo.save(result, error)
        await self._events.test_finished(result)
        if error is not None:
            await self._events.error_recorded(error)
        log.info(
            "connection test finished",
            service=target.slug,
            test_id=test_id,
            success=result.success,
            error_type=result.error.error_type.value if result.error else "",
            total_ms=round(result.metrics.total_latency_ms, 2),
        )
        return result

    async def test_all(
        self, services: list[str], timeout_seconds: float = 0.0
    ) -> tuple[int, AsyncIterator[ConnectionTestResult]]:
        """(how many, results as each finishes) of testing every enabled service, or the named ones."""
        targets = await self._targets.list_named([s.strip() for s in services if s.strip()])
        if not 0 <= timeout_seconds <= MAX_TIMEOUT_SECONDS:
            raise InvalidArgumentError(f"timeout_seconds must be between 0 and {MAX_TIMEOUT_SECONDS:g}")
        return len(targets), self._run_all(targets, timeout_seconds)

    async def _run_all(self, targets: list[Target], timeout_seconds: float) -> AsyncIterator[ConnectionTestResult]:
        gate = asyncio.Semaphore(TEST_ALL_CONCURRENCY)

        async def one(target: Target) -> ConnectionTestResult:
            async with gate:
                return await self.test_connection(ConnectionTestRequest(target.service_id, timeout_seconds))

        running = [asyncio.create_task(one(t)) for t in targets]
        try:
            for finished in asyncio.as_completed(running):
                yield await finished
        finally:
            await stop_tasks([task for task in running if not task.done()])

    async def _publish_phases(self, test_id: str, service_id: str, phases: asyncio.Queue[Phase | None]) -> None:
        while (phase := await phases.get()) is not None:
            await self._events.phase_completed(test_id, service_id, phase)

    async def get_test(self, test_id: str) -> ConnectionTestResult:
        return await self._repo.get_test(test_id)

    async def list_tests(
        self, service: str, page_size: int = 0, cursor: str | None = None
    ) -> Page[ConnectionTestResult]:
        return await self._repo.list_tests(service.strip(), _page_size(page_size), cursor)

    async def get_error(self, error_id: str, tenant_id: str = "") -> CommunicationError:
        """The error; NOT_FOUND also for one correlated to a job of another tenant than `tenant_id`."""
        return await self._repo.get_error(error_id, tenant_id)

    async def list_errors(
        self, flt: ErrorFilter, page_size: int = 0, cursor: str | None = None
    ) -> Page[CommunicationError]:
        if flt.since and flt.until and flt.since >= flt.until:
            raise InvalidArgumentError("the time range is empty: start must be before end")
        return await self._repo.list_errors(flt, _page_size(page_size), cursor)
