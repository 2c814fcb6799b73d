"""Domain metrics of the jobs service (served on B2X_JOBS_METRICS_PORT).

Two sources, so neither the SDK's report path nor a scrape costs a query per item:
- `MeteredJobEvents` wraps the service's event sink, the one funnel every state change goes through,
  and counts lifecycle transitions there: starts (queue wait), completions, failures, cancellations
  (durations), automatic and manual retries, applied progress reports and stored log lines. A change
  is counted once, by the replica that made it; Prometheus sums replicas.
- `JOBS_SNAPSHOT` reads the state that lives in PostgreSQL (jobs by status, type and tenant; the oldest
  claimable job; the enventa figures derived from ERP jobs) every 15 s with index-backed queries.
  Every replica reads the same rows: aggregate these gauges with `max`, never `sum`.

Job types, tenants and error categories are chosen by callers, so they pass through `BoundedLabel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
from prometheus_client import Counter, Histogram

from services.common.metrics import BoundedLabel, GaugeSpec, Samples, Snapshot, seconds_since_epoch
from services.jobs.domain import Job, JobStatus, LogLevel, StoredLog
from services.jobs.service import Hop, JobEventSink

JOB_TYPES = BoundedLabel(100)
TENANTS = BoundedLabel(200)
CATEGORIES = BoundedLabel(50)

JOB_FAILURES = Counter(
    "scheduler_job_failures_total",
    "Jobs that failed (each failed attempt, the reaper's WORKER_LOST included)",
    ["job_type", "tenant", "error_category", "error_class"],
)
JOB_COMPLETIONS = Counter(
    "scheduler_job_completions_total",
    "Jobs that finished, by outcome (completed, failed, cancelled)",
    ["job_type", "tenant", "outcome"],
)
JOB_RETRIES = Counter(
    "scheduler_job_retries_total", "New attempts queued, by trigger (automatic, manual)", ["job_type", "trigger"]
)
JOB_DURATION = Histogram(
    "scheduler_job_duration_seconds",
    "Run time of finished jobs, from start to completion, failure or cancellation",
    ["job_type", "outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
)
JOB_QUEUE_WAIT = Histogram(
    "scheduler_job_queue_wait_seconds",
    "Time a job waited between becoming claimable (created, or its retry delay over) and its start",
    ["job_type"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
PROGRESS_REPORTS = Counter("b2x_job_progress_reports_total", "Progress reports applied to jobs")
LOG_LINES = Counter("b2x_job_log_lines_total", "Execution log lines stored, by level", ["level"])

_LEVELS = {level: level.name.lower() for level in LogLevel}
_OUTCOMES = {"completed": "completed", "failed": "failed", "cancelled": "cancelled"}

JOBS_SNAPSHOT = Snapshot(
    "jobs",
    [
        GaugeSpec(
            "b2x_jobs",
            "Jobs by status, type and tenant: every queued and running job, and the finished ones created "
            "in the last 24 hours",
            ("status", "job_type", "tenant"),
        ),
        GaugeSpec(
            "b2x_job_queue_oldest_age_seconds",
            "Age of the oldest claimable queued job per type (0 when none waits)",
            ("job_type",),
        ),
        GaugeSpec(
            "erp_bulk_operation_progress",
            "enventa: average progress percent of the running ERP_* jobs, per type",
            ("job_type",),
        ),
        GaugeSpec(
            "erp_last_successful_sync",
            "enventa: when an ERP_* job of the type last completed (Unix time; within the last 30 days)",
            ("job_type",),
        ),
    ],
)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def record_change(before: Job | None, after: Job, change: str) -> None:
    """Count one lifecycle change (cheap: a few dict lookups; progress changes cost one increment)."""
    if change == "progress":
        PROGRESS_REPORTS.inc()
        return
    job_type = JOB_TYPES(after.job_type)
    if change == "started":
        ready = max(after.created_at, after.available_at) if after.available_at else after.created_at
        if (wait := _seconds(ready, after.started_at)) is not None:
            JOB_QUEUE_WAIT.labels(job_type).observe(wait)
        return
    if change == "retry_queued":
        trigger = "automatic" if after.created_by == "automatic retry" else "manual"
        JOB_RETRIES.labels(job_type, trigger).inc()
        return
    outcome = _OUTCOMES.get(change)
    if outcome is None or (before is not None and before.status is after.status):
        return
    tenant = TENANTS(after.tenant_id)
    JOB_COMPLETIONS.labels(job_type, tenant, outcome).inc()
    if (duration := _seconds(after.started_at, after.completed_at)) is not None:
        JOB_DURATION.labels(job_type, outcome).observe(duration)
    if after.status is JobStatus.FAILED:
        category = CATEGORIES(after.error_category or "UNCATEGORIZED")
        error_class = str(after.error_class or "PERMANENT")
        JOB_FAILURES.labels(job_type, tenant, category, error_class).inc()


class MeteredJobEvents:
    """A JobEventSink that counts each change, then hands it on to the real sink."""

    def __init__(self, inner: JobEventSink) -> None:
        self._inner = inner

    async def job_changed(self, before: Job | None, after: Job, change: str) -> None:
        record_change(before, after, change)
        await self._inner.job_changed(before, after, change)

    async def jobs_changed(self, changes: Sequence[tuple[Job | None, Job, str]], hops: Sequence[Hop] = ()) -> None:
        for before, after, change in changes:
            record_change(before, after, change)
        await self._inner.jobs_changed(changes, hops)

    async def logs_appended(self, lines: Sequence[StoredLog]) -> None:
        counts: dict[str, int] = {}
        for line in lines:
            level = _LEVELS.get(line.level, "info")
            counts[level] = counts.get(level, 0) + 1
        for level, count in counts.items():
            LOG_LINES.labels(level).inc(count)
        await self._inner.logs_appended(lines)


# Index-backed: active statuses through jobs_status_created_idx, finished ones limited to 24 h of it.
_BY_STATUS = """
SELECT status, job_type, tenant_id, count(*) AS n FROM jobs.jobs
 WHERE status IN ('QUEUED', 'RUNNING')
    OR (status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND created_at > now() - interval '24 hours')
 GROUP BY status, job_type, tenant_id
