"""GraphQL types of the jobs domain."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from gateway.scalars import Long


@strawberry.enum(description="QUEUED → RUNNING → COMPLETED | FAILED | CANCELLED")
class JobStatus(Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@strawberry.enum(description="Whether a failure may succeed when tried again")
class ErrorClass(Enum):
    TRANSIENT = "TRANSIENT"
    PERMANENT = "PERMANENT"


@strawberry.enum
class JobSortField(Enum):
    CREATED_AT = "CREATED_AT"
    STARTED_AT = "STARTED_AT"
    COMPLETED_AT = "COMPLETED_AT"
    UPDATED_AT = "UPDATED_AT"
    STATUS = "STATUS"
    JOB_TYPE = "JOB_TYPE"
    TENANT_ID = "TENANT_ID"
    PROGRESS = "PROGRESS"
    ID = "ID"


@strawberry.enum
class SortDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.type(description="Counts reported by the job; percent, rate and ETA derived by the jobs service")
class JobProgress:
    total_items: Long
    processed_items: Long
    succeeded_items: Long
    failed_items: Long
    percent: float
    items_per_second: float
    eta_seconds: float | None = strawberry.field(description="Seconds until done at the observed rate")
    message: str
    updated_at: datetime | None


@strawberry.enum
class StepStatus(Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


@strawberry.enum
class LogLevel(Enum):
    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


@strawberry.type(description="One step of a job's execution timeline")
class JobStep:
    index: int
    name: str
    status: StepStatus
    started_at: datetime | None
    completed_at: datetime | None
    message: str


@strawberry.type(description="One execution log line (REQ-001 JobExecutionLog)")
class JobLogLine:
    id: strawberry.ID
    job_id: strawberry.ID
    sequence: Long
    level: LogLevel
    message: str
    timestamp: datetime
    stack_trace: str | None
    context: JSON


@strawberry.type
class JobLogPage:
    lines: list[JobLogLine]
    last_sequence: Long = strawberry.field(description="The highest sequence stored; follow from here")


@strawberry.type
class StatusCount:
    status: JobStatus
    count: Long


@strawberry.type(description="A scheduler job attempt (REQ-001 SchedulerJob)")
class Job:
    id: strawberry.ID
    job_type: str
    tenant_id: str
    status: JobStatus
    progress_percent: int
    progress: JobProgress
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    last_heartbeat_at: datetime | None
    duration_ms: float
    error_message: str | None
    error_category: str | None
    error_class: ErrorClass | None
    error_stack_trace: str | None
    attempt: int
    max_attempts: int
    root_job_id: strawberry.ID
    retry_of_job_id: strawberry.ID | None
    worker_id: str | None
    cancel_requested: bool
    created_by: str
    metadata: JSON
    parameters: JSON
    steps: list[JobStep]
    available_at: datetime | None = strawberry.field(description="A queued retry waits until then")
    cancel_reason: str | None
    log_sequence: Long
    retried_by_job_id: strawberry.ID | None = strawberry.field(description="The attempt made by retrying this job")


@strawberry.type
class JobEdge:
    cursor: str
    node: Job


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="A page of jobs with the total matching the filter")
class JobConnection:
    edges: list[JobEdge]
    page_info: PageInfo
    total_count: Long

    @strawberry.field(description="The jobs of this page, without cursors")
    def nodes(self) -> list[Job]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="A job with its retry chain (REQ-001 GET /jobs/{id})")
class JobDetails:
    job: Job
    attempts: list[Job] = strawberry.field(description="Every attempt of the retry chain, oldest first")


@strawberry.type
class RetryJobResult:
    job: Job = strawberry.field(description="The new attempt, or the one an earlier retry already made")
    created: bool


@strawberry.input
class JobFilter:
    status: list[JobStatus] | None = None
    job_type: list[str] | None = None
    tenant_id: list[str] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    search: str | None = strawberry.field(default=None, description="Text searched in the error message")
    id_prefix: str | None = strawberry.field(default=None, description="Leading characters of the id (≥ 4)")


@strawberry.input
class JobSort:
    field: JobSortField = JobSortField.CREATED_AT
    direction: SortDirection | None = None


@strawberry.input
class CreateJobInput:
    job_type: str
    tenant_id: str | None = None
    parameters: JSON | None = None
    metadata: JSON | None = None
    total_items: Long = 0
    max_attempts: int = 0
    idempotency_key: str | None = None


@strawberry.type(description="A moment an event passed one hop of the live path (docs/adr/0021-live-path.md)")
class EventHop:
    name: str = strawberry.field(
        description="sdk_enqueued, sdk_sent, jobs_received, jobs_committed, published, gateway_received, "
        "gateway_resolved"
    )
    at_unix_micros: Long = strawberry.field(description="Wall clock of the process that stamped it, µs since 1970")


@strawberry.type(description="SignalR JobStatusChanged(jobId, status, progress), with the whole job")
class JobStatusEvent:
    job_id: strawberry.ID
    status: JobStatus
    previous_status: JobStatus | None
    change: str = strawberry.field(description="created, started, progress, completed, failed, cancelled, resync")
    progress: JobProgress
    job: Job
    occurred_at: datetime
    hops: list[EventHop] = strawberry.field(
        default_factory=list,
        description="For progress reported through ReportBatch: when the report passed each hop from the worker "
        "to this subscription, oldest first (empty for other changes)",
    )


@strawberry.type(description="New log lines of a job, as they arrive")
class JobLogEvent:
    job_id: strawberry.ID
    lines: list[JobLogLine]


@strawberry.type(description="Jobs that finished in a period, by outcome")
class JobOutcomeCounts:
    completed: int
    failed: int
    cancelled: int
    finished: int
    success_rate_percent: float | None = strawberry.field(
        description="Completed among completed and failed (cancelled jobs count for neither); null when none"
    )
    average_duration_ms: float | None = strawberry.field(description="Mean start-to-finish time; null when none")


@strawberry.type(description="One UTC calendar day of the trend")
class JobTrendDay:
    date: date
    counts: JobOutcomeCounts


@strawberry.type(description="One job type over the whole trend window")
class JobTypeTrend:
    job_type: str
    counts: JobOutcomeCounts


@strawberry.type(description="Finished jobs per day and per type over the last days, read from daily rollups")
class JobTrend:
    days: list[JobTrendDay] = strawberry.field(description="Every day of the window, oldest first")
    by_type: list[JobTypeTrend] = strawberry.field(description="Per job type, most failures first")
    total: JobOutcomeCounts


@strawberry.type(description="What job filters can offer: job types and tenants seen lately or active now")
class JobFacets:
    job_types: list[str]
    tenant_ids: list[str]


@strawberry.type(description="What a bulk retry did")
class BulkRetryResult:
    retried: int = strawberry.field(description="New attempts queued now")
    skipped: int = strawberry.field(description="Failed jobs already retried (automatically or by someone)")
    errors: list[str] = strawberry.field(description="Jobs the jobs service refused, with its reason")
    attempt_ids: list[strawberry.ID] = strawberry.field(description="The new attempts")
