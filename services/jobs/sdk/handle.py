"""`JobHandle`: what a running job calls to report itself. Every call is synchronous and cheap.

`progress()` and `item_done()` only store integers on the job's state (its `JobTrack`: no clock, no
lock, no allocation): they run once per item in loops that must not slow down. Everything else
(deciding what to send, when, and sending it) happens on the monitor's background task.

Thread safety: a handle may be used from another thread than the monitor's event loop (a sync
handler in a thread pool). Integer stores are atomic under the GIL; `log()` takes a short lock to
number its line. `item_done()` increments, so call it for one job from one thread at a time.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
import traceback
from types import TracebackType
from typing import Any, Self

from services.jobs.domain import LogLevel
from services.jobs.sdk.errors import describe_failure
from services.jobs.sdk.model import JobInfo, Outcome, OutcomeKind, StepRecord, StepStatus
from services.jobs.sdk.tracking import JobTrack, Outbox

LevelLike = LogLevel | int | str
ExcInfo = BaseException | bool | None


# Levels given as LogLevel or int: one dict lookup (an IntEnum hashes and compares as its int).
_LEVELS: dict[int, int] = {int(member): int(member) for member in LogLevel}
_DEBUG, _INFO, _WARNING, _ERROR = (int(LogLevel.DEBUG), int(LogLevel.INFO), int(LogLevel.WARNING), int(LogLevel.ERROR))


def _level(level: LevelLike) -> int:
    try:
        return _LEVELS[level]  # type: ignore[index]
    except (KeyError, TypeError):
        pass
    if isinstance(level, str):
        name = level.strip().upper()
        try:
            return int(LogLevel[{"WARN": "WARNING", "FATAL": "CRITICAL"}.get(name, name)])
        except KeyError:
            raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LogLevel.__members__)}") from None
    return int(LogLevel(level))


def _stack(exc_info: ExcInfo) -> str:
    error = sys.exc_info()[1] if exc_info is True else exc_info or None
    if not isinstance(error, BaseException):
        return ""
    return "".join(traceback.format_exception(error))


class JobHandle:
    """One job as seen by the code that runs it. Get one from `JobMonitor.attach()` or a claim."""

    __slots__ = ("__weakref__", "_outbox", "_step_index", "_track", "job_id")

    def __init__(self, job_id: str, outbox: Outbox, job: JobInfo | None = None, *, started: bool = False) -> None:
        self.job_id = job_id
        self._step_index = 0
        self._outbox = outbox
        # The job's state, shared with the monitor's background task (which reads it, never the handle).
        self._track = JobTrack(job_id, job, outbox, started=started)

    @property
    def job(self) -> JobInfo | None:
        """The job as the service last described it (None for a job attached before it was started)."""
        return self._track.job

    def __repr__(self) -> str:
        return f"<JobHandle {self.job_id} processed={self._track.processed}/{self._track.total}>"

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, total_items: int | None = None) -> None:
        """Mark the job RUNNING on this worker (claimed jobs already are); optionally set the total."""
        track = self._track
        if track.started:
            if total_items is None or total_items == track.total:
                return  # claimed with this total already: nothing new for the service to see
            track.total = total_items
            track.eager = True  # let the service see the new total without waiting for items
        else:
            if total_items is not None:
                track.total = total_items
            track.start_requested = True
        self._notify()

    def progress(
        self,
        processed: int,
        succeeded: int | None = None,
        failed: int | None = None,
        total: int | None = None,
        message: str | None = None,
    ) -> None:
        """Record absolute counts; None leaves a value as it was. Sent coalesced, never blocks."""
        track = self._track
        track.processed = processed
        if succeeded is not None:
            track.succeeded = succeeded
        if failed is not None:
            track.failed = failed
        if total is not None:
            track.total = total
        if message is not None:
            track.message = message
        try:
            if processed >= track.due_at:
                self._report_due()
        except TypeError:
            pass  # not a number: the monitor's snapshot says so in the job's log

    def item_done(self, ok: bool = True) -> None:
        """One more item processed, counted as succeeded or failed."""
        track = self._track
        track.processed += 1  # processed first: see JobTrack._snapshot_tuple
        if ok:
            track.succeeded += 1
        else:
            track.failed += 1
        if track.processed >= track.due_at:
            self._report_due()

    def _report_due(self) -> None:
        """`items_per_report` more items: the next round looks at this job (once, until it reports),
        and a sleeping monitor is woken for it (once per burst: see `Outbox.ring`)."""
        self._track.due_at = math.inf
        outbox = self._outbox
        outbox.attention.add(self._track)
        outbox.ring()

    def complete(self, message: str = "") -> None:
        """The job succeeded. Sent with the final progress; later outcomes are ignored."""
        if self._track.outcome is None:
            self._track.outcome = Outcome(OutcomeKind.COMPLETED, message)
            self._notify()

    def fail(self, error: BaseException | str, *, category: str = "", transient: bool | None = None) -> None:
        """The job failed. `transient` defaults from the exception's type (see `sdk.errors`);
        a transient failure is retried automatically by the service while attempts remain."""
        if self._track.outcome is not None:
            return
        info = describe_failure(error, category, transient)
        self.log(
            LogLevel.ERROR,
            f"job failed: {info.message}",
            exc_info=error if isinstance(error, BaseException) else None,
            category=info.category,
            error_class="TRANSIENT" if info.transient else "PERMANENT",
        )
        self._track.outcome = Outcome(OutcomeKind.FAILED, info.message, info.category, info.transient, info.stack_trace)
        self._notify()

    def cancelled(self, message: str = "") -> None:
        """The job stopped because its cancellation was requested (or on its own account)."""
        if self._track.outcome is None:
            self.log(LogLevel.WARNING, f"job cancelled{': ' + message if message else ''}")
            self._track.outcome = Outcome(OutcomeKind.CANCELLED, message)
            self._notify()

    # -- logs and steps ---------------------------------------------------------------------------

    def _add_step(self, step: StepRecord) -> None:
        track = self._track
        if track.steps is None:
            track.steps = []
        track.steps.append(step)

    def _notify(self) -> None:
        outbox = self._outbox
        outbox.attention.add(self._track)
        outbox.ring()

    # The level helpers call the track themselves: passing **context on through log() copied it again.

    def log(self, level: LevelLike, message: str, /, *, exc_info: ExcInfo = None, **context: Any) -> None:
        """An execution log line with structured context; `exc_info` adds a stack trace."""
        text = message if type(message) is str else str(message)
        self._track.log(_level(level), text, _stack(exc_info) if exc_info else "", context, bounded=True)

    def debug(self, message: str, /, *, exc_info: ExcInfo = None, **context: Any) -> None:
        text = message if type(message) is str else str(message)
        self._track.log(_DEBUG, text, _stack(exc_info) if exc_info else "", context, bounded=True)

    def info(self, message: str, /, *, exc_info: ExcInfo = None, **context: Any) -> None:
        text = message if type(message) is str else str(message)
        self._track.log(_INFO, text, _stack(exc_info) if exc_info else "", context, bounded=True)

    def warning(self, message: str, /, *, exc_info: ExcInfo = None, **context: Any) -> None:
        text = message if type(message) is str else str(message)
        self._track.log(_WARNING, text, _stack(exc_info) if exc_info else "", context, bounded=True)

    def error(self, message: str, /, *, exc_info: ExcInfo = None, **context: Any) -> None:
        text = message if type(message) is str else str(message)
        self._track.log(_ERROR, text, _stack(exc_info) if exc_info else "", context, bounded=True)

    def step(self, name: str) -> StepScope:
        """`with handle.step("load"):` (or `async with`) records RUNNING, then COMPLETED or FAILED."""
        return StepScope(self, name)

    # -- what the service said --------------------------------------------------------------------

    @property
    def cancel_requested(self) -> bool:
        """True once an operator asked to cancel this job (seen within about one heartbeat)."""
        return self._track.cancel_flag

    @property
    def stop_requested(self) -> bool:
        """True when the job should stop: cancel requested, worker shutting down, or reports refused.

        Async handlers are cancelled by the runner; sync handlers (threads) check this between items.
        """
        return self._track.interrupted

    @property
    def cancel_event(self) -> asyncio.Event:
        """Set when cancellation is requested; `await handle.cancel_event.wait()` to react to it."""
        track = self._track
        if track.cancel_event is None:
            track.cancel_event = asyncio.Event()
            if track.cancel_flag:
                track.cancel_event.set()
        return track.cancel_event

    async def wait_for_cancel(self) -> None:
        await self.cancel_event.wait()

    @property
    def outcome(self) -> Outcome | None:
        return self._track.outcome

    @property
    def rejected(self) -> str | None:
        """Why the service refused this job's reports (unknown job, finished elsewhere), else None."""
        return self._track.rejected

    @property
    def status(self) -> str:
        """The job's final status once the service acknowledged the outcome (COMPLETED...), else ""."""
        return self._track.final_status

    async def wait_reported(self, timeout: float | None = None) -> bool:
        """Wait until the outcome was acknowledged or the reports refused; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._track.done_event().wait()
        except TimeoutError:
            return False
        return True


class StepScope:
    """A step of a job's timeline, usable with `with` and `async with`."""

    __slots__ = ("_handle", "_index", "name")

    def __init__(self, handle: JobHandle, name: str) -> None:
        self._handle = handle
        self.name = str(name)[:200]
        self._index = 0

    def __enter__(self) -> Self:
        self._index = self._handle._step_index  # positions count from 0, as everywhere in the API
        self._handle._step_index += 1
        self._handle._add_step(StepRecord(self._index, self.name, StepStatus.RUNNING, "", time.time_ns()))
        self._handle._notify()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            status, message = StepStatus.COMPLETED, ""
        elif isinstance(exc, asyncio.CancelledError):
            status, message = StepStatus.FAILED, "cancelled"
        else:
            status, message = StepStatus.FAILED, f"{type(exc).__name__}: {exc}"[:500]
        self._handle._add_step(StepRecord(self._index, self.name, status, message, time.time_ns()))
        self._handle._notify()

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)
