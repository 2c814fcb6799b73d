"""The scheduler job: states, transitions, progress arithmetic and input rules. No I/O here."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from services.common.errors import FailedPreconditionError, InvalidArgumentError, PermissionDeniedError
from services.common.masking import clean_value, escape_control, mask_text, mask_value, truncate


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

# The lifecycle: QUEUED -> RUNNING -> COMPLETED | FAILED | CANCELLED. A queued job can also be
# cancelled before it starts, or failed (a worker that cannot even start it).
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


class ErrorClass(StrEnum):
    TRANSIENT = "TRANSIENT"
    PERMANENT = "PERMANENT"


# Error categories the seeds name; any other UPPER_SNAKE string is accepted too.
KNOWN_ERROR_CATEGORIES = (
    "ERP_CONNECTION_FAILED",
    "ERP_SESSION_TIMEOUT",
    "ERP_DATA_VALIDATION",
    "ERP_BULK_PARTIAL",
    "CONNECTION_FAILED",
    "TIMEOUT",
    "DATA_VALIDATION",
    "AUTHENTICATION_FAILED",
    "WORKER_LOST",
    "INTERNAL",
)

JOB_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
CATEGORY_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_]{0,63}$")
DEFAULT_TENANT = "default"
MAX_ERROR_MESSAGE = 4000
MAX_STACK_TRACE = 32_000
MAX_PROGRESS_MESSAGE = 500
MAX_JSON_BYTES = 64 * 1024
MAX_ATTEMPTS_LIMIT = 20
# Counts and sequences are stored as bigint but must stay exact in every JSON client (JavaScript's
# Number.MAX_SAFE_INTEGER): the GraphQL API carries them as `Long`, a JSON number.
MAX_COUNT = 2**53 - 1
MAX_WORKER_ID = 200

# Progress arithmetic (percent, smoothed throughput, ETA) runs in SQL inside the batched update of
# `repository.apply_progress`, so a thousand reports cost one statement; see that query for the rules.


def check_transition(job_id: str, current: JobStatus, target: JobStatus) -> None:
    if target not in TRANSITIONS[current]:
        raise FailedPreconditionError(
            f"job {job_id} is {current.value}; it cannot become {target.value}"
            + (" because it has already finished" if current.is_terminal else "")
        )


WORKER_LOST = "WORKER_LOST"


def reaped_from(job: Job, worker: str) -> bool:
    """The attempt was failed as WORKER_LOST while `worker`, its owner, may still have been running it.

    Its own outcome, arriving after the reap, is the truth and replaces the presumption (docs/reliability.md).
    """
    return (
        job.status is JobStatus.FAILED
        and job.error_category == WORKER_LOST
        and bool(worker)
        and job.worker_id == worker
    )


def parse_job_id(value: str) -> uuid.UUID:
    """A job id as a UUID; INVALID_ARGUMENT (quoting at most 60 characters of it) for anything else."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgumentError(f"job id {str(value)[:60]!r} is not a valid UUID") from None


def validate_job_type(value: str) -> str:
    if not JOB_TYPE_PATTERN.match(value):
        raise InvalidArgumentError(
            "job_type must be 1-100 characters of letters, digits, '_', '.', ':' or '-' "
            f"(got {escape_control(value[:60])!r})"
        )
    return value


def validate_tenant(value: str) -> str:
    if not value:
        return DEFAULT_TENANT
    if not TENANT_PATTERN.match(value):
        raise InvalidArgumentError(
            f"tenant_id must be 1-100 characters of letters, digits, '_', '.', ':' or '-' "
            f"(got {escape_control(value[:60])!r})"
        )
    return value


def validate_category(value: str) -> str:
    if value and not CATEGORY_PATTERN.match(value):
        raise InvalidArgumentError(
            f"error_category must be UPPER_SNAKE_CASE, e.g. {', '.join(KNOWN_ERROR_CATEGORIES[:4])}"
        )
    return value


