"""Each job's state (`JobTrack`), and the rules the monitor's background task applies to it.

A `JobTrack` is the one object that holds a job's state: what the job's own calls set through its
`JobHandle` (counts, message, steps, outcome, log lines) and what the background task keeps (sequences,
what was sent, what was acknowledged, cancel and interrupt). The handle is the job's API over it and
nothing here knows the handle. Everything here runs on the monitor's event loop except what the
handle calls from whatever thread the job runs on: integer stores, and `JobTrack.log()`, which the
log buffer's lock makes safe.

Coalescing (the @Enventa rule "every 100 items or 30 seconds"): a job's progress is reported when
`items_per_report` items were processed since its last report, or `max_report_interval` seconds
passed and something changed, but never more often than once per `min_report_interval`. The final
state always goes with the outcome. The job's own calls only store numbers; every decision is taken
here, on the background task.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.jobs.domain import LogLevel
from services.jobs.sdk.model import JobInfo, LogRecord, Outcome, Outgoing, ProgressRecord, StepRecord


@dataclass(frozen=True)
class ReportPolicy:
    items_per_report: int = 100
    min_report_interval: float = 1.0
    max_report_interval: float = 30.0


def progress_problem(processed: int, succeeded: int, failed: int, total: int) -> str:
    """Why the service would refuse these counts, or "" when they are fine."""
    if min(processed, succeeded, failed, total) < 0:
        return "counts must not be negative"
    if succeeded + failed > processed:
        return f"succeeded ({succeeded}) + failed ({failed}) exceeds processed ({processed})"
    if total and processed > total:
        return f"processed ({processed}) is beyond total ({total})"
    return ""


class JobTrack:
    """One job's state: what its handle's calls set, and the background task's bookkeeping of it."""

    __slots__ = (
        "_done",
        "acked_log_seq",
        "buffer",
        "cancel_event",
        "cancel_flag",
        "dead",
        "dropped",
        "dropped_inflight",
        "dropped_reported",
        "due_at",
        "due_step",
        "eager",
        "failed",
        "final_status",
        "inflight_log_seq",
        "interrupted",
        "invalid_reported",
        "job",
        "job_id",
        "last_snap",
        "log_base",
        "log_seq",
        "message",
        "on_interrupt",
        "outcome",
        "outcome_acked",
        "pending_progress",
        "processed",
        "prog_seq",
        "progress_base",
        "rejected",
        "sent_at",
        "sent_processed",
        "start_requested",
        "started",
        "steps",
        "succeeded",
        "total",
        "unacked_logs",
    )

    def __init__(self, job_id: str, job: JobInfo | None, outbox: Outbox, *, started: bool) -> None:
        self.job_id = job_id
        self.job = job
        # -- set by the job's calls (JobHandle), read here -------------------------------------------
        self.processed = 0
        self.succeeded = 0
        self.failed = 0
        self.total = job.total_items if job else 0
        self.message = ""
        self.outcome: Outcome | None = None
        self.steps: list[StepRecord] | None = None  # most jobs have a handful of steps or none
        self.log_seq = 0
        self.buffer = outbox.logs
        self.due_step = outbox.items_per_report
        self.due_at: float = outbox.items_per_report  # the count at which a report is due
        # Events are made when someone waits: a worker holds thousands of jobs, and every object
        # they own makes the garbage collector's rounds longer.
        self.cancel_flag = False
        self.cancel_event: asyncio.Event | None = None
        # Set on a cancel request, a shutdown, or when the service refused the job's reports: the
        # runner stops the handler (through `on_interrupt`) in every case.
        self.interrupted = False
        # The runner's way to stop the handler: its task (cancelled), or a callable for threads.
        self.on_interrupt: asyncio.Future[Any] | Callable[[], object] | None = None
        # -- the background task's own ---------------------------------------------------------------
        self.started = started
        self.start_requested = False
        # Sequences the service stored before this handle existed; ours continue after them.
        self.progress_base = job.progress_sequence if job else 0
        self.log_base = job.log_sequence if job else 0
        self.prog_seq = 0
        self.last_snap: tuple[int, int, int, int, str] = (0, 0, 0, self.total, "")
        self.sent_processed = 0
        self.sent_at = time.monotonic()  # the job's intervals count from when its handle was made
        self.eager = False
        self.pending_progress: ProgressRecord | None = None
        self.acked_log_seq = 0
        self.inflight_log_seq = 0
        self.unacked_logs = 0
        self.dropped = 0
        self.dropped_inflight = 0
        self.dropped_reported = 0
        self.invalid_reported = False
        self.outcome_acked = False
        self.dead = False
        self.rejected: str | None = None
        self.final_status = ""
        self._done: asyncio.Event | None = None

    # -- what the job's calls need ----------------------------------------------------------------

    def log(self, level: int, message: str, stack: str, context: dict[str, Any], *, bounded: bool) -> None:
        """Number a log line and leave it in the buffer (any thread; the SDK's own notices too).

        The SDK's own notices are not `bounded`: they must not push out one of the lines they are about
        (at most one per job per round, so the buffer cannot grow without limit).
        """
        now = time.time_ns()
        buffer = self.buffer
        with buffer.lock:  # numbering and appending together keep each job's lines in sequence order
            self.log_seq = sequence = self.log_seq + 1
            lines = buffer.lines
            lines.append(LogRecord(self, sequence, level, message, now, stack, context))
            self.unacked_logs += 1
            if bounded and len(lines) > buffer.max_lines:
                buffer.drop_oldest()

    def interrupt(self) -> None:
        """Ask the code running this job to stop (cancel request, shutdown, refused reports)."""
        self.interrupted = True
        stop = self.on_interrupt
        if isinstance(stop, asyncio.Future):
            stop.cancel()
        elif stop is not None:
            stop()

    # -- state ------------------------------------------------------------------------------------

    def done_event(self) -> asyncio.Event:
        """Set once the job is finished here (made on demand: most jobs nobody waits for)."""
        if self._done is None:
            self._done = asyncio.Event()
            if self.finished:
                self._done.set()
        return self._done

    @property
    def finished(self) -> bool:
        """Nothing more will be sent for this job (its outcome was acknowledged, or it was refused)."""
        return self.dead or self.outcome_acked

    @property
    def sendable(self) -> bool:
        """Reports may go out: the job is running here, or it ends without ever having been started."""
        if self.dead or self.outcome_acked:
            return False
        return self.started or (self.outcome is not None and not self.start_requested)

    @property
    def heartbeating(self) -> bool:
        return self.started and not self.dead and not self.outcome_acked

    def has_pending(self, now: float, policy: ReportPolicy, *, final: bool) -> bool:
        """Whether something still has to reach the service (used to decide when closing may stop)."""
        if not self.sendable:
            return False
        if self.pending_progress is not None or self.unacked_logs > 0 or self.steps or self.outcome is not None:
            return True
        if self.dropped > self.dropped_reported:
            return True
        return final and self._snapshot_tuple() != self.last_snap

    # -- planning ---------------------------------------------------------------------------------

    def plan(self, out: Outgoing | None, now: float, policy: ReportPolicy, *, final: bool) -> Outgoing | None:
        """Add this job's progress, steps and (when every pending line is in it) outcome to `out`.

        Runs for every job once per scan; the common case (nothing due) is kept to a few
        attribute reads, hence the coalescing rule written out inline.
        """
        if self.dead or self.outcome_acked:
            return out
        outcome = self.outcome
        if not self.started and (outcome is None or self.start_requested):
            return out  # not running here yet; an outcome without a start goes as it is
        progress = self.pending_progress
        if outcome is not None or final or self.eager:
            progress = self._snapshot(now) or progress
        else:
            since = now - self.sent_at
            # Never more often than min_report_interval (the first report is never held back);
            # then every items_per_report items, or after max_report_interval with a change.
            if since >= policy.min_report_interval or not self.prog_seq:
                try:
                    moved = abs(self.processed - self.sent_processed)
                except TypeError:  # not a number: _snapshot says so in the job's log
                    moved = policy.items_per_report
                if moved >= policy.items_per_report or since >= policy.max_report_interval:
                    progress = self._snapshot(now) or progress
        steps = self.steps
        if progress is None and not steps and outcome is None:
            return out
        if out is None:
            out = Outgoing(self)
        out.progress = progress
        if steps:
            out.steps = steps[: len(steps)]
        # The outcome goes last: with (or after) every pending line, and after the notice of lines
        # the buffer dropped, since nothing reaches a finished job's log any more.
        if outcome is not None and len(out.logs) >= self.unacked_logs and self.dropped == self.dropped_reported:
            out.outcome = outcome
        return out

    def _snapshot_tuple(self) -> tuple[int, int, int, int, str]:
        # Read succeeded/failed before processed: writers store processed first, so a job running on
        # another thread can never make a snapshot where succeeded + failed exceed processed.
        succeeded = self.succeeded
        failed = self.failed
        return (self.processed, succeeded, failed, self.total, self.message)

    def _snapshot(self, now: float) -> ProgressRecord | None:
        snap = self._snapshot_tuple()
        if snap == self.last_snap:
            return None
        processed, succeeded, failed, total, message = snap
        if type(processed) is int and type(succeeded) is int and type(failed) is int and type(total) is int:
            problem = progress_problem(processed, succeeded, failed, total)
        else:
            try:  # floats from JSON parameters and the like are fine when they are whole numbers
                processed, succeeded, failed, total = int(processed), int(succeeded), int(failed), int(total)
            except (TypeError, ValueError):
                problem = f"counts must be integers (got {snap[:4]!r})"
            else:
                problem = progress_problem(processed, succeeded, failed, total)
        if type(message) is not str:
            message = str(message)
        if problem:
            # The service would refuse the whole report (logs and outcome with it); keep the last
            # good counts and say once, in the job's own log, why they stopped moving.
            if not self.invalid_reported:
                self.invalid_reported = True
                self.log(
                    LogLevel.WARNING, f"progress not reported: {problem}", "", {"counts": list(snap[:4])}, bounded=False
                )
            return None
        self.prog_seq += 1
        self.last_snap = snap
        self.sent_processed = processed
        self.due_at = processed + self.due_step
        self.sent_at = now
        self.eager = False
        record = ProgressRecord(self.progress_base + self.prog_seq, processed, succeeded, failed, total, message)
        self.pending_progress = record
        return record

    def notices(self, max_pending_logs: int) -> None:
        """Tell the job's log about lines the bounded buffer had to drop."""
        if self.dropped > self.dropped_reported and self.sendable:
            lost = self.dropped - self.dropped_reported
            self.dropped_reported = self.dropped
            self.log(
                LogLevel.WARNING,
                f"{lost} log lines of this job were dropped: the jobs service was unreachable and the "
                f"worker's buffer of {max_pending_logs} pending lines was full",
                "",
                {"dropped_lines": lost},
                bounded=False,
            )

    # -- answers ----------------------------------------------------------------------------------

    def mark_started(self, progress_sequence: int, log_sequence: int) -> None:
        if not self.started:
            self.progress_base = max(self.progress_base, progress_sequence)
            self.log_base = max(self.log_base, log_sequence)
            self.started = True

    def accepted(self, out: Outgoing, status: str) -> None:
        if out.progress is not None and self.pending_progress is out.progress:
            self.pending_progress = None
        if out.steps and self.steps:
            del self.steps[: len(out.steps)]
        if out.outcome is not None:
            self.outcome_acked = True
            self.final_status = status
            if self._done is not None:
                self._done.set()

    def refuse(self, reason: str) -> None:
        self.dead = True
        self.rejected = reason
        self.pending_progress = None
        self.interrupt()
        if self._done is not None:
            self._done.set()

    def cancel_requested(self) -> None:
        """An operator asked to cancel the job: say so to whoever waits, and interrupt it (once)."""
        if self.cancel_flag:
            return
        self.cancel_flag = True
        if self.cancel_event is not None:
            self.cancel_event.set()
        self.interrupt()


