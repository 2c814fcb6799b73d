"""The job rules end to end: jobs service → outcome outbox → Redis Stream → health → alerts over gRPC."""

from __future__ import annotations

import asyncpg
from b2x.monitoring.v1 import common_pb2, health_pb2, jobs_pb2

from services.common.events import job_outcomes_stream
from tests.health.alert_helpers import alerts_by_rule, completed_job, eventually, failed_job, start_alerting
from tests.jobs.helpers import jobs_stub
from tests.support import ServiceHarness


async def test_more_than_five_failures_in_ten_minutes_fire_one_critical_alert_per_type_and_tenant(
    harness: ServiceHarness,
) -> None:
    jobs = await jobs_stub(harness)
    _, alerts = await start_alerting(harness)
    for _ in range(5):
        await failed_job(jobs, "ERP_STOCK_SYNC", tenant="acme")
    await failed_job(jobs, "ERP_STOCK_SYNC", tenant="globex")  # another tenant: counted apart

    # Five failures are not more than five: only the per-failure alert exists.
    await eventually(lambda: alerts_by_rule(alerts, "jobs.failed"))
    assert await alerts_by_rule(alerts, "jobs.failure_rate") == []

    await failed_job(jobs, "ERP_STOCK_SYNC", tenant="acme")
    (rate,) = await eventually(lambda: alerts_by_rule(alerts, "jobs.failure_rate"))
    assert rate.severity == common_pb2.ERROR_SEVERITY_CRITICAL
    assert rate.status == health_pb2.ALERT_STATUS_FIRING
    assert rate.labels["job_type"] == "ERP_STOCK_SYNC"
    assert rate.labels["tenant"] == "acme"
    assert rate.tenant_id == "acme"
    assert rate.title == "6 ERP_STOCK_SYNC jobs failed in the last 10 minutes for tenant acme"

    # A seventh failure is the same alert, one more occurrence.
    await failed_job(jobs, "ERP_STOCK_SYNC", tenant="acme")

    async def repeated() -> list[health_pb2.Alert]:
        found = await alerts_by_rule(alerts, "jobs.failure_rate")
        return found if found and found[0].occurrences == 2 else []

    (again,) = await eventually(repeated)
    assert again.id == rate.id and again.episode == 1


async def test_a_permanent_failure_fires_an_error_and_a_success_of_the_type_resolves_it(
    harness: ServiceHarness,
) -> None:
    jobs = await jobs_stub(harness)
    _, alerts = await start_alerting(harness)
    job_id = await failed_job(jobs, "PIM_EXPORT", tenant="acme")
    (alert,) = await eventually(lambda: alerts_by_rule(alerts, "jobs.failed"))
    assert alert.severity == common_pb2.ERROR_SEVERITY_ERROR
    assert alert.labels == {"rule": "jobs.failed", "severity": "error", "job_type": "PIM_EXPORT", "tenant": "acme"}
    assert alert.annotations["job_id"] == job_id
    assert "failed permanently" in alert.title and alert.message.startswith("ERP refused the batch")

    await completed_job(jobs, "PIM_EXPORT", tenant="acme")

    async def resolved() -> list[health_pb2.Alert]:
        found = await alerts_by_rule(alerts, "jobs.failed")
        return found if found and found[0].status == health_pb2.ALERT_STATUS_RESOLVED else []

    (done,) = await eventually(resolved)
    assert done.resolved_by == ""  # automatically
    assert done.HasField("resolved_at")


async def test_a_transient_failure_with_retries_left_fires_nothing_until_the_retries_are_exhausted(
    harness: ServiceHarness,
) -> None:
    jobs = await jobs_stub(harness, jobs_retry_base_seconds=0)
    _, alerts = await start_alerting(harness)
    await failed_job(jobs, "CRM_SYNC", error_class=jobs_pb2.ERROR_CLASS_TRANSIENT, attempts=2)
    # The retry is queued (attempt 2): not the job's last word. Fail that one too.
    retry = await eventually(lambda: _queued(jobs))
    await jobs.StartJob(jobs_pb2.StartJobRequest(job_id=retry, worker_id="w-1"), timeout=10)
    assert await alerts_by_rule(alerts, "jobs.failed") == []
    await jobs.FailJob(
        jobs_pb2.FailJobRequest(
            job_id=retry, error_message="still down", error_class=jobs_pb2.ERROR_CLASS_TRANSIENT, worker_id="w-1"
        ),
        timeout=10,
    )
    (alert,) = await eventually(lambda: alerts_by_rule(alerts, "jobs.failed"))
    assert "exhausted its automatic retries (attempt 2)" in alert.title


async def _queued(jobs: object) -> str | None:
    response = await jobs.ListJobs(  # type: ignore[attr-defined]
        jobs_pb2.ListJobsRequest(filter=jobs_pb2.JobFilter(statuses=[jobs_pb2.JOB_STATUS_QUEUED])), timeout=10
    )
    return str(response.jobs[0].id) if response.jobs else None


async def test_outcomes_wait_in_the_outbox_while_health_is_away_and_arrive_once_it_starts(
    harness: ServiceHarness, database_url: str
) -> None:
    jobs = await jobs_stub(harness)
    for _ in range(2):
        await failed_job(jobs, "ERP_PRICE_SYNC")
    # Relayed to the stream although nobody reads it yet; the outbox empties.
    redis = (await harness.resources("jobs")).redis
    key = job_outcomes_stream(harness.settings.namespace)
    await eventually(lambda: _stream_length(redis, key, 2))
    conn = await asyncpg.connect(database_url)
    try:

        async def outbox_empty() -> bool:
            return await conn.fetchval("SELECT count(*) FROM jobs.outcome_outbox") == 0

        await eventually(outbox_empty)
    finally:
        await conn.close()

    _, alerts = await start_alerting(harness)
    (alert,) = await eventually(lambda: alerts_by_rule(alerts, "jobs.failed"))
    assert alert.occurrences == 2


async def _stream_length(redis: object, key: str, n: int) -> bool:
    return int(await redis.xlen(key)) >= n  # type: ignore[attr-defined]
