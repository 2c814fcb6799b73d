"""Job mutations (operator or admin; each one written to the audit log)."""

from __future__ import annotations

import strawberry
from b2x.monitoring.v1 import common_pb2, jobs_pb2
from graphql import GraphQLError

from gateway.auth import Role
from gateway.context import Info
from gateway.errors import forbidden, gql_error
from gateway.jobs import types as t
from gateway.jobs.convert import filter_to_proto, job_to_gql
from gateway.jobs.queries import visible_job
from services.common.protoconv import to_struct

MAX_BULK_RETRY = 200
MAX_BULK_SCANNED = 2000


@strawberry.type
class JobMutations:
    @strawberry.mutation(description="Queue a job (e.g. start a sync by hand); workers of its type pick it up")
    async def create_job(self, info: Info, input: t.CreateJobInput) -> t.Job:
        ctx = info.context
        tenant = input.tenant_id or ctx.require().tenant_id or ""
        arguments = {"jobType": input.job_type, "tenantId": tenant, "totalItems": input.total_items}
        async with ctx.audited("createJob", None, arguments) as audit:
            principal = ctx.require(Role.OPERATOR)
            if not principal.sees_tenant(tenant or "default"):
                raise forbidden(f"your key is limited to tenant {principal.tenant_id}")
            audit.target_tenant = tenant or "default"
            request = jobs_pb2.CreateJobRequest(
                job_type=input.job_type,
                tenant_id=tenant,
                parameters=to_struct(input.parameters if isinstance(input.parameters, dict) else None),
                metadata=to_struct(input.metadata if isinstance(input.metadata, dict) else None),
                total_items=input.total_items,
                max_attempts=input.max_attempts,
                idempotency_key=input.idempotency_key or "",
                created_by=f"{principal.name} ({principal.key_id})",
            )
            clients = ctx.state.clients
            response = await clients.call(clients.jobs, clients.jobs.stub.CreateJob, request)
        return job_to_gql(response.job)

    @strawberry.mutation(description="Retry a failed or cancelled job: a new attempt with the same parameters. "
                         "Retrying twice returns the attempt the first retry made (created: false).")  # fmt: skip
    async def retry_job(self, info: Info, id: strawberry.ID) -> t.RetryJobResult:
        ctx = info.context
        async with ctx.audited("retryJob", str(id)) as audit:
            principal = ctx.require(Role.OPERATOR)
            audit.target_tenant = (await visible_job(info, str(id))).tenant_id
            clients = ctx.state.clients
            response = await clients.call(
                clients.jobs,
                clients.jobs.stub.RetryJob,
                jobs_pb2.RetryJobRequest(job_id=str(id), requested_by=f"{principal.name} ({principal.key_id})"),
            )
        return t.RetryJobResult(job=job_to_gql(response.job), created=response.created)

    @strawberry.mutation(description="Cancel a job: a queued one at once, a running one as soon as its worker stops "
                         "(within seconds)")  # fmt: skip
    async def cancel_job(
        self,
        info: Info,
        id: strawberry.ID,
        reason: str | None = None,
    ) -> t.Job:
        ctx = info.context
        arguments = {"reason": reason}
        async with ctx.audited("cancelJob", str(id), arguments) as audit:
            principal = ctx.require(Role.OPERATOR)
            audit.target_tenant = (await visible_job(info, str(id))).tenant_id
            clients = ctx.state.clients
            response = await clients.call(
                clients.jobs,
                clients.jobs.stub.CancelJob,
                jobs_pb2.CancelJobRequest(
                    job_id=str(id), reason=reason or "", requested_by=f"{principal.name} ({principal.key_id})"
                ),
            )
        return job_to_gql(response.job)

    @strawberry.mutation(
        description="Retry up to `limit` failed jobs matching the filter that have not been retried yet (operator). "
        "The filter's status part is ignored: only FAILED jobs are retried."
    )
    async def retry_failed_jobs(
        self, info: Info, filter: t.JobFilter | None = None, limit: int = 50
    ) -> t.BulkRetryResult:
        ctx = info.context
        async with ctx.audited("retryFailedJobs", None, {"limit": limit}):
            principal = ctx.require(Role.OPERATOR)
            if not 1 <= limit <= MAX_BULK_RETRY:
                raise gql_error(f"limit must be between 1 and {MAX_BULK_RETRY} (got {limit})", "BAD_USER_INPUT")
            wire = filter_to_proto(filter, principal.tenant_id)
            result = t.BulkRetryResult(retried=0, skipped=0, errors=[], attempt_ids=[])
            if wire is None:
                return result
            del wire.statuses[:]
            wire.statuses.append(jobs_pb2.JOB_STATUS_FAILED)
            request = jobs_pb2.ListJobsRequest(filter=wire, page=common_pb2.PageRequest(page_size=200))
            clients = ctx.state.clients
            scanned = 0
            by = f"{principal.name} ({principal.key_id})"
            while result.retried < limit and scanned < MAX_BULK_SCANNED:
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
