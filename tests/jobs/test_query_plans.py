"""The dashboard's filtered, sorted pages read an index in order and stop after the page (issue 13: p99 ≤ 50 ms
at 1 000 000 jobs). On a small table the planner would sort anyway, so sorting is priced out: a page whose
order no index gives still shows a Sort node, which is what this test catches."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from services.jobs.domain import JobFilter, JobStatus, SortField
from services.jobs.repository import _SORT, _where
from tests.support import ServiceHarness

PAGES = [
    ("newest", JobFilter(), SortField.CREATED_AT),
    ("a tenant's failed and running by start", JobFilter(statuses=(JobStatus.FAILED, JobStatus.RUNNING),
                                                          tenant_ids=("tenant-07",)), SortField.STARTED_AT),
    ("a tenant's newest", JobFilter(tenant_ids=("tenant-07",)), SortField.CREATED_AT),
    ("one type by progress", JobFilter(job_types=("ERP_ARTICLE_SYNC",)), SortField.PROGRESS),
]  # fmt: skip


@pytest.mark.parametrize(("name", "flt", "sort"), PAGES, ids=[p[0] for p in PAGES])
async def test_a_sorted_page_walks_an_index_instead_of_sorting(
    harness: ServiceHarness, name: str, flt: JobFilter, sort: SortField
) -> None:
    await harness.resources("jobs")  # migrated
    params: list[Any] = []
    expr, _ = _SORT[sort]
    sql = f"SELECT id FROM jobs.jobs WHERE {_where(flt, params)} ORDER BY {expr} DESC, id DESC LIMIT 51"
    conn = await asyncpg.connect(harness.settings.database_url)
    try:
        await conn.execute("SET enable_sort = off; SET enable_incremental_sort = off; SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *params))
    finally:
        await conn.close()
    assert "Sort" not in plan.replace("Sort Key", ""), f"{name} sorts instead of reading an index in order:\n{plan}"
