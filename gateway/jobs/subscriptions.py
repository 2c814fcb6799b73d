"""Live job updates over graphql-transport-ws, fed by the shared Redis subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import strawberry
from b2x.monitoring.v1 import common_pb2, events_pb2, jobs_pb2
from graphql import GraphQLError

from gateway.auth import Principal
from gateway.context import Context, Info
from gateway.errors import gql_error
from gateway.fanout import deliver, shared
from gateway.jobs import types as t
from gateway.jobs.convert import STATUS_TO_PROTO, log_to_gql, resync_event, status_event_to_gql
from gateway.jobs.queries import visible_job
from services.common.events import Resync, Topic
from services.common.logging import get_logger
from services.common.protoconv import from_timestamp, set_timestamp

log = get_logger(__name__)
FINISHED = frozenset({jobs_pb2.JOB_STATUS_COMPLETED, jobs_pb2.JOB_STATUS_FAILED, jobs_pb2.JOB_STATUS_CANCELLED})
CATCH_UP_LIMIT = 2000
CATCH_UP_MARGIN = timedelta(seconds=10)  # longer than a batch of changes takes from its stamp to its event
MAX_JOB_IDS = 500


def _visible(principal: Principal, tenant: str, job_id: str, want_job: str | None, want_tenant: str | None) -> bool:
    if not principal.sees_tenant(tenant):
        return False
    if want_job and job_id != want_job:
        return False
    return not (want_tenant and tenant != want_tenant)


async def _catch_up(
    ctx: Context, principal: Principal, since: datetime, want_job: str | None, want_tenant: str | None
) -> list[jobs_pb2.SchedulerJob]:
    """Jobs changed since a little before `since`, re-read from the jobs service after events may have been missed.

    `updatedAt` is stamped before the change commits, and replicas commit in their own time, so an event can
    arrive after one stamped later: a client that resumes from the newest stamp it saw would never hear of it
    (a gateway killed between the two, tests/e2e/test_replicas.py). Reading from CATCH_UP_MARGIN earlier sends a
    few jobs again (change 'resync', the job as it is now), which a client applies as state."""
    flt = jobs_pb2.JobFilter()
    set_timestamp(flt.updated.start, since - CATCH_UP_MARGIN)
    tenant = principal.tenant_id or want_tenant
    if tenant:
        flt.tenant_ids.append(tenant)
    request = jobs_pb2.ListJobsRequest(
        filter=flt,
        sort_by=jobs_pb2.JOB_SORT_FIELD_UPDATED_AT,
        direction=common_pb2.SORT_DIRECTION_ASC,
        page=common_pb2.PageRequest(page_size=200),
    )
    clients = ctx.state.clients
    found: list[jobs_pb2.SchedulerJob] = []
    try:
        while len(found) < CATCH_UP_LIMIT:
            page = await clients.call(clients.jobs, clients.jobs.stub.ListJobs, request)
            found += [j for j in page.jobs if not want_job or j.id == want_job]
            if not page.page_info.has_next_page:
                break
            request.page.page_token = page.page_info.next_page_token
    except GraphQLError as error:
        log.warning("subscription catch-up failed; will retry on the next resync", error=error.message)
    return found


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _from_ns(ns: int) -> datetime:
    """A Timestamp's ns as `from_timestamp` reads it (µs, truncated); the epoch for 0 (unset)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


@dataclass(frozen=True)
class _Wanted:
    """A subscriber's filters on jobs, kinds of change and statuses (None or empty: all)."""

    ids: set[str] | None
    changes: set[str] | None
    statuses: set[int]

    def accepts_event(self, event: events_pb2.Event) -> bool:
        """The same test on the bus's reader, before the event is queued (ids and kinds of change only)."""
        payload = event.job_status_changed
        return (self.ids is None or payload.job_id in self.ids) and (
            self.changes is None or payload.change in self.changes
        )

    def accepts(self, job_id: str, change: str, status: int) -> bool:
        return (
            (self.ids is None or job_id in self.ids)
            and (self.changes is None or change in self.changes)
            and (not self.statuses or status in self.statuses)
        )


