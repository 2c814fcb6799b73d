"""Job mutations (operator or admin; each one written to the audit log)."""

from __future__ import annotations

import strawberry
from b2x.monitoring.v1 import jobs_pb2

from gateway.auth import Role
from gateway.context import Info
from gateway.errors import forbidden
from gateway.jobs import types as t
from gateway.jobs.convert import job_to_gql
from gateway.jobs.queries import visible_job
from services.common.protoconv import to_struct


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
