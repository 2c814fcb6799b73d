"""Job queries: `jobs` (filter, sort, cursor pagination), `job(id)`, logs, counts, and the dashboard's trend
(`jobTrend`, from daily rollups) and filter choices (`jobFacets`)."""

from __future__ import annotations

from datetime import date

import strawberry
from b2x.monitoring.v1 import common_pb2, jobs_pb2

from gateway.context import Info
from gateway.errors import gql_error
from gateway.jobs import types as t
from gateway.jobs.convert import (
    DIRECTION_TO_PROTO,
    LEVEL_TO_PROTO,
    SORT_TO_PROTO,
    filter_to_proto,
    job_to_gql,
    log_to_gql,
    outcome_counts_to_gql,
    status_to_gql,
)

MAX_FIRST = 500
MAX_TREND_DAYS = 90
MAX_LOG_LINES = 10_000


async def visible_job(info: Info, job_id: str) -> jobs_pb2.SchedulerJob:
    """A job the caller may see; NOT_FOUND for unknown ids and for other tenants' jobs alike."""
    ctx = info.context
    principal = ctx.require()
    clients = ctx.state.clients
    response: jobs_pb2.GetJobResponse = await clients.call(
        clients.jobs, clients.jobs.stub.GetJob, jobs_pb2.GetJobRequest(job_id=job_id)
    )
    if not principal.sees_tenant(response.job.tenant_id):
        raise gql_error(f"job {job_id} not found", "NOT_FOUND")
    return response.job


async def fetch_job(info: Info, job_id: str) -> t.Job:
    return job_to_gql(await visible_job(info, job_id))


