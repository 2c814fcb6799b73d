"""Health queries: the summary (REQ-001 GET /health/summary, /health/components) and the history."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import strawberry
from b2x.monitoring.v1 import common_pb2, health_pb2, jobs_pb2, probes_pb2
from graphql import GraphQLError

from gateway.context import Context, Info
from gateway.enums import to_proto
from gateway.health import types as t
from gateway.health.convert import history_to_gql, summary_to_gql
from services.common.protoconv import set_timestamp

T = TypeVar("T")


async def _job_counts(ctx: Context) -> tuple[int, int]:
    """(running now, failed in the last 24 h), within the caller's tenant scope."""
    clients = ctx.state.clients
    tenants = [ctx.principal.tenant_id] if ctx.principal and ctx.principal.tenant_id else []
    running = jobs_pb2.ListJobsRequest(
        filter=jobs_pb2.JobFilter(statuses=[jobs_pb2.JOB_STATUS_RUNNING], tenant_ids=tenants),
        page=common_pb2.PageRequest(page_size=1),
    )
    failed = jobs_pb2.ListJobsRequest(
        filter=jobs_pb2.JobFilter(statuses=[jobs_pb2.JOB_STATUS_FAILED], tenant_ids=tenants),
        page=common_pb2.PageRequest(page_size=1),
    )
    set_timestamp(failed.filter.updated.start, datetime.now(UTC) - timedelta(hours=24))
    a, b = await asyncio.gather(
        clients.call(clients.jobs, clients.jobs.stub.ListJobs, running),
        clients.call(clients.jobs, clients.jobs.stub.ListJobs, failed),
    )
    return int(a.page_info.total_count), int(b.page_info.total_count)


async def _active_alerts(ctx: Context) -> int:
    clients = ctx.state.clients
    response = await clients.call(
        clients.probes,
        clients.probes.stub.ListResourceAlerts,
        probes_pb2.ListResourceAlertsRequest(active_only=True, page=common_pb2.PageRequest(page_size=1)),
    )
    return int(response.page_info.total_count)


async def _unless_unavailable(work: Awaitable[T]) -> T | None:
    """The result, or None when the service behind it is unreachable (other errors still surface)."""
    try:
        return await work
    except GraphQLError as error:
        if (error.extensions or {}).get("code") != "SERVICE_UNAVAILABLE":
            raise
        return None


@strawberry.type
class HealthQueries:
    @strawberry.field(description="Overall health, per-service components, running/failed jobs and active alerts")
    async def health_summary(self, info: Info) -> t.HealthSummary:
        ctx = info.context
        ctx.require()
        clients = ctx.state.clients
        # The health view must survive a jobs or probes outage: their figures are then null, not an error.
        summary, jobs, alerts = await asyncio.gather(
            clients.call(clients.health, clients.health.stub.GetHealthSummary, health_pb2.GetHealthSummaryRequest()),
            _unless_unavailable(_job_counts(ctx)),
            _unless_unavailable(_active_alerts(ctx)),
        )
        running, failed = jobs if jobs is not None else (None, None)
        return summary_to_gql(summary, running, failed, alerts)

    @strawberry.field(description="Availability and latency over time, for one service or all (1 h / 24 h / 7 d)")
    async def health_history(
        self,
        info: Info,
        service: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket: t.HealthHistoryBucket | None = None,
        time_zone: str | None = None,
    ) -> t.HealthHistory:
        info.context.require()
        request = health_pb2.GetHealthHistoryRequest(
            service=service or "",
            bucket=to_proto(health_pb2.HealthHistoryBucket, bucket)
            if bucket
            else health_pb2.HEALTH_HISTORY_BUCKET_UNSPECIFIED,
            time_zone=time_zone or "",
        )
        if since or until:
            set_timestamp(request.range.start, since)
            set_timestamp(request.range.end, until)
        clients = info.context.state.clients
        r = await clients.call(clients.health, clients.health.stub.GetHealthHistory, request)
        return history_to_gql(r)
