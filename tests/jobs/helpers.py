"""Small helpers for jobs tests: a stub on a real server and shorthand calls."""

from __future__ import annotations

from typing import Any

from b2x.monitoring.v1 import jobs_pb2, jobs_pb2_grpc

from services.jobs.main import build_server
from services.jobs.settings import JobsSettings
from tests.support import ServiceHarness

TIMEOUT = 10


async def jobs_stub(harness: ServiceHarness, **settings: Any) -> jobs_pb2_grpc.JobsServiceAsyncStub:
    """A stub on a jobs server started with these JobsSettings overrides."""
    address = await harness.serve("jobs", build_server, harness.settings_for(JobsSettings, **settings))
    return jobs_pb2_grpc.JobsServiceStub(harness.channel(address))


async def running_job(stub: Any, job_type: str = "ERP_STOCK_SYNC", total: int = 100, **kw: Any) -> Any:
    job = (
        await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type=job_type, total_items=total, **kw), timeout=TIMEOUT)
    ).job
    return (await stub.StartJob(jobs_pb2.StartJobRequest(job_id=job.id, worker_id="w-1"), timeout=TIMEOUT)).job


async def get(stub: Any, job_id: str) -> Any:
    return (await stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=TIMEOUT)).job
