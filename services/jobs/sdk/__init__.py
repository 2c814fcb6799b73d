"""The Job SDK: what scheduler jobs import to report their lifecycle, progress, logs and steps.

Running jobs with the worker runner (claims queued jobs of its types, completes or fails them)::

    from services.jobs.sdk import JobHandle, JobInfo, JobMonitor, TransientJobError, WorkerRunner

    async def sync_articles(job: JobInfo, handle: JobHandle) -> None:
        with handle.step("connect"):
            erp = await connect(job.parameters["erp"])
        with handle.step("load"):
            articles = await erp.articles()
        handle.start(total_items=len(articles))
        for article in articles:
            ok = await write(article)
            handle.item_done(ok)                      # cheap: stores an integer
            if not ok:
                handle.warning("article rejected", article=article.number)
        # returning completes the job; raising TransientJobError(category=...) fails it as
        # transient (retried automatically), any other exception as permanent

    async with JobMonitor("localhost:50051", worker_id="erp-worker-1") as monitor:
        runner = WorkerRunner(monitor, {"ERP_ARTICLE_SYNC": sync_articles}, concurrency=10)
        await runner.run()                            # until runner.stop()

Reporting a job you run yourself::

    async with JobMonitor(jobs_addr, worker_id="importer") as monitor:
        job = await monitor.create_job("PIM_IMPORT", tenant_id="tenant-a", total_items=5000)
        handle = monitor.attach(job.id)
        handle.start()
        for n, row in enumerate(rows, 1):
            handle.progress(n, succeeded=n)
            if handle.cancel_requested:
                handle.cancelled()
                break
        else:
            handle.complete("5000 rows imported")

Everything a handle does is synchronous and never waits for the network: the monitor's background
task coalesces progress (every `items_per_report` items or `max_report_interval` seconds, at most
once per `min_report_interval`), batches logs, steps, outcomes and heartbeats into `ReportBatch`
calls, and keeps everything for resending while the jobs service is unreachable.
"""

from services.jobs.sdk.errors import (
    JobError,
    JobsServiceError,
    JobsServiceUnavailable,
    PermanentJobError,
    TransientJobError,
)
from services.jobs.sdk.handle import JobHandle, StepScope
from services.jobs.sdk.model import JobInfo, Outcome, OutcomeKind
from services.jobs.sdk.monitor import JobMonitor, MonitorStats
from services.jobs.sdk.runner import Handler, WorkerRunner

__all__ = [
    "Handler",
    "JobError",
    "JobHandle",
    "JobInfo",
    "JobMonitor",
    "JobsServiceError",
    "JobsServiceUnavailable",
    "MonitorStats",
    "Outcome",
    "OutcomeKind",
    "PermanentJobError",
    "StepScope",
    "TransientJobError",
    "WorkerRunner",
]
