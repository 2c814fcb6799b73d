"""The dashboard's trend figures: jobs finished per day and per type, read from the daily rollups."""

from __future__ import annotations

from datetime import UTC, datetime

from b2x.monitoring.v1 import jobs_pb2

from tests.gateway.conftest import Gateway

T = 10
TREND = """query($days: Int!) { jobTrend(days: $days) {
  days { date counts { completed failed cancelled finished successRatePercent averageDurationMs } }
  byType { jobType counts { completed failed cancelled } }
  total { completed failed cancelled finished successRatePercent averageDurationMs } } }"""


async def _finish(gw: Gateway, job_type: str, tenant: str, outcome: str) -> None:
    job = (
        await gw.jobs.CreateJob(
            jobs_pb2.CreateJobRequest(job_type=job_type, tenant_id=tenant, max_attempts=1), timeout=T
        )
    ).job
    if outcome == "cancel-queued":
        await gw.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.id), timeout=T)
        return
    await gw.jobs.StartJob(jobs_pb2.StartJobRequest(job_id=job.id, worker_id="w"), timeout=T)
    if outcome == "complete":
        await gw.jobs.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w", job_id=job.id), timeout=T)
    else:
        await gw.jobs.FailJob(
            jobs_pb2.FailJobRequest(worker_id="w", job_id=job.id, error_message="ERP timeout"), timeout=T
        )


async def test_the_trend_counts_finished_jobs_per_day_and_type_within_the_tenant_scope(gw: Gateway) -> None:
    """Completed, failed and cancelled jobs land on today's row and their type; success rate ignores the
    cancelled one; a tenant key sees only its tenant's jobs; running jobs count nowhere yet."""
    for job_type, tenant, outcome in (
        ("ERP_ARTICLE_SYNC", "tenant-a", "complete"),
        ("ERP_ARTICLE_SYNC", "tenant-a", "complete"),
        ("ERP_ARTICLE_SYNC", "tenant-b", "fail"),
        ("PIM_IMPORT", "tenant-a", "fail"),
        ("PIM_IMPORT", "tenant-b", "cancel-queued"),
    ):
        await _finish(gw, job_type, tenant, outcome)
    running = (await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="CRM_EXPORT"), timeout=T)).job
    await gw.jobs.StartJob(jobs_pb2.StartJobRequest(job_id=running.id, worker_id="w"), timeout=T)

    trend = (await gw.query(gw.viewer, TREND, {"days": 7})).json()["data"]["jobTrend"]
    assert len(trend["days"]) == 7
    assert trend["days"][-1]["date"] == datetime.now(UTC).date().isoformat()
    assert [d["counts"]["finished"] for d in trend["days"]] == [0, 0, 0, 0, 0, 0, 5]
    total = trend["total"]
    assert (total["completed"], total["failed"], total["cancelled"]) == (2, 2, 1)
    assert total["successRatePercent"] == 50.0
    assert total["averageDurationMs"] is not None and total["averageDurationMs"] >= 0
    assert trend["byType"] == [
        {"jobType": "ERP_ARTICLE_SYNC", "counts": {"completed": 2, "failed": 1, "cancelled": 0}},
        {"jobType": "PIM_IMPORT", "counts": {"completed": 0, "failed": 1, "cancelled": 1}},
    ]

    scoped = (await gw.query(gw.tenant_viewer, TREND, {"days": 1})).json()["data"]["jobTrend"]
    assert (scoped["total"]["completed"], scoped["total"]["failed"], scoped["total"]["cancelled"]) == (2, 1, 0)
    facets = (await gw.query(gw.tenant_viewer, "{ jobFacets { jobTypes tenantIds } }")).json()["data"]["jobFacets"]
    assert facets == {"jobTypes": ["ERP_ARTICLE_SYNC", "PIM_IMPORT"], "tenantIds": ["tenant-a"]}
    everything = (await gw.query(gw.viewer, "{ jobFacets { jobTypes tenantIds } }")).json()["data"]["jobFacets"]
    assert everything["jobTypes"] == ["CRM_EXPORT", "ERP_ARTICLE_SYNC", "PIM_IMPORT"]
    assert everything["tenantIds"] == ["default", "tenant-a", "tenant-b"]


async def test_a_window_outside_one_to_ninety_days_is_bad_input(gw: Gateway) -> None:
    """days: 0 or 91 is refused with BAD_USER_INPUT and a message naming the range."""
    for days in (0, 91):
        body = (await gw.query(gw.viewer, TREND, {"days": days})).json()
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "between 1 and 90" in body["errors"][0]["message"]


RETRY_FAILED = """mutation($f: JobFilter, $limit: Int!) {
  retryFailedJobs(filter: $f, limit: $limit) { retried skipped errors attemptIds } }"""


async def test_retry_failed_jobs_retries_only_those_not_retried_yet_within_scope(gw: Gateway) -> None:
    """Three failed jobs of tenant-a, one already retried, and one of tenant-b: a tenant operator's bulk retry
    makes two attempts and skips one; the other tenant is untouched; a viewer is FORBIDDEN; it is audited."""
    failed = []
    for tenant in ("tenant-a", "tenant-a", "tenant-a", "tenant-b"):
        job = (
            await gw.jobs.CreateJob(
                jobs_pb2.CreateJobRequest(job_type="CRM_EXPORT", tenant_id=tenant, max_attempts=1), timeout=T
            )
        ).job
        await gw.jobs.StartJob(jobs_pb2.StartJobRequest(job_id=job.id, worker_id="w"), timeout=T)
        await gw.jobs.FailJob(
            jobs_pb2.FailJobRequest(worker_id="w", job_id=job.id, error_message="token expired"), timeout=T
        )
        failed.append(job.id)
    await gw.jobs.RetryJob(jobs_pb2.RetryJobRequest(job_id=failed[0]), timeout=T)

    refused = (await gw.query(gw.viewer, RETRY_FAILED, {"limit": 10})).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    done = (await gw.query(gw.tenant_operator, RETRY_FAILED, {"limit": 10})).json()["data"]["retryFailedJobs"]
    assert (done["retried"], done["skipped"], done["errors"]) == (2, 1, [])
    for attempt_id in done["attemptIds"]:
        attempt = (await gw.jobs.GetJob(jobs_pb2.GetJobRequest(job_id=attempt_id), timeout=T)).job
        assert attempt.tenant_id == "tenant-a" and attempt.retry_of_job_id in failed[1:3]
    other = (await gw.jobs.GetJobDetails(jobs_pb2.GetJobDetailsRequest(job_id=failed[3]), timeout=T)).attempts
    assert len(other) == 1
    again = (await gw.query(gw.operator, RETRY_FAILED, {"f": {"tenantId": ["tenant-a"]}, "limit": 10})).json()
    assert again["data"]["retryFailedJobs"]["retried"] == 0
    audit = (await gw.query(gw.admin, "{ auditLog(limit: 10) { action outcome } }")).json()["data"]["auditLog"]
    assert [e["action"] for e in audit].count("retryFailedJobs") == 3