def check_count(name: str, value: int) -> int:
    if value < 0:
        raise InvalidArgumentError(f"{name} must not be negative (got {value})")
    if value > MAX_COUNT:
        raise InvalidArgumentError(f"{name} must be at most {MAX_COUNT} (got {value})")
    return value


def check_no_nul(name: str, value: str) -> str:
    """PostgreSQL text cannot hold NUL characters: refuse them as bad input rather than fail in the store."""
    if "\x00" in value:
        raise InvalidArgumentError(f"{name} must not contain NUL characters")
    return value


def validate_worker(worker_id: str) -> str:
    """A worker id is required on every worker call: it is how a running job's owner is recognised."""
    if not worker_id.strip():
        raise InvalidArgumentError("worker_id is required: name the worker that runs the job")
    if len(worker_id) > MAX_WORKER_ID:
        raise InvalidArgumentError(f"worker_id is longer than {MAX_WORKER_ID} characters")
    return clean_text(worker_id, MAX_WORKER_ID)


def check_owner(job: Job, worker: str) -> None:
    """Only the worker that runs a job may report for it, complete or fail it."""
    if job.worker_id and job.worker_id != worker:
        raise PermissionDeniedError(
            f"job {job.id} is run by worker {job.worker_id}; "
            f"{'worker ' + worker if worker else 'a caller without worker_id'} may not change it"
        )


def clean_text(value: str, limit: int) -> str:
    """Masked, control characters escaped, cut to `limit` with a visible marker."""
    return truncate(escape_control(mask_text(value)), limit)


def clean_json(value: dict[str, Any], what: str, *, escape: bool = False) -> dict[str, Any]:
    """Reject oversized documents; mask secrets and PII inside so they never reach storage or events.

    With `escape` (log context: shown, never executed) control and disguising characters become visible
    escapes; without it (parameters a retry hands back to a worker) the values stay as they were, and a
    NUL, which PostgreSQL cannot store, is refused.
    """
    dumped = json.dumps(value, default=str)
    if len(dumped) > MAX_JSON_BYTES:
        raise InvalidArgumentError(f"{what} is {len(dumped)} bytes; the limit is {MAX_JSON_BYTES}")
    if escape:
        escaped: dict[str, Any] = clean_value(value)
        return escaped
    if "\\u0000" in dumped:
        raise InvalidArgumentError(f"{what} must not contain NUL characters")
    masked: dict[str, Any] = mask_value(value)
    return masked


@dataclass(frozen=True)
class ProgressCounts:
    total: int
    processed: int
    succeeded: int
    failed: int

    def validate(self) -> None:
        for name, value in (
            ("total_items", self.total),
            ("processed_items", self.processed),
            ("succeeded_items", self.succeeded),
            ("failed_items", self.failed),
        ):
            check_count(name, value)
        if self.total and self.processed > self.total:
            raise InvalidArgumentError(f"processed_items ({self.processed}) is beyond total_items ({self.total})")
        if self.succeeded + self.failed > self.processed:
            raise InvalidArgumentError(
                f"succeeded_items + failed_items ({self.succeeded + self.failed}) "
                f"exceeds processed_items ({self.processed})"
            )

    @property
    def percent(self) -> float:
        if self.total <= 0:
            return 0.0
        return min(100.0, 100.0 * self.processed / self.total)


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class LogLevel(IntEnum):
    """Stored as smallint; the numbers are the protobuf enum's."""

    TRACE = 1
    DEBUG = 2
    INFO = 3
    WARNING = 4
    ERROR = 5
    CRITICAL = 6


@dataclass
class JobStep:
    index: int
    name: str
    status: StepStatus
    started_at: datetime | None = None
    completed_at: datetime | None = None
    message: str = ""


@dataclass(frozen=True)
class StepUpdate:
    index: int
    name: str
    status: StepStatus
    message: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class LogLine:
    sequence: int
    level: LogLevel
    message: str
    timestamp: datetime
    stack_trace: str = ""
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredLog(LogLine):
    job_id: str = ""
    tenant_id: str = ""


