"""Announces job changes (`JobStatusChanged`) and new log lines (`JobLogAppended`) on the bus."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from b2x.monitoring.v1 import events_pb2, jobs_pb2

from services.common.events import EventBus, Topic, new_event
from services.jobs.convert import STATUS_TO_PROTO, job_to_proto, log_to_proto
from services.jobs.domain import Job, StoredLog


def status_event(before: Job | None, after: Job, change: str) -> events_pb2.Event:
    event = new_event("jobs", tenant_id=after.tenant_id)
    job = job_to_proto(after)
    event.job_status_changed.CopyFrom(
        events_pb2.JobStatusChanged(
            job_id=after.id,
            status=STATUS_TO_PROTO[after.status],
            previous_status=STATUS_TO_PROTO[before.status] if before else jobs_pb2.JOB_STATUS_UNSPECIFIED,
            progress=job.progress,
            job=job,
            change=change,
        )
    )
    return event


class BusJobEvents:
    """JobEventSink over Redis pub/sub. Events are queued and published in order by the bus's background
    task, so a frozen or lost Redis never holds up the reports and heartbeats that caused them; failures
    to publish are logged and counted by the bus, never raised."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    async def job_changed(self, before: Job | None, after: Job, change: str) -> None:
        self._bus.publish_soon(Topic.JOB_STATUS, [status_event(before, after, change)])

    async def jobs_changed(self, changes: Sequence[tuple[Job | None, Job, str]]) -> None:
        self._bus.publish_soon(Topic.JOB_STATUS, [status_event(b, a, c) for b, a, c in changes])

    async def logs_appended(self, lines: Sequence[StoredLog]) -> None:
        """One event per job with its new lines."""
        by_job: dict[str, list[StoredLog]] = defaultdict(list)
        for line in lines:
            by_job[line.job_id].append(line)
        events = []
        for job_id, job_lines in by_job.items():
            event = new_event("jobs", tenant_id=job_lines[0].tenant_id)
            event.job_log_appended.job_id = job_id
            event.job_log_appended.logs.extend(log_to_proto(line) for line in job_lines)
            events.append(event)
        self._bus.publish_soon(Topic.JOB_LOGS, events)
