"""Start the health service (with its alert lifecycle) and the jobs service on port 0, and poll alerts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from b2x.monitoring.v1 import alerts_pb2, alerts_pb2_grpc, health_pb2, health_pb2_grpc, jobs_pb2

from services.health.main import build_server
from services.health.settings import HealthSettings
from tests.support import ServiceHarness

TIMEOUT = 10
T = TypeVar("T")


async def serve_alerting(harness: ServiceHarness, config_file: Path | None = None, **overrides: Any) -> str:
    """A health service (delivery not configured) on port 0; returns its address."""
    overrides.setdefault("health_stream_block_ms", 100)
    settings = harness.settings_for(HealthSettings, config_file=config_file, **overrides)
    return await harness.serve("health", build_server, settings)


async def start_alerting(
    harness: ServiceHarness, config_file: Path | None = None, **overrides: Any
) -> tuple[health_pb2_grpc.HealthServiceStub, alerts_pb2_grpc.AlertsServiceStub]:
    channel = harness.channel(await serve_alerting(harness, config_file, **overrides))
    return health_pb2_grpc.HealthServiceStub(channel), alerts_pb2_grpc.AlertsServiceStub(channel)


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 15.0) -> T:
    """The first truthy value `probe` returns within `timeout` seconds; AssertionError otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def alerts_by_rule(
    stub: alerts_pb2_grpc.AlertsServiceStub, rule: str, tenant_scope: str | None = None
) -> list[health_pb2.Alert]:
    request = alerts_pb2.ListAlertsRequest(filter=alerts_pb2.AlertFilter(rules=[rule]), first=100)
    if tenant_scope is not None:
        request.tenant_scope = tenant_scope
    return list((await stub.ListAlerts(request, timeout=TIMEOUT)).alerts)


async def failed_job(
    jobs: Any, job_type: str, tenant: str = "", error_class: int = jobs_pb2.ERROR_CLASS_PERMANENT, attempts: int = 1
) -> str:
    """A job created, started and failed by its worker; returns its id."""
    created = await jobs.CreateJob(
        jobs_pb2.CreateJobRequest(job_type=job_type, tenant_id=tenant, max_attempts=attempts), timeout=TIMEOUT
    )
    job_id = created.job.id
    await jobs.StartJob(jobs_pb2.StartJobRequest(job_id=job_id, worker_id="w-1"), timeout=TIMEOUT)
    await jobs.FailJob(
        jobs_pb2.FailJobRequest(
            job_id=job_id, error_message="ERP refused the batch", error_class=error_class, worker_id="w-1"
        ),
        timeout=TIMEOUT,
    )
    return str(job_id)


async def completed_job(jobs: Any, job_type: str, tenant: str = "") -> str:
    created = await jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type=job_type, tenant_id=tenant), timeout=TIMEOUT)
    job_id = created.job.id
    await jobs.StartJob(jobs_pb2.StartJobRequest(job_id=job_id, worker_id="w-1"), timeout=TIMEOUT)
    await jobs.CompleteJob(jobs_pb2.CompleteJobRequest(job_id=job_id, worker_id="w-1"), timeout=TIMEOUT)
    return str(job_id)


def outcome(
    job_type: str,
    tenant: str = "",
    *,
    status: int = jobs_pb2.JOB_STATUS_FAILED,
    will_retry: bool = False,
    attempt: int = 1,
) -> Any:
    """A `JobOutcome` as the jobs service's relay appends it."""
    import uuid
    from datetime import UTC, datetime

    from b2x.monitoring.v1 import job_outcomes_pb2

    from services.common.protoconv import set_timestamp

    msg = job_outcomes_pb2.JobOutcome(
        job_id=str(uuid.uuid4()),
        job_type=job_type,
        tenant_id=tenant,
        status=status,  # type: ignore[arg-type]
        attempt=attempt,
        max_attempts=attempt,
        error_class=jobs_pb2.ERROR_CLASS_PERMANENT,
        error_message="ERP refused the batch",
        will_retry=will_retry,
    )
    set_timestamp(msg.finished_at, datetime.now(UTC))
    return msg


async def append_outcomes(harness: ServiceHarness, *outcomes: Any) -> None:
    """XADD each outcome to the jobs' outcome stream, like the relay."""
    from services.common.events import job_outcomes_stream

    redis = (await harness.resources("health")).redis
    key = job_outcomes_stream(harness.settings.namespace)
    for msg in outcomes:
        await redis.xadd(key, {"outcome": msg.SerializeToString()})


async def one_alert(stub: alerts_pb2_grpc.AlertsServiceStub, rule: str, **state: Any) -> health_pb2.Alert:
    """The single alert of `rule`, once it exists with the given field values."""

    async def probe() -> health_pb2.Alert | None:
        found = await alerts_by_rule(stub, rule)
        if len(found) == 1 and all(getattr(found[0], k) == v for k, v in state.items()):
            return found[0]
        return None

    return await eventually(probe)