@strawberry.type
class JobQueries:
    @strawberry.field(description="Jobs matching a filter, newest first by default, in pages of `first`")
    async def jobs(
        self,
        info: Info,
        filter: t.JobFilter | None = None,
        sort: t.JobSort | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> t.JobConnection:
        ctx = info.context
        principal = ctx.require()
        if not 1 <= first <= MAX_FIRST:
            raise gql_error(f"first must be between 1 and {MAX_FIRST} (got {first})", "BAD_USER_INPUT")
        wire_filter = filter_to_proto(filter, principal.tenant_id)
        if wire_filter is None:
            return t.JobConnection(edges=[], page_info=t.PageInfo(has_next_page=False, end_cursor=None), total_count=0)
        sort = sort or t.JobSort()
        request = jobs_pb2.ListJobsRequest(
            filter=wire_filter,
            sort_by=SORT_TO_PROTO[sort.field],
            direction=DIRECTION_TO_PROTO[sort.direction],
            page=common_pb2.PageRequest(page_size=first, page_token=after or ""),
        )
        clients = ctx.state.clients
        response = await clients.call(clients.jobs, clients.jobs.stub.ListJobs, request)
        nodes = [job_to_gql(j) for j in response.jobs]
        end_cursor = response.page_info.next_page_token or None
        # Keyset cursors exist only at page boundaries; every edge of a page carries the page's end cursor.
        edges = [t.JobEdge(cursor=end_cursor or "", node=n) for n in nodes]
        return t.JobConnection(
            edges=edges,
            page_info=t.PageInfo(has_next_page=response.page_info.has_next_page, end_cursor=end_cursor),
            total_count=response.page_info.total_count,
        )

    @strawberry.field(description="One job with its details (REQ-001 GET /jobs/{id})")
    async def job(self, info: Info, id: strawberry.ID) -> t.Job:
        return await fetch_job(info, str(id))

    @strawberry.field(description="A job with every attempt of its retry chain")
    async def job_details(self, info: Info, id: strawberry.ID) -> t.JobDetails:
        await visible_job(info, str(id))
        clients = info.context.state.clients
        response = await clients.call(
            clients.jobs, clients.jobs.stub.GetJobDetails, jobs_pb2.GetJobDetailsRequest(job_id=str(id))
        )
        return t.JobDetails(job=job_to_gql(response.job), attempts=[job_to_gql(a) for a in response.attempts])

    @strawberry.field(
        description="Execution log lines of a job (REQ-001 GET /jobs/{id}/logs): the last `last`, "
        "or up to `first` after `afterSequence`; filter by level and text"
    )
    async def job_logs(
        self,
        info: Info,
        job_id: strawberry.ID,
        last: int | None = None,
        after_sequence: int = 0,
        first: int = 1000,
        min_level: t.LogLevel | None = None,
        search: str | None = None,
    ) -> t.JobLogPage:
        if last is not None and not 1 <= last <= MAX_LOG_LINES:
            raise gql_error(f"last must be between 1 and {MAX_LOG_LINES}", "BAD_USER_INPUT")
        if not 1 <= first <= MAX_LOG_LINES:
            raise gql_error(f"first must be between 1 and {MAX_LOG_LINES}", "BAD_USER_INPUT")
        await visible_job(info, str(job_id))
        clients = info.context.state.clients
        request = jobs_pb2.ListJobLogsRequest(
            job_id=str(job_id),
            after_sequence=after_sequence,
            tail=last or 0,
            limit=first,
            min_level=LEVEL_TO_PROTO[min_level] if min_level else common_pb2.LOG_LEVEL_UNSPECIFIED,
            text=search or "",
        )
        response = await clients.call(clients.jobs, clients.jobs.stub.ListJobLogs, request)
        return t.JobLogPage(lines=[log_to_gql(line) for line in response.logs], last_sequence=response.last_sequence)

    @strawberry.field(description="How many jobs per status match the filter (its status part ignored)")
    async def job_status_counts(self, info: Info, filter: t.JobFilter | None = None) -> list[t.StatusCount]:
        principal = info.context.require()
        wire_filter = filter_to_proto(filter, principal.tenant_id)
        if wire_filter is None:
            return [t.StatusCount(status=s, count=0) for s in t.JobStatus]
        clients = info.context.state.clients
        response = await clients.call(
            clients.jobs, clients.jobs.stub.CountJobs, jobs_pb2.CountJobsRequest(filter=wire_filter)
        )
        return [
            t.StatusCount(status=status, count=c.count)
            for c in response.counts
            if (status := status_to_gql(c.status)) is not None
        ]

    @strawberry.field(description="Jobs finished per day (UTC) and per type over the last `days` days (1-90)")
    async def job_trend(self, info: Info, days: int = 7) -> t.JobTrend:
        principal = info.context.require()
        if not 1 <= days <= MAX_TREND_DAYS:
            raise gql_error(f"days must be between 1 and {MAX_TREND_DAYS} (got {days})", "BAD_USER_INPUT")
        tenants = [principal.tenant_id] if principal.tenant_id else []
        clients = info.context.state.clients
        r = await clients.call(
            clients.jobs, clients.jobs.stub.GetJobTrend, jobs_pb2.GetJobTrendRequest(days=days, tenant_ids=tenants)
        )
        return t.JobTrend(
            days=[
                t.JobTrendDay(date=date.fromisoformat(d.date), counts=outcome_counts_to_gql(d.counts)) for d in r.days
            ],
            by_type=[t.JobTypeTrend(job_type=x.job_type, counts=outcome_counts_to_gql(x.counts)) for x in r.by_type],
            total=outcome_counts_to_gql(r.total),
        )

    @strawberry.field(description="Job types and tenants to offer in filters (within the caller's tenant scope)")
    async def job_facets(self, info: Info) -> t.JobFacets:
        principal = info.context.require()
        tenants = [principal.tenant_id] if principal.tenant_id else []
        clients = info.context.state.clients
        r = await clients.call(
            clients.jobs, clients.jobs.stub.GetJobFacets, jobs_pb2.GetJobFacetsRequest(tenant_ids=tenants)
        )
        return t.JobFacets(job_types=list(r.job_types), tenant_ids=list(r.tenant_ids))
