"""What every check shares: the `Check` protocol, one attempt's timed phases, and raw evidence.

A check runs its steps through `Attempt.step`, which times the step with `time.perf_counter`,
bounds it by the per-phase timeout, records the phase (and tells the listener at once, so the UI can
draw the waterfall while the test runs) and wraps a failure in `StepFailed` with the phase it
happened in: the classifier needs the phase to tell a connect timeout from a read timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from services.probes.domain import Phase, PhaseName, PhaseStatus, ProbeKind, Target, Timing
from services.probes.probing.placeholders import Expanded

T = TypeVar("T")
PhaseListener = Callable[[Phase], None]

_TIMING_FIELD: dict[PhaseName, str] = {
    PhaseName.DNS: "dns_ms",
    PhaseName.TCP_CONNECT: "tcp_ms",
    PhaseName.TLS_HANDSHAKE: "tls_ms",
    PhaseName.TIME_TO_FIRST_BYTE: "ttfb_ms",
    PhaseName.CONTENT_DOWNLOAD: "download_ms",
}


class StepFailed(Exception):
    """A step of a check failed; `cause` is what it raised, `phase` where."""

    def __init__(self, phase: PhaseName, cause: BaseException) -> None:
        super().__init__(f"{phase.value}: {cause}")
        self.phase = phase
        self.cause = cause


@dataclass
class RawEvidence:
    """What was sent and received, unmasked; it never leaves the engine before `evidence.build`."""

    method: str = ""
    url: str = ""
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    request_body: bytes = b""
    status: int | None = None
    reason: str = ""
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""
    # The body's full size when known (Content-Length), else what was read.
    response_size: int | None = None
    bytes_downloaded: int = 0
    request_written: bool = False
    # When the verified server certificate expires (HTTPS), for the health service's expiry alert.
    tls_not_after: datetime | None = None


@dataclass
class CheckOutcome:
    """A check that passed: a one-line summary, and whether it passed with a warning sign."""

    summary: str
    degraded: bool = False
    advice: list[str] = field(default_factory=list)


class Attempt:
    """One try of a check: its phases in order, their timing and the evidence gathered so far."""

    def __init__(self, number: int, timeout: float, listener: PhaseListener | None = None) -> None:
        self.number = number
        self.timeout = timeout
        self.listener = listener
        self.phases: list[Phase] = []
        self.timing = Timing()
        self.evidence = RawEvidence()
        self.where = ""

    @property
    def last_phase(self) -> PhaseName:
        return self.phases[-1].name if self.phases else PhaseName.DNS

    def _record(self, name: PhaseName, status: PhaseStatus, duration_ms: float, detail: str) -> None:
        phase = Phase(name, status, duration_ms, detail, self.number)
        self.phases.append(phase)
        if status is not PhaseStatus.SKIPPED and name in _TIMING_FIELD:
            setattr(self.timing, _TIMING_FIELD[name], duration_ms)
        if self.listener is not None:
            self.listener(phase)

    def skip(self, name: PhaseName, detail: str) -> None:
        """A phase that does not apply (no TLS on plain HTTP); shown greyed out."""
        self._record(name, PhaseStatus.SKIPPED, 0.0, detail)

    async def step(self, name: PhaseName, work: Awaitable[T], detail: Callable[[T], str] | str = "") -> T:
        """Run and time one phase; StepFailed(name, cause) when it raises or exceeds the timeout."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                result = await work
        except Exception as error:
            elapsed = (time.perf_counter() - started) * 1000
            reason = "timed out" if isinstance(error, TimeoutError) else (str(error) or type(error).__name__)
            self._record(name, PhaseStatus.FAILED, elapsed, reason.splitlines()[0][:300])
            raise StepFailed(name, error) from error
        elapsed = (time.perf_counter() - started) * 1000
        self._record(name, PhaseStatus.PASSED, elapsed, detail(result) if callable(detail) else detail)
        return result


class Check(Protocol):
    """One probe kind. `run` raises StepFailed or a ProbeFault on failure."""

    kind: ProbeKind

    async def run(self, target: Target, expanded: Expanded, attempt: Attempt) -> CheckOutcome: ...