class Outbox:
    """What handles leave for the monitor's background task, shared by all handles of a monitor.

    `attention` holds the jobs whose state changed in a way the next round must look at (an
    outcome, a step, a start, `items_per_report` more items); adding to a set is atomic under the
    GIL, so handles on other threads may do it. Everything else about progress (the time rules) is
    found by the monitor's scan of every job's counters once per `scan_interval`, which is what
    keeps `progress()` down to integer stores and one comparison.
    """

    def __init__(self, max_lines: int, items_per_report: int = 100) -> None:
        self.logs = LogBuffer(max_lines)
        self.attention: set[JobTrack] = set()
        # A handle whose count crosses its next multiple of this asks for attention itself (one
        # comparison per call), so a due report leaves with the next round instead of the next scan.
        self.items_per_report = max(1, items_per_report)
        # True while the monitor's task sleeps between rounds with nothing to look at; the first job
        # asking for attention then rings `bell` (the monitor's: wakes it from any thread) and clears it,
        # so a burst of crossings costs one wake-up, and none while a round or its batch is under way.
        self.idle = False
        self.bell: Callable[[], None] | None = None

    def ring(self) -> None:
        """Wake the monitor's task if it sleeps (called after adding to `attention`)."""
        if self.idle:
            self.idle = False
            bell = self.bell
            if bell is not None:
                bell()


