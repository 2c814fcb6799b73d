"""Announces job changes (`JobStatusChanged`) and new log lines (`JobLogAppended`) on the bus."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence

from b2x.monitoring.v1 import events_pb2, jobs_pb2

from services.common.events import EventBus, Topic, new_event
from services.jobs.convert import STATUS_TO_PROTO, job_to_proto, log_to_proto
from services.jobs.domain import Job, StoredLog
from services.jobs.service import Hop


def status_event(before: Job | None, after: Job, change: str) -> events_pb2.Event:
    event = new_event("jobs", tenant_id=after.tenant_id)
    job = job_to_proto(after)
    payload = event.job_status_changed  # filled in place: no intermediate message to copy
    payload.job_id = after.id
    payload.status = STATUS_TO_PROTO[after.status]
    payload.previous_status = STATUS_TO_PROTO[before.status] if before else jobs_pb2.JOB_STATUS_UNSPECIFIED
    payload.progress.CopyFrom(job.progress)
    payload.job.CopyFrom(job)
    payload.change = change
    return event


def add_hops(events: Sequence[events_pb2.Event], hops: Sequence[Hop]) -> None:
    """Stamp the report's hops and this moment ("published") on each event (docs/adr/0021-live-path.md)."""
    stamped = [*hops, ("published", time.time_ns())]
    for event in events:
        for name, at in stamped:
            event.hops.add(name=name, at_unix_nanos=at)


class BusJobEvents:
    """JobEventSink over Redis pub/sub. Events are queued and published in order by the bus's background
    task, so a frozen or lost Redis never holds up the reports and heartbeats that caused them; failures
    to publish are logged and counted by the bus, never raised."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    async def job_changed(self, before: Job | None, after: Job, change: str) -> None:
        self._bus.publish_soon(Topic.JOB_STATUS, [status_event(before, after, change)])

    async def jobs_changed(self, changes: Sequence[tuple[Job | None, Job, str]], hops: Sequence[Hop] = ()) -> None:
        events = [status_event(b, a, c) for b, a, c in changes]
        if hops:
            add_hops(events, hops)
        self._bus.publish_soon(Topic.JOB_STATUS, events)

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
