"""protobuf ⇄ GraphQL types for jobs (the gateway's transport edge toward the jobs service)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from b2x.monitoring.v1 import common_pb2, events_pb2, jobs_pb2
from strawberry.scalars import JSON

from gateway.jobs import types as t
from services.common.protoconv import from_struct, from_timestamp, set_timestamp

_STATUS_TO_GQL = {
    jobs_pb2.JOB_STATUS_QUEUED: t.JobStatus.QUEUED,
    jobs_pb2.JOB_STATUS_RUNNING: t.JobStatus.RUNNING,
    jobs_pb2.JOB_STATUS_COMPLETED: t.JobStatus.COMPLETED,
    jobs_pb2.JOB_STATUS_FAILED: t.JobStatus.FAILED,
    jobs_pb2.JOB_STATUS_CANCELLED: t.JobStatus.CANCELLED,
}
STATUS_TO_PROTO = {v: k for k, v in _STATUS_TO_GQL.items()}
_CLASS_TO_GQL = {
    jobs_pb2.ERROR_CLASS_TRANSIENT: t.ErrorClass.TRANSIENT,
    jobs_pb2.ERROR_CLASS_PERMANENT: t.ErrorClass.PERMANENT,
}
SORT_TO_PROTO = {
    t.JobSortField.CREATED_AT: jobs_pb2.JOB_SORT_FIELD_CREATED_AT,
    t.JobSortField.STARTED_AT: jobs_pb2.JOB_SORT_FIELD_STARTED_AT,
    t.JobSortField.COMPLETED_AT: jobs_pb2.JOB_SORT_FIELD_COMPLETED_AT,
    t.JobSortField.UPDATED_AT: jobs_pb2.JOB_SORT_FIELD_UPDATED_AT,
    t.JobSortField.STATUS: jobs_pb2.JOB_SORT_FIELD_STATUS,
    t.JobSortField.JOB_TYPE: jobs_pb2.JOB_SORT_FIELD_JOB_TYPE,
    t.JobSortField.TENANT_ID: jobs_pb2.JOB_SORT_FIELD_TENANT_ID,
    t.JobSortField.PROGRESS: jobs_pb2.JOB_SORT_FIELD_PROGRESS,
    t.JobSortField.ID: jobs_pb2.JOB_SORT_FIELD_ID,
}
DIRECTION_TO_PROTO = {
    None: common_pb2.SORT_DIRECTION_UNSPECIFIED,
    t.SortDirection.ASC: common_pb2.SORT_DIRECTION_ASC,
    t.SortDirection.DESC: common_pb2.SORT_DIRECTION_DESC,
}


def status_to_gql(value: int) -> t.JobStatus | None:
    return _STATUS_TO_GQL.get(value)  # type: ignore[call-overload, no-any-return]


def progress_to_gql(p: jobs_pb2.JobProgress) -> t.JobProgress:
    return t.JobProgress(
        total_items=p.total_items,
        processed_items=p.processed_items,
        succeeded_items=p.succeeded_items,
        failed_items=p.failed_items,
        percent=p.percent,
        items_per_second=p.items_per_second,
        eta_seconds=p.eta_seconds if p.HasField("eta_seconds") else None,
        message=p.message,
        updated_at=from_timestamp(p.updated_at),
    )


def job_to_gql(job: jobs_pb2.SchedulerJob) -> t.Job:
    status = status_to_gql(job.status)
    assert status is not None, f"job {job.id} has no status"
    return t.Job(
        id=job.id,  # type: ignore[arg-type]
        job_type=job.job_type,
        tenant_id=job.tenant_id,
        status=status,
        progress_percent=job.progress_percent,
        progress=progress_to_gql(job.progress),
        created_at=from_timestamp(job.created_at) or datetime.now(UTC),
        started_at=from_timestamp(job.started_at),
        completed_at=from_timestamp(job.completed_at),
        updated_at=from_timestamp(job.updated_at) or datetime.now(UTC),
        last_heartbeat_at=from_timestamp(job.last_heartbeat_at),
        duration_ms=job.duration_ms,
        error_message=job.error_message or None,
        error_category=job.error_category or None,
        error_class=_CLASS_TO_GQL.get(job.error_class),
        error_stack_trace=job.error_stack_trace or None,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        root_job_id=job.root_job_id,  # type: ignore[arg-type]
        retry_of_job_id=job.retry_of_job_id or None,  # type: ignore[arg-type]
        worker_id=job.worker_id or None,
        cancel_requested=job.cancel_requested,
        created_by=job.created_by,
        metadata=JSON(from_struct(job.metadata)),
        parameters=JSON(from_struct(job.parameters)),
        steps=[step_to_gql(s) for s in job.steps],
        available_at=from_timestamp(job.available_at),
        cancel_reason=job.cancel_reason or None,
        log_sequence=job.log_sequence,
        retried_by_job_id=job.retried_by_job_id or None,  # type: ignore[arg-type]
    )


_STEP_TO_GQL = {
    jobs_pb2.JOB_STEP_STATUS_PENDING: t.StepStatus.PENDING,
    jobs_pb2.JOB_STEP_STATUS_RUNNING: t.StepStatus.RUNNING,
    jobs_pb2.JOB_STEP_STATUS_COMPLETED: t.StepStatus.COMPLETED,
    jobs_pb2.JOB_STEP_STATUS_FAILED: t.StepStatus.FAILED,
    jobs_pb2.JOB_STEP_STATUS_SKIPPED: t.StepStatus.SKIPPED,
}
LEVEL_TO_GQL = {
    common_pb2.LOG_LEVEL_TRACE: t.LogLevel.TRACE,
    common_pb2.LOG_LEVEL_DEBUG: t.LogLevel.DEBUG,
    common_pb2.LOG_LEVEL_INFO: t.LogLevel.INFO,
    common_pb2.LOG_LEVEL_WARNING: t.LogLevel.WARNING,
    common_pb2.LOG_LEVEL_ERROR: t.LogLevel.ERROR,
    common_pb2.LOG_LEVEL_CRITICAL: t.LogLevel.CRITICAL,
}
LEVEL_TO_PROTO = {v: k for k, v in LEVEL_TO_GQL.items()}


def step_to_gql(step: jobs_pb2.JobStep) -> t.JobStep:
    return t.JobStep(
        index=step.index,
        name=step.name,
        status=_STEP_TO_GQL.get(step.status, t.StepStatus.PENDING),
        started_at=from_timestamp(step.started_at),
        completed_at=from_timestamp(step.completed_at),
        message=step.message,
    )


def log_to_gql(line: jobs_pb2.JobExecutionLog) -> t.JobLogLine:
    return t.JobLogLine(
        id=line.id,  # type: ignore[arg-type]
        job_id=line.job_id,  # type: ignore[arg-type]
        sequence=line.sequence,
        level=LEVEL_TO_GQL.get(line.level, t.LogLevel.INFO),
        message=line.message,
        timestamp=from_timestamp(line.timestamp) or datetime.now(UTC),
        stack_trace=line.stack_trace or None,
        context=JSON(from_struct(line.context)),
    )


class LiveJobStatusEvent(t.JobStatusEvent):
    """A `JobStatusEvent` whose `job` is converted from the event when something first reads it.

    The whole job (timestamps, metadata, parameters, steps) costs more to convert than the rest of the
    event, and live subscriptions mostly select a few fields of the event itself (the dashboard's table,
    `bench/live_latency.py`): those never pay for it. Readers see the same value either way.
    """

    def __init__(self, source: jobs_pb2.SchedulerJob, **fields: object) -> None:
        self.__dict__.update(fields)
        self._job_source = source

    def __getattr__(self, name: str) -> object:
        if name != "job":
            raise AttributeError(name)
        job = job_to_gql(self.__dict__["_job_source"])
        self.__dict__["job"] = job
        return job


def status_event_to_gql(event: events_pb2.Event) -> t.JobStatusEvent:
    change = event.job_status_changed
    status = status_to_gql(change.status)
    assert status is not None
    return LiveJobStatusEvent(
        change.job,
        job_id=change.job_id,
        status=status,
        previous_status=status_to_gql(change.previous_status),
        change=change.change,
        progress=progress_to_gql(change.progress),
        occurred_at=from_timestamp(event.occurred_at) or datetime.now(UTC),
        hops=hops_to_gql(event),
    )


def hops_to_gql(event: events_pb2.Event) -> list[t.EventHop]:
    """The event's hops, and this moment as "gateway_resolved" (the subscriber's resolver got it)."""
    if not event.hops:
        return []
    hops = [t.EventHop(name=h.name, at_unix_micros=h.at_unix_nanos // 1000) for h in event.hops]
    hops.append(t.EventHop(name="gateway_resolved", at_unix_micros=time.time_ns() // 1000))
    return hops


def resync_event(job: jobs_pb2.SchedulerJob) -> t.JobStatusEvent:
    """A job re-read after missed events, presented as an event with change 'resync'."""
    gql = job_to_gql(job)
    return t.JobStatusEvent(
        job_id=gql.id,
        status=gql.status,
        previous_status=None,
        change="resync",
        progress=gql.progress,
        job=gql,
        occurred_at=gql.updated_at,
    )


def filter_to_proto(flt: t.JobFilter | None, tenant_scope: str | None) -> jobs_pb2.JobFilter | None:
    """The wire filter; None when a tenant-scoped caller asked only for other tenants (nothing visible).

    A tenant-scoped caller is confined to its tenant whatever it asked for; asking for other tenants
    yields an empty answer rather than an error that would confirm they exist.
    """
    msg = jobs_pb2.JobFilter()
    if flt is not None:
        msg.statuses.extend(STATUS_TO_PROTO[s] for s in flt.status or [])
        msg.job_types.extend(flt.job_type or [])
        msg.tenant_ids.extend(flt.tenant_id or [])
        if flt.created_after or flt.created_before:
            set_timestamp(msg.created.start, flt.created_after)
            set_timestamp(msg.created.end, flt.created_before)
        msg.text = flt.search or ""
        msg.id_prefix = flt.id_prefix or ""
    if tenant_scope is not None:
        asked = list(msg.tenant_ids)
        if asked and tenant_scope not in asked:
            return None
        del msg.tenant_ids[:]
        msg.tenant_ids.append(tenant_scope)
    return msg


def outcome_counts_to_gql(c: jobs_pb2.JobOutcomeCounts) -> t.JobOutcomeCounts:
    return t.JobOutcomeCounts(
        completed=c.completed,
        failed=c.failed,
        cancelled=c.cancelled,
        finished=c.completed + c.failed + c.cancelled,
        success_rate_percent=c.success_rate_percent if c.HasField("success_rate_percent") else None,
        average_duration_ms=c.average_duration_ms if c.HasField("average_duration_ms") else None,
    )
