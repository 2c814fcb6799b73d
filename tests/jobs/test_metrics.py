"""The jobs service's domain metrics: lifecycle counters from the real service, state gauges from PostgreSQL."""

from __future__ import annotations

from b2x.monitoring.v1 import jobs_pb2
from prometheus_client import REGISTRY

from services.common.metrics import OTHER, BoundedLabel
from services.jobs.metrics import JOB_TYPES, TENANTS, JobsSnapshotReader
from tests.jobs.helpers import TIMEOUT, jobs_stub, running_job
from tests.support import ServiceHarness

JOB_TYPE = "ERP_METRICS_SYNC"
TENANT = "tenant-metrics"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_each_finished_job_is_counted_once_by_outcome_with_its_failure_labels(harness: ServiceHarness) -> None:
    """Complete, fail (permanent, with a category) and cancel one job each, then retry the failed one:
    completions by outcome, failures by category and class, durations, queue waits and retries move by
    exactly one each; a repeated cancel changes nothing."""
    stub = await jobs_stub(harness)
    job_type, tenant = JOB_TYPES(JOB_TYPE), TENANTS(TENANT)
    before = {
        "completed": value("scheduler_job_completions_total", job_type=job_type, tenant=tenant, outcome="completed"),
        "failed": value("scheduler_job_completions_total", job_type=job_type, tenant=tenant, outcome="failed"),
        "cancelled": value("scheduler_job_completions_total", job_type=job_type, tenant=tenant, outcome="cancelled"),
        "failures": value(
            "scheduler_job_failures_total",
            job_type=job_type, tenant=tenant, error_category="ERP_DATA_VALIDATION", error_class="PERMANENT",
        ),
        "durations": value("scheduler_job_duration_seconds_count", job_type=job_type, outcome="completed"),
        "waits": value("scheduler_job_queue_wait_seconds_count", job_type=job_type),
        "retries": value("scheduler_job_retries_total", job_type=job_type, trigger="manual"),
        "progress": value("b2x_job_progress_reports_total"),
    }  # fmt: skip

    done = await running_job(stub, JOB_TYPE, tenant_id=TENANT)
    await stub.ReportProgress(
        jobs_pb2.ReportProgressRequest(
            worker_id="w-1", job_id=done.id, processed_items=50, succeeded_items=50, sequence=1
        ),
        timeout=TIMEOUT,
    )
    await stub.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w-1", job_id=done.id), timeout=TIMEOUT)
    failed = await running_job(stub, JOB_TYPE, tenant_id=TENANT)
    await stub.FailJob(
        jobs_pb2.FailJobRequest(
            worker_id="w-1",
            job_id=failed.id,
            error_message="price group unknown",
            error_category="ERP_DATA_VALIDATION",
            error_class=jobs_pb2.ERROR_CLASS_PERMANENT,
        ),
        timeout=TIMEOUT,
    )
    queued = (await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type=JOB_TYPE, tenant_id=TENANT), timeout=TIMEOUT)).job
    await stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=queued.id), timeout=TIMEOUT)
    await stub.RetryJob(jobs_pb2.RetryJobRequest(job_id=failed.id), timeout=TIMEOUT)
    await stub.RetryJob(jobs_pb2.RetryJobRequest(job_id=failed.id), timeout=TIMEOUT)  # answered with the same attempt

    assert (
        value("scheduler_job_completions_total", job_type=job_type, tenant=tenant, outcome="completed")
        == before["completed"] + 1
    )
    assert (
        value("scheduler_job_completions_total", job_type=job_type, tenant=tenant, outcome="failed")
        == before["failed"] + 1
    )
    assert (
        value("scheduler_job_completions_total", job_type=job_type, tenant=tenant, outcome="cancelled")
        == before["cancelled"] + 1
    )
    assert value(
        "scheduler_job_failures_total",
        job_type=job_type, tenant=tenant, error_category="ERP_DATA_VALIDATION", error_class="PERMANENT",
    ) == before["failures"] + 1  # fmt: skip
    assert (
        value("scheduler_job_duration_seconds_count", job_type=job_type, outcome="completed") == before["durations"] + 1
    )
    assert value("scheduler_job_queue_wait_seconds_count", job_type=job_type) == before["waits"] + 2
    assert value("scheduler_job_retries_total", job_type=job_type, trigger="manual") == before["retries"] + 1
    assert value("b2x_job_progress_reports_total") == before["progress"] + 1


async def test_the_snapshot_reads_jobs_by_status_the_oldest_queued_job_and_the_erp_figures(
    harness: ServiceHarness,
) -> None:
    """From PostgreSQL: two queued and one running ERP job, one completed; the oldest queued job's age;
    the running ERP jobs' average progress; when the type last completed."""
    stub = await jobs_stub(harness)
    for _ in range(2):
        await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="ERP_PRICE_UPDATE", tenant_id="north"), timeout=TIMEOUT)
    running = await running_job(stub, "ERP_PRICE_UPDATE", total=200, tenant_id="north")
    await stub.ReportProgress(
        jobs_pb2.ReportProgressRequest(
            worker_id="w-1", job_id=running.id, processed_items=50, succeeded_items=50, sequence=1
        ),
        timeout=TIMEOUT,
    )
    finished = await running_job(stub, "ERP_PRICE_UPDATE", tenant_id="south")
    await stub.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w-1", job_id=finished.id), timeout=TIMEOUT)

    samples = await JobsSnapshotReader((await harness.resources("jobs")).pool)()
    jobs = dict(samples["b2x_jobs"])
    job_type = JOB_TYPES("ERP_PRICE_UPDATE")
    assert jobs[("queued", job_type, TENANTS("north"))] == 2
    assert jobs[("running", job_type, TENANTS("north"))] == 1
    assert jobs[("completed", job_type, TENANTS("south"))] == 1
    age = dict(samples["b2x_job_queue_oldest_age_seconds"])[(job_type,)]
    assert 0 <= age < 60
    assert dict(samples["erp_bulk_operation_progress"]) == {(job_type,): 25.0}
    last_sync = dict(samples["erp_last_successful_sync"])[(job_type,)]
    assert abs(last_sync - finished.created_at.ToDatetime().timestamp()) < 60


def test_a_bounded_label_lets_the_first_values_through_and_reports_the_rest_as_other() -> None:
    """Cardinality stays bounded however many job types or tenants callers invent."""
    label = BoundedLabel(2)
    assert [label("a"), label("b"), label("c"), label("a"), label("d")] == ["a", "b", OTHER, "a", OTHER]
