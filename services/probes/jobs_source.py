"""Who runs a job and for which tenant, from the jobs service's `GetJob` (for correlated call failures)."""

from __future__ import annotations

import grpc
from b2x.monitoring.v1 import jobs_pb2, jobs_pb2_grpc

from services.common.channels import open_channel
from services.common.errors import InvalidArgumentError, NotFoundError, UnavailableError
from services.common.tls import GrpcTLS
from services.probes.domain import JobOwner


class JobsServiceDirectory:
    """JobDirectory over gRPC; one channel per report batch (the SDK sends at most a few a second)."""

    def __init__(self, address: str, deadline_seconds: float, tls: GrpcTLS | None = None) -> None:
        self._address = address
        self._deadline = deadline_seconds
        self._tls = tls

    async def owners(self, job_ids: list[str]) -> dict[str, JobOwner]:
        """The owner of each job that exists; NotFoundError names the first one that does not."""
        found: dict[str, JobOwner] = {}
        try:
            async with open_channel(self._address, self._tls, target="jobs") as channel:
                stub = jobs_pb2_grpc.JobsServiceStub(channel)
                for job_id in job_ids:
                    response = await stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=self._deadline)
                    job = response.job
                    found[job_id] = JobOwner(job.id, job.worker_id, job.tenant_id)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code == grpc.StatusCode.NOT_FOUND:
                raise NotFoundError(f"failures[].job_id: {error.details() or 'no such job'}") from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgumentError(f"failures[].job_id: {error.details() or 'not a job id'}") from None
            raise UnavailableError(
                f"cannot look up the jobs of the failed calls: the jobs service at {self._address} is unavailable "
                f"({code.name}: {error.details() or 'no details'})"
            ) from None
        return found
