"""Domain ⇄ protobuf for jobs. Used by the gRPC API and the event publisher, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

from b2x.monitoring.v1 import common_pb2, jobs_pb2

from services.common.errors import InvalidArgumentError
from services.common.protoconv import from_struct, from_timestamp, set_timestamp, to_struct
from services.jobs.domain import (
    ErrorClass,
    Job,
    JobFilter,
    JobStatus,
    JobStep,
    LogLevel,
    LogLine,
    ProgressCounts,
    ProgressReport,
    SortField,
    StepStatus,
    StepUpdate,
    StoredLog,
)
from services.jobs.trends.domain import OutcomeCounts

STATUS_TO_PROTO: dict[JobStatus, jobs_pb2.JobStatus.ValueType] = {
    JobStatus.QUEUED: jobs_pb2.JOB_STATUS_QUEUED,
    JobStatus.RUNNING: jobs_pb2.JOB_STATUS_RUNNING,
    JobStatus.COMPLETED: jobs_pb2.JOB_STATUS_COMPLETED,
    JobStatus.FAILED: jobs_pb2.JOB_STATUS_FAILED,
    JobStatus.CANCELLED: jobs_pb2.JOB_STATUS_CANCELLED,
}
STATUS_FROM_PROTO = {v: k for k, v in STATUS_TO_PROTO.items()}

ERROR_CLASS_TO_PROTO: dict[ErrorClass, jobs_pb2.ErrorClass.ValueType] = {
    ErrorClass.TRANSIENT: jobs_pb2.ERROR_CLASS_TRANSIENT,
    ErrorClass.PERMANENT: jobs_pb2.ERROR_CLASS_PERMANENT,
}
ERROR_CLASS_FROM_PROTO = {v: k for k, v in ERROR_CLASS_TO_PROTO.items()}

SORT_FROM_PROTO: dict[int, SortField] = {
    jobs_pb2.JOB_SORT_FIELD_UNSPECIFIED: SortField.CREATED_AT,
    jobs_pb2.JOB_SORT_FIELD_CREATED_AT: SortField.CREATED_AT,
    jobs_pb2.JOB_SORT_FIELD_STARTED_AT: SortField.STARTED_AT,
    jobs_pb2.JOB_SORT_FIELD_COMPLETED_AT: SortField.COMPLETED_AT,
    jobs_pb2.JOB_SORT_FIELD_UPDATED_AT: SortField.UPDATED_AT,
    jobs_pb2.JOB_SORT_FIELD_STATUS: SortField.STATUS,
    jobs_pb2.JOB_SORT_FIELD_JOB_TYPE: SortField.JOB_TYPE,
    jobs_pb2.JOB_SORT_FIELD_TENANT_ID: SortField.TENANT_ID,
    jobs_pb2.JOB_SORT_FIELD_PROGRESS: SortField.PROGRESS,
    jobs_pb2.JOB_SORT_FIELD_ID: SortField.ID,
}


def status_from_proto(value: int) -> JobStatus:
    try:
        return STATUS_FROM_PROTO[value]  # type: ignore[index]
    except KeyError:
        raise InvalidArgumentError(f"unknown job status {value}") from None


def error_class_from_proto(value: int) -> ErrorClass | None:
    if value == jobs_pb2.ERROR_CLASS_UNSPECIFIED:
        return None
    try:
        return ERROR_CLASS_FROM_PROTO[value]  # type: ignore[index]
    except KeyError:
        raise InvalidArgumentError(f"unknown error class {value}") from None


def job_to_proto(job: Job, *, now: datetime | None = None, detail: bool = False) -> jobs_pb2.SchedulerJob:
    """The wire form of a job; `detail` adds the stack trace (GetJob only, lists stay small)."""
    msg = jobs_pb2.SchedulerJob(
        id=job.id,
        job_type=job.job_type,
        tenant_id=job.tenant_id,
        status=STATUS_TO_PROTO[job.status],
        progress_percent=int(job.progress_percent),
        error_message=job.error_message or "",
        error_category=job.error_category or "",
        error_class=ERROR_CLASS_TO_PROTO[job.error_class] if job.error_class else jobs_pb2.ERROR_CLASS_UNSPECIFIED,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        root_job_id=job.root_job_id,
        retry_of_job_id=job.retry_of_job_id or "",
        worker_id=job.worker_id or "",
        cancel_requested=job.cancel_requested,
        created_by=job.created_by,
        duration_ms=job.duration_ms(now or datetime.now(UTC)),
        metadata=to_struct(job.metadata),
        parameters=to_struct(job.parameters),
    )
    if detail and job.error_stack_trace:
        msg.error_stack_trace = job.error_stack_trace
    msg.cancel_reason = job.cancel_reason or ""
    msg.log_sequence = job.log_sequence
    msg.retried_by_job_id = job.retried_by_job_id or ""
    if job.available_at and job.status is JobStatus.QUEUED and job.available_at > job.created_at:
        set_timestamp(msg.available_at, job.available_at)  # only a retry that waits for its backoff
    msg.steps.extend(step_to_proto(step) for step in job.steps)
    progress = msg.progress
    progress.total_items = job.total_items
    progress.processed_items = job.processed_items
    progress.succeeded_items = job.succeeded_items
    progress.failed_items = job.failed_items
    progress.percent = job.progress_percent
    progress.items_per_second = job.items_per_second
    if job.eta_seconds is not None:
        progress.eta_seconds = job.eta_seconds
    progress.message = job.progress_message
    progress.sequence = job.progress_sequence
    set_timestamp(progress.updated_at, job.progress_updated_at)
    set_timestamp(msg.created_at, job.created_at)
    set_timestamp(msg.started_at, job.started_at)
    set_timestamp(msg.completed_at, job.completed_at)
    set_timestamp(msg.updated_at, job.updated_at)
    set_timestamp(msg.last_heartbeat_at, job.last_heartbeat_at)
    return msg


def filter_from_proto(flt: jobs_pb2.JobFilter) -> JobFilter:
    created_after = from_timestamp(flt.created.start) if flt.HasField("created") else None
    created_before = from_timestamp(flt.created.end) if flt.HasField("created") else None
    updated_after = from_timestamp(flt.updated.start) if flt.HasField("updated") else None
    return JobFilter(
        statuses=tuple(status_from_proto(s) for s in flt.statuses),
        job_types=tuple(t for t in flt.job_types if t),
        tenant_ids=tuple(t for t in flt.tenant_ids if t),
        created_after=created_after,
        created_before=created_before,
        updated_after=updated_after,
        text=flt.text.strip(),
        id_prefix=flt.id_prefix.strip(),
    )


def sort_from_proto(field: int, direction: int) -> tuple[SortField, bool]:
    try:
        sort = SORT_FROM_PROTO[field]
    except KeyError:
        raise InvalidArgumentError(f"unknown sort field {field}") from None
    if direction == common_pb2.SORT_DIRECTION_UNSPECIFIED:
        # Times and progress read best newest/highest first; names read best A to Z.
        descending = sort not in (SortField.JOB_TYPE, SortField.TENANT_ID, SortField.STATUS, SortField.ID)
    elif direction in (common_pb2.SORT_DIRECTION_ASC, common_pb2.SORT_DIRECTION_DESC):
        descending = direction == common_pb2.SORT_DIRECTION_DESC
    else:
        raise InvalidArgumentError(f"unknown sort direction {direction}")
    return sort, descending


STEP_TO_PROTO: dict[StepStatus, jobs_pb2.JobStepStatus.ValueType] = {
    StepStatus.PENDING: jobs_pb2.JOB_STEP_STATUS_PENDING,
    StepStatus.RUNNING: jobs_pb2.JOB_STEP_STATUS_RUNNING,
    StepStatus.COMPLETED: jobs_pb2.JOB_STEP_STATUS_COMPLETED,
    StepStatus.FAILED: jobs_pb2.JOB_STEP_STATUS_FAILED,
    StepStatus.SKIPPED: jobs_pb2.JOB_STEP_STATUS_SKIPPED,
}
STEP_FROM_PROTO = {v: k for k, v in STEP_TO_PROTO.items()}


def step_to_proto(step: JobStep) -> jobs_pb2.JobStep:
    msg = jobs_pb2.JobStep(index=step.index, name=step.name, status=STEP_TO_PROTO[step.status], message=step.message)
    set_timestamp(msg.started_at, step.started_at)
    set_timestamp(msg.completed_at, step.completed_at)
    return msg


def level_from_proto(value: int) -> LogLevel:
    if value == common_pb2.LOG_LEVEL_UNSPECIFIED:
        return LogLevel.INFO
    try:
        return LogLevel(value)
    except ValueError:
        raise InvalidArgumentError(f"unknown log level {value}") from None


def log_to_proto(line: StoredLog) -> jobs_pb2.JobExecutionLog:
    msg = jobs_pb2.JobExecutionLog(
        id=f"{line.job_id}:{line.sequence}",
        job_id=line.job_id,
        level=int(line.level),  # type: ignore[arg-type]
        message=line.message,
        stack_trace=line.stack_trace,
        sequence=line.sequence,
        context=to_struct(line.context),
    )
    set_timestamp(msg.timestamp, line.timestamp)
    return msg


def report_from_proto(report: jobs_pb2.JobReport) -> tuple[ProgressReport | None, list[LogLine], list[StepUpdate]]:
    """The parts of a JobReport in domain terms (the outcome is read by the caller)."""
    progress = None
    if report.HasField("progress"):
        p = report.progress
        progress = ProgressReport(
            report.job_id,
            ProgressCounts(p.total_items, p.processed_items, p.succeeded_items, p.failed_items),
            p.message,
            p.sequence,
        )
    now = datetime.now(UTC)
    logs = [
        LogLine(
            sequence=entry.sequence,
            level=level_from_proto(entry.level),
            message=entry.message,
            timestamp=from_timestamp(entry.timestamp) or now,
            stack_trace=entry.stack_trace,
            context=from_struct(entry.context),
        )
        for entry in report.logs
    ]
    steps = []
    for step in report.steps:
        status = STEP_FROM_PROTO.get(step.status)
        if status is None:
            raise InvalidArgumentError(f"step {step.index} has no valid status")
        steps.append(StepUpdate(step.index, step.name[:200], status, step.message[:500], from_timestamp(step.at)))
    return progress, logs, steps


def outcome_counts_to_proto(counts: OutcomeCounts) -> jobs_pb2.JobOutcomeCounts:
    return jobs_pb2.JobOutcomeCounts(
        completed=counts.completed,
        failed=counts.failed,
        cancelled=counts.cancelled,
        success_rate_percent=counts.success_rate_percent,
        average_duration_ms=counts.average_duration_ms,
    )