class LogBuffer:
    """Every job's unacknowledged log lines, oldest first, bounded by `max_lines` for the process.

    A line stays until the service acknowledged it, so a resend after a failure sends it again (the
    service skips sequences it already stored). Beyond the bound the oldest line is dropped and
    counted against its job, which later says so in its log.
    """

    def __init__(self, max_lines: int) -> None:
        self.max_lines = max(1, max_lines)
        self.lock = threading.Lock()
        self.lines: deque[LogRecord] = deque()  # appended to by JobTrack.log() under `lock`
        self.dropped_total = 0
        # Set when some job's count of lost lines grew; the monitor then writes the notices.
        self.drops_to_announce = False

    def __len__(self) -> int:
        return len(self.lines)

    def drop_oldest(self) -> None:
        """Called under `lock` by `JobTrack.log()` (which appends to `lines` itself) when the buffer is full."""
        record = self.lines.popleft()
        track: JobTrack = record.owner
        if track.finished or record.sequence <= track.acked_log_seq:
            return  # already delivered or no longer wanted: releasing it loses nothing
        track.unacked_logs -= 1
        self.dropped_total += 1
        if record.sequence <= track.inflight_log_seq:
            track.dropped_inflight += 1  # counted as lost only if the batch carrying it fails
        else:
            track.dropped += 1
            self.drops_to_announce = True

    def take(self, max_lines: int, max_jobs: int) -> dict[JobTrack, list[LogRecord]]:
        """The oldest unsent lines of jobs that may send, grouped per job, in order.

        The scan stops at the first line that does not fit, so each job gets a prefix of its pending
        lines: a later line never reaches the service before an earlier one (which it would skip).
        """
        grouped: dict[JobTrack, list[LogRecord]] = {}
        count = 0
        with self.lock:
            for record in self.lines:
                track: JobTrack = record.owner
                if record.sequence <= track.acked_log_seq or not track.sendable:
                    continue
                lines = grouped.get(track)
                if lines is None:
                    if len(grouped) >= max_jobs:
                        break
                    lines = grouped[track] = []
                lines.append(record)
                count += 1
                if count >= max_lines:
                    break
            for track, lines in grouped.items():
                track.inflight_log_seq = lines[-1].sequence
        return grouped

    def acknowledge(self, track: JobTrack, lines: Sequence[LogRecord]) -> None:
        if not lines:
            return
        with self.lock:
            track.acked_log_seq = max(track.acked_log_seq, lines[-1].sequence)
            track.unacked_logs -= len(lines) - track.dropped_inflight
            track.dropped_inflight = 0
            track.inflight_log_seq = 0

    def not_delivered(self, track: JobTrack) -> None:
        """The batch failed: lines dropped while it was in flight are lost after all."""
        with self.lock:
            if track.dropped_inflight:
                track.dropped += track.dropped_inflight
                track.dropped_inflight = 0
                self.drops_to_announce = True
            track.inflight_log_seq = 0

    def release(self) -> None:
        """Forget delivered lines and lines of finished jobs at the front of the buffer."""
        with self.lock:
            lines = self.lines
            while lines:
                record = lines[0]
                track: JobTrack = record.owner
                if not (track.finished or record.sequence <= track.acked_log_seq):
                    break
                lines.popleft()
