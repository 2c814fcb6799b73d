"""PostgreSQL reads of the daily rollups (jobs.daily_job_stats) behind the dashboard's trends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import asyncpg

from services.jobs.trends.domain import JobFacets, OutcomeCounts, RollupRow


class PostgresTrendRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def rollups(self, first_day: date, tenant_ids: Sequence[str]) -> list[RollupRow]:
        """Per day and job type since `first_day`, summed over the tenants asked for (all when empty)."""
        rows = await self._pool.fetch(
            "SELECT day, job_type, sum(completed) AS completed, sum(failed) AS failed, sum(cancelled) AS cancelled,"
            " sum(duration_ms_sum) AS duration_ms_sum, sum(timed) AS timed"
            " FROM jobs.daily_job_stats"
            " WHERE day >= $1 AND (cardinality($2::text[]) = 0 OR tenant_id = ANY($2::text[]))"
            " GROUP BY day, job_type",
            first_day,
            list(tenant_ids),
        )
        return [
            RollupRow(
                r["day"],
                r["job_type"],
                OutcomeCounts(
                    int(r["completed"]),
                    int(r["failed"]),
                    int(r["cancelled"]),
                    float(r["duration_ms_sum"]),
                    int(r["timed"]),
                ),
            )
            for r in rows
        ]

    async def facets(self, since: date, tenant_ids: Sequence[str]) -> JobFacets:
        """Types and tenants from the rollups since `since`, plus those of jobs queued or running now."""
        scope = "(cardinality($2::text[]) = 0 OR tenant_id = ANY($2::text[]))"
        rows = await self._pool.fetch(
            f"SELECT DISTINCT job_type, tenant_id FROM jobs.daily_job_stats WHERE day >= $1 AND {scope}"
            f" UNION SELECT DISTINCT job_type, tenant_id FROM jobs.jobs WHERE status IN ('QUEUED', 'RUNNING')"
            f" AND {scope}",
            since,
            list(tenant_ids),
        )
        return JobFacets(sorted({r["job_type"] for r in rows}), sorted({r["tenant_id"] for r in rows}))
