"""Status counts and page totals from the kept counts (migration 006): exact through every change."""

from __future__ import annotations

from typing import Any

import asyncpg
from b2x.monitoring.v1 import common_pb2, jobs_pb2

from services.jobs.repository import VACUUM_AFTER_FOLDING, PostgresJobRepository
from tests.jobs.helpers import TIMEOUT, jobs_stub
from tests.support import ServiceHarness


async def _counts(stub: Any, **flt: Any) -> dict[int, int]:
    answer = await stub.CountJobs(jobs_pb2.CountJobsRequest(filter=jobs_pb2.JobFilter(**flt)), timeout=TIMEOUT)
    return {c.status: c.count for c in answer.counts if c.count}


async def _total(stub: Any, **flt: Any) -> int:
    request = jobs_pb2.ListJobsRequest(filter=jobs_pb2.JobFilter(**flt), page=common_pb2.PageRequest(page_size=2))
    return int((await stub.ListJobs(request, timeout=TIMEOUT)).page_info.total_count)


async def test_counts_and_totals_stay_exact_through_inserts_status_changes_and_folds(harness: ServiceHarness) -> None:
    """Counts by status and page totals (filtered by status, tenant, type) equal a count of the rows,
    before and after the maintenance folds the appended changes; a filter by time still counts rows."""
    stub = await jobs_stub(harness)
    pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=2)
    try:
        ids = []
        for n in range(9):
            request = jobs_pb2.CreateJobRequest(job_type="PIM_IMPORT" if n % 3 else "CRM_EXPORT", tenant_id=f"c{n % 2}")
            ids.append((await stub.CreateJob(request, timeout=TIMEOUT)).job.id)
        for job_id in ids[:5]:
            await stub.StartJob(jobs_pb2.StartJobRequest(job_id=job_id, worker_id="w-1"), timeout=TIMEOUT)
        for job_id in ids[:2]:
            await stub.CompleteJob(jobs_pb2.CompleteJobRequest(job_id=job_id, worker_id="w-1"), timeout=TIMEOUT)
        await stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=ids[8]), timeout=TIMEOUT)

        async def expected(where: str = "TRUE", *args: Any) -> dict[int, int]:
            rows = await pool.fetch(f"SELECT status, count(*) AS n FROM jobs.jobs WHERE {where} GROUP BY status", *args)
            return {jobs_pb2.JobStatus.Value(f"JOB_STATUS_{r['status']}"): r["n"] for r in rows}

        for _ in range(2):  # as appended, then folded
            assert await _counts(stub) == await expected()
            assert await _counts(stub, tenant_ids=["c1"]) == await expected("tenant_id = $1", "c1")
            assert await _counts(stub, job_types=["CRM_EXPORT"]) == await expected("job_type = $1", "CRM_EXPORT")
            running = await pool.fetchval("SELECT count(*) FROM jobs.jobs WHERE status = 'RUNNING'")
            assert await _total(stub, statuses=[jobs_pb2.JOB_STATUS_RUNNING]) == running == 3
            assert await _total(stub) == await pool.fetchval("SELECT count(*) FROM jobs.jobs") == 9
            await PostgresJobRepository(pool).fold_counts()
            assert await pool.fetchval("SELECT count(*) FROM jobs.job_count_changes") == 0
        folded = await pool.fetchval("SELECT sum(n) FROM jobs.job_counts")
        assert folded == 9
        flt = jobs_pb2.JobFilter(text="nothing like this")
        request = jobs_pb2.ListJobsRequest(filter=flt, page=common_pb2.PageRequest(page_size=2))
        assert (await stub.ListJobs(request, timeout=TIMEOUT)).page_info.total_count == 0
    finally:
        await pool.close()


async def test_a_large_fold_vacuums_the_changes_so_counts_do_not_read_dead_rows(harness: ServiceHarness) -> None:
    """A burst of jobs folded at once leaves no dead rows behind in the changes that every count reads
    whole: the fold vacuums them, which gives the emptied pages back (a small fold leaves that to autovacuum)."""
    await jobs_stub(harness)  # the service has migrated the schema
    pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=2)
    size = "SELECT pg_relation_size('jobs.job_count_changes')"
    try:
        repository = PostgresJobRepository(pool)
        await repository.fold_counts()
        insert = (
            "INSERT INTO jobs.jobs (id, job_type, tenant_id, status, root_job_id) "
            "SELECT u, 'PIM_IMPORT', 'c' || (n % 3), 'QUEUED', u "
            "FROM (SELECT gen_random_uuid() AS u, n FROM generate_series(1, $1) AS n) AS s"
        )
        # The service's own maintenance folds every few seconds too: assert what is left, not who folded.
        await pool.execute(insert, 50)
        await repository.fold_counts()
        assert await pool.fetchval("SELECT count(*) FROM jobs.job_count_changes") == 0
        assert await pool.fetchval(size) > 0  # a small fold: the dead rows wait for autovacuum

        await pool.execute(insert, VACUUM_AFTER_FOLDING)
        await repository.fold_counts()
        assert await pool.fetchval("SELECT count(*) FROM jobs.job_count_changes") == 0
        assert await pool.fetchval(size) == 0
        assert await _counts(await jobs_stub(harness)) == {jobs_pb2.JOB_STATUS_QUEUED: VACUUM_AFTER_FOLDING + 50}
    finally:
        await pool.close()
