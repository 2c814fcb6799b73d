"""Job trends for dashboards: `jobTrend` (per day and per type, from daily rollups) and `jobFacets`."""

from __future__ import annotations

from datetime import date

import strawberry
from b2x.monitoring.v1 import jobs_pb2

from gateway.context import Info
from gateway.errors import gql_error

MAX_DAYS = 90


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


def _counts(c: jobs_pb2.JobOutcomeCounts) -> JobOutcomeCounts:
    return JobOutcomeCounts(
        completed=c.completed,
        failed=c.failed,
        cancelled=c.cancelled,
        finished=c.completed + c.failed + c.cancelled,
        success_rate_percent=c.success_rate_percent if c.HasField("success_rate_percent") else None,
        average_duration_ms=c.average_duration_ms if c.HasField("average_duration_ms") else None,
    )


@strawberry.type
class JobTrendQueries:
    @strawberry.field(description="Jobs finished per day (UTC) and per type over the last `days` days (1-90)")
    async def job_trend(self, info: Info, days: int = 7) -> JobTrend:
        principal = info.context.require()
        if not 1 <= days <= MAX_DAYS:
            raise gql_error(f"days must be between 1 and {MAX_DAYS} (got {days})", "BAD_USER_INPUT")
        tenants = [principal.tenant_id] if principal.tenant_id else []
        clients = info.context.state.clients
        r = await clients.call(
            clients.jobs, clients.jobs.stub.GetJobTrend, jobs_pb2.GetJobTrendRequest(days=days, tenant_ids=tenants)
        )
        return JobTrend(
            days=[JobTrendDay(date=date.fromisoformat(d.date), counts=_counts(d.counts)) for d in r.days],
            by_type=[JobTypeTrend(job_type=t.job_type, counts=_counts(t.counts)) for t in r.by_type],
            total=_counts(r.total),
        )

    @strawberry.field(description="Job types and tenants to offer in filters (within the caller's tenant scope)")
    async def job_facets(self, info: Info) -> JobFacets:
        principal = info.context.require()
        tenants = [principal.tenant_id] if principal.tenant_id else []
        clients = info.context.state.clients
        r = await clients.call(
            clients.jobs, clients.jobs.stub.GetJobFacets, jobs_pb2.GetJobFacetsRequest(tenant_ids=tenants)
        )
        return JobFacets(job_types=list(r.job_types), tenant_ids=list(r.tenant_ids))
