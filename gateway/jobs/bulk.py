"""`retryFailedJobs`: the overview's quick action — retry the failed jobs of a filter that nobody retried yet."""

from __future__ import annotations

import strawberry
from b2x.monitoring.v1 import common_pb2, jobs_pb2
from graphql import GraphQLError

from gateway.auth import Role
from gateway.context import Info
from gateway.errors import gql_error
from gateway.jobs import types as t
from gateway.jobs.convert import filter_to_proto

MAX_LIMIT = 200
MAX_SCANNED = 2000


@strawberry.type(description="What a bulk retry did")
class BulkRetryResult:
    retried: int = strawberry.field(description="New attempts queued now")
    skipped: int = strawberry.field(description="Failed jobs already retried (automatically or by someone)")
    errors: list[str] = strawberry.field(description="Jobs the jobs service refused, with its reason")
    attempt_ids: list[strawberry.ID] = strawberry.field(description="The new attempts")


@strawberry.type
class BulkJobMutations:
    @strawberry.mutation(
        description="Retry up to `limit` failed jobs matching the filter that have not been retried yet (operator). "
        "The filter's status part is ignored: only FAILED jobs are retried."
    )
    async def retry_failed_jobs(
        self, info: Info, filter: t.JobFilter | None = None, limit: int = 50
    ) -> BulkRetryResult:
        ctx = info.context
        caller = ctx.require()
        async with ctx.state.audit.action(caller, "retryFailedJobs", None, {"limit": limit}, ctx.client_ip):
            principal = ctx.require(Role.OPERATOR)
            if not 1 <= limit <= MAX_LIMIT:
                raise gql_error(f"limit must be between 1 and {MAX_LIMIT} (got {limit})", "BAD_USER_INPUT")
            wire = filter_to_proto(filter, principal.tenant_id)
            result = BulkRetryResult(retried=0, skipped=0, errors=[], attempt_ids=[])
            if wire is None:
                return result
            del wire.statuses[:]
            wire.statuses.append(jobs_pb2.JOB_STATUS_FAILED)
            request = jobs_pb2.ListJobsRequest(filter=wire, page=common_pb2.PageRequest(page_size=200))
            clients = ctx.state.clients
            scanned = 0
            by = f"{principal.name} ({principal.key_id})"
            while result.retried < limit and scanned < MAX_SCANNED:
                page = await clients.call(clients.jobs, clients.jobs.stub.ListJobs, request)
                for job in page.jobs:
                    scanned += 1
                    if job.retried_by_job_id:
                        result.skipped += 1
                        continue
                    if result.retried >= limit:
                        break
                    try:
                        answer = await clients.call(
                            clients.jobs,
                            clients.jobs.stub.RetryJob,
                            jobs_pb2.RetryJobRequest(job_id=job.id, requested_by=by),
                        )
                    except GraphQLError as error:
                        result.errors.append(f"{job.id}: {error.message}")
                        continue
                    if answer.created:
                        result.retried += 1
                        result.attempt_ids.append(strawberry.ID(answer.job.id))
                    else:
                        result.skipped += 1
                if not page.page_info.has_next_page:
                    break
                request.page.page_token = page.page_info.next_page_token
        return result