"""
_OLDEST_QUEUED = """
SELECT job_type, extract(epoch FROM now() - min(available_at)) AS age FROM jobs.jobs
 WHERE status = 'QUEUED' AND available_at <= now() GROUP BY job_type
"""
_ERP_RUNNING = """
SELECT job_type, avg(progress_percent) AS percent FROM jobs.jobs
 WHERE status = 'RUNNING' AND job_type LIKE 'ERP\\_%' GROUP BY job_type
"""
_ERP_LAST_SYNC = """
SELECT job_type, max(completed_at) AS at FROM jobs.jobs
 WHERE status = 'COMPLETED' AND job_type LIKE 'ERP\\_%' AND created_at > now() - interval '30 days'
 GROUP BY job_type
"""


class JobsSnapshotReader:
    """Reads `JOBS_SNAPSHOT`'s figures in one connection, four small queries."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def __call__(self) -> Samples:
        async with self._pool.acquire() as conn:
            by_status = await conn.fetch(_BY_STATUS)
            oldest = await conn.fetch(_OLDEST_QUEUED)
            erp_running = await conn.fetch(_ERP_RUNNING)
            erp_synced = await conn.fetch(_ERP_LAST_SYNC)
        jobs: dict[tuple[str, ...], float] = {}
        for row in by_status:
            key = (row["status"].lower(), JOB_TYPES(row["job_type"]), TENANTS(row["tenant_id"]))
            jobs[key] = jobs.get(key, 0.0) + row["n"]
        ages: dict[tuple[str, ...], float] = {}
        for row in oldest:
            type_key = (JOB_TYPES(row["job_type"]),)
            ages[type_key] = max(ages.get(type_key, 0.0), float(row["age"] or 0.0))
        progress = {(JOB_TYPES(r["job_type"]),): float(r["percent"]) for r in erp_running}
        synced = {
            (JOB_TYPES(r["job_type"]),): at for r in erp_synced if (at := seconds_since_epoch(r["at"])) is not None
        }
        return {
            "b2x_jobs": list(jobs.items()),
            "b2x_job_queue_oldest_age_seconds": list(ages.items()),
            "erp_bulk_operation_progress": list(progress.items()),
            "erp_last_successful_sync": list(synced.items()),
        }