@dataclass(frozen=True)
class ProgressReport:
    """A progress report as the SDK or ReportProgress sends it (sequence 0 = 'next')."""

    job_id: str
    counts: ProgressCounts
    message: str = ""
    sequence: int = 0


MAX_LOG_MESSAGE = 8000
MAX_LOG_LINES_PER_REPORT = 5000


@dataclass
class Job:
    """A row of jobs.jobs as the service sees it."""

    id: str
    job_type: str
    tenant_id: str
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    parameters: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    max_attempts: int = 1
    root_job_id: str = ""
    retry_of_job_id: str | None = None
    created_by: str = ""
    worker_id: str | None = None
    total_items: int = 0
    processed_items: int = 0
    succeeded_items: int = 0
    failed_items: int = 0
    progress_percent: float = 0.0
    items_per_second: float = 0.0
    eta_seconds: float | None = None
    progress_message: str = ""
    progress_sequence: int = 0
    progress_updated_at: datetime | None = None
    error_message: str | None = None
    error_category: str | None = None
    error_class: ErrorClass | None = None
    error_stack_trace: str | None = None
    cancel_requested: bool = False
    started_at: datetime | None = None
    completed_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    available_at: datetime | None = None
    cancel_reason: str | None = None
    log_sequence: int = 0
    retried_by_job_id: str | None = None
    steps: list[JobStep] = field(default_factory=list)

    @property
    def counts(self) -> ProgressCounts:
        return ProgressCounts(self.total_items, self.processed_items, self.succeeded_items, self.failed_items)

    def duration_ms(self, now: datetime) -> float:
        if self.started_at is None:
            return 0.0
        end = self.completed_at or now
        return max(0.0, (end - self.started_at).total_seconds() * 1000)


@dataclass(frozen=True)
class JobFilter:
    statuses: tuple[JobStatus, ...] = ()
    job_types: tuple[str, ...] = ()
    tenant_ids: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    text: str = ""
    id_prefix: str = ""


class SortField(StrEnum):
    CREATED_AT = "created_at"
    STARTED_AT = "started_at"
    COMPLETED_AT = "completed_at"
    UPDATED_AT = "updated_at"
    STATUS = "status"
    JOB_TYPE = "job_type"
    TENANT_ID = "tenant_id"
    PROGRESS = "progress"
    ID = "id"


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None
    total_count: int


MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for automatic retries of transient failures."""

    base_seconds: float = 5.0
    max_seconds: float = 300.0
    default_max_attempts: int = 3
    max_attempts_by_type: dict[str, int] = field(default_factory=dict)

    def max_attempts(self, job_type: str) -> int:
        return self.max_attempts_by_type.get(job_type, self.default_max_attempts)

    def delay(self, failed_attempt: int, draw: float) -> float:
        """Seconds before attempt `failed_attempt + 1`; `draw` in [0, 1) spreads retries apart."""
        ceiling: float = min(self.max_seconds, self.base_seconds * float(2 ** max(0, failed_attempt - 1)))
        return ceiling / 2 + draw * ceiling / 2

    def retries_automatically(self, job: Job) -> bool:
        return job.error_class is ErrorClass.TRANSIENT and job.attempt < job.max_attempts


def parse_attempts_by_type(spec: str) -> dict[str, int]:
    """`ERP_ARTICLE_SYNC=5,ERP_ORDER_EXPORT=2` → {type: attempts}; raises ValueError on bad input."""
    result: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not JOB_TYPE_PATTERN.match(name.strip()) or not value.strip().isdigit():
            raise ValueError(f"expected JOB_TYPE=N entries separated by commas, got {part!r}")
        attempts = int(value)
        if not 1 <= attempts <= MAX_ATTEMPTS_LIMIT:
            raise ValueError(f"{name}: attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}")
        result[name.strip()] = attempts
    return result
