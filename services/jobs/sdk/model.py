"""Plain data the SDK passes around: a job as a worker sees it, and the pieces of a report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job as the jobs service described it when it was created or claimed."""

    id: str
    job_type: str
    tenant_id: str
    parameters: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    max_attempts: int = 1
    total_items: int = 0
    retry_of_job_id: str = ""
    status: str = ""
    # Highest progress and log sequences the service has stored; a handle continues after them.
    progress_sequence: int = 0
    log_sequence: int = 0


class StepStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class StepRecord:
    index: int
    name: str
    status: StepStatus
    message: str
    time_ns: int


class OutcomeKind(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a job ended, as its handle reported it (the first report wins)."""

    kind: OutcomeKind
    message: str = ""
    category: str = ""
    transient: bool = False
    stack_trace: str = ""


class ProgressRecord(NamedTuple):
    """One progress report: its wire sequence and the counts it carries.

    A tuple of plain values: thousands are made per minute, and the garbage collector stops
    tracking such tuples after its first look at them.
    """

    sequence: int
    processed: int
    succeeded: int
    failed: int
    total: int
    message: str


class LogRecord:
    """One log line waiting in the buffer until the service acknowledges it.

    `sequence` is the job's own counter, assigned when the line was logged; the wire sequence adds
    the offset of lines the service stored before this handle existed (see `JobTrack.log_base`).
    """

    __slots__ = ("context", "level", "message", "owner", "sequence", "stack_trace", "time_ns")

    def __init__(
        self,
        owner: Any,
        sequence: int,
        level: int,
        message: str,
        time_ns: int,
        stack_trace: str,
        context: dict[str, Any],
    ) -> None:
        self.owner = owner
        self.sequence = sequence
        self.level = level
        self.message = message
        self.time_ns = time_ns
        self.stack_trace = stack_trace
        self.context = context


@dataclass(slots=True)
class Outgoing:
    """What one JobReport of the next batch carries for one job.

    `logs` and `steps` are empty tuples unless the report carries some: most reports are progress only,
    and two new lists each, alive until the answer, made the garbage collector run more often.
    """

    track: Any
    progress: ProgressRecord | None = None
    logs: Sequence[LogRecord] = ()
    steps: Sequence[StepRecord] = ()
    outcome: Outcome | None = None
    start: bool = False  # start the job on this worker (the handle asked; claimed jobs are started)

    @property
    def empty(self) -> bool:
        return self.progress is None and not self.logs and not self.steps and self.outcome is None and not self.start