@strawberry.type
class JobSubscriptions:
    @strawberry.subscription(
        description="Every job change (created, started, progress, completed, failed, cancelled). "
        "After a gap in the live stream, the jobs changed meanwhile arrive with change 'resync'."
    )
    async def job_status_changed(
        self,
        info: Info,
        job_id: strawberry.ID | None = None,
        status: list[t.JobStatus] | None = None,
        tenant_id: str | None = None,
        job_ids: Annotated[
            list[strawberry.ID] | None,
            strawberry.argument(description=f"Only these jobs (at most {MAX_JOB_IDS}), e.g. the rows a table shows"),
        ] = None,
        changes: Annotated[
            list[str] | None, strawberry.argument(description="Only these kinds of change, e.g. all but 'progress'")
        ] = None,
        since: Annotated[
            datetime | None,
            strawberry.argument(
                description="Resume point: the newest `job.updatedAt` this client received. The jobs changed since "
                "then (and in the 10 s before it, since a change can arrive after one stamped later) are sent first, "
                "with change 'resync', so a client that reconnects (after a gateway restart, say) catches up on what "
                "it missed; without it, only changes from now on."
            ),
        ] = None,
    ) -> AsyncGenerator[t.JobStatusEvent, None]:
        ctx = info.context
        principal = ctx.require()
        if job_ids is not None and len(job_ids) > MAX_JOB_IDS:
            raise gql_error(f"jobIds takes at most {MAX_JOB_IDS} ids (got {len(job_ids)})", "BAD_USER_INPUT")
        want_job = str(job_id) if job_id else None
        wanted = _Wanted(
            ids={str(i) for i in job_ids} if job_ids is not None else None,
            changes=set(changes) if changes is not None else None,
            statuses={STATUS_TO_PROTO[s] for s in status or []},
        )
        subscription = await ctx.state.bus.subscribe(Topic.JOB_STATUS, accept=wanted.accepts_event)
        last_seen = datetime.now(UTC)
        seen_ns = 0  # the newest `job.updated_at` of the events since, in ns: cheaper per event than a datetime
        try:
            if since is not None:
                # Subscribed first, read second: a change between the two arrives twice rather than never.
                resume = since if since.tzinfo else since.replace(tzinfo=UTC)
                for job in await _catch_up(ctx, principal, resume, want_job, tenant_id):
                    if wanted.accepts(job.id, "resync", job.status):
                        yield resync_event(job)
            async for item in subscription:
                if isinstance(item, Resync):
                    last_seen = max(last_seen, _from_ns(seen_ns))
                    for job in await _catch_up(ctx, principal, last_seen, want_job, tenant_id):
                        last_seen = max(last_seen, from_timestamp(job.updated_at) or last_seen)
                        if wanted.accepts(job.id, "resync", job.status):
                            yield resync_event(job)
                    continue
                change = item.job_status_changed
                if not item.HasField("job_status_changed") or not _visible(
                    principal, item.tenant_id, change.job_id, want_job, tenant_id
                ):
                    continue
                updated = change.job.updated_at
                seen_ns = max(seen_ns, updated.seconds * 1_000_000_000 + updated.nanos)
                # Filtered before any conversion: a table of 50 rows must not pay for 1 000 reporting jobs.
                if not wanted.accepts(change.job_id, change.change, change.status):
                    continue
                event = shared(item, status_event_to_gql)  # once per event, whatever the subscribers
                if not await deliver(event):  # sent here when its answer is a known plain projection
                    yield event
        finally:
            await subscription.close()

    @strawberry.subscription(
        description="New log lines of one job as they are stored (REQ-001 log follow). With `afterSequence` (0 "
        "included) the lines stored after it are sent first, so nothing between a read and the subscription is "
        "lost; without it, only lines from now on. After a gap in the live stream, the lines missed meanwhile are "
        "re-read and sent in order. When the job finishes (or is reaped) the last lines are sent and the "
        "subscription completes."
    )
    async def job_log_appended(
        self, info: Info, job_id: strawberry.ID, after_sequence: int | None = None
    ) -> AsyncGenerator[t.JobLogEvent, None]:
        ctx = info.context
        subscription = await ctx.state.bus.subscribe(Topic.JOB_LOGS, Topic.JOB_STATUS)
        last = after_sequence or 0
        try:
            job = await visible_job(info, str(job_id))  # NOT_FOUND for unknown or other tenants' jobs
            if after_sequence is not None:
                missed = await _read_logs_after(ctx, str(job_id), last)
                if missed:
                    last = missed[-1].sequence
                    yield t.JobLogEvent(job_id=job_id, lines=[log_to_gql(line) for line in missed])
            if job.status in FINISHED:
                return  # nothing more will be written: the follower completes
            async for item in subscription:
                lines, finished = await _news(ctx, str(job_id), item, last)
                if lines:
                    last = lines[-1].sequence
                    yield t.JobLogEvent(job_id=job_id, lines=[log_to_gql(line) for line in lines])
                if finished:
                    return
        finally:
            await subscription.close()


async def _news(
    ctx: Context, job_id: str, item: events_pb2.Event | Resync, last: int
) -> tuple[list[jobs_pb2.JobExecutionLog], bool]:
    """What an item of the bus means to a follower of `job_id`'s log: new lines, and whether the job finished."""
    if isinstance(item, Resync):
        return await _read_logs_after(ctx, job_id, last), False
    if item.HasField("job_status_changed") and item.job_status_changed.job_id == job_id:
        if item.job_status_changed.status not in FINISHED:
            return [], False
        # The job ended (or was reaped): its last lines, the reaper's included, then the follower completes.
        return await _read_logs_after(ctx, job_id, last), True
    if item.HasField("job_log_appended") and item.job_log_appended.job_id == job_id:
        lines = [line for line in item.job_log_appended.logs if line.sequence > last]
        if lines and lines[0].sequence != last + 1 and last:
            # A gap (an event lost or reordered): read the missing lines from the store.
            return await _read_logs_after(ctx, job_id, last), False
        return lines, False
    return [], False


async def _read_logs_after(ctx: Context, job_id: str, after: int) -> list[jobs_pb2.JobExecutionLog]:
    clients = ctx.state.clients
    try:
        response = await clients.call(
            clients.jobs,
            clients.jobs.stub.ListJobLogs,
            jobs_pb2.ListJobLogsRequest(job_id=job_id, after_sequence=after, limit=5000),
        )
    except GraphQLError as error:
        log.warning("log catch-up failed; will retry on the next resync", error=error.message)
        return []
    return list(response.logs)
