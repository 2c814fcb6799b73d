"""PostgreSQL reads of the aggregated view: summary rows and history tallies (from rollups, never raw checks)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from services.health.domain import ServiceStatus, ServiceType
from services.health.overview.history import HistoryBucket, HistoryPlan, Tally
from services.health.overview.summary import Component
from services.health.status import STALE_FIGURES

_COMPONENTS = """
SELECT s.id, s.slug, s.name, s.type, s.status, s.status_reason, s.enabled, s.average_latency_ms, s.uptime_percent,
    s.last_checked, s.last_successful, s.status_changed_at, r.cpu_percent, r.memory_percent, r.sampled_at
FROM health.services s LEFT JOIN health.resource_latest r ON r.service_id = s.id
WHERE s.removed_at IS NULL
ORDER BY lower(s.name), s.slug
"""
_BUCKET = {
    HistoryBucket.HOUR: "r.bucket_start",
    # Midnight in the requested zone, as an instant: the same boundaries history.plan computes.
    HistoryBucket.DAY: "date_trunc('day', r.bucket_start AT TIME ZONE $3) AT TIME ZONE $3",
}
# Hours first, then days: the zone arithmetic runs once per hour, not once per service and hour.
_TALLIES = """
SELECT {bucket} AS bucket, sum(r.checks)::int8 AS checks, sum(r.failures)::int8 AS failures,
    sum(r.latency_sum_ms) AS latency_sum_ms, sum(r.latency_count)::int8 AS latency_count
FROM (
    SELECT h.bucket_start, sum(h.checks) AS checks, sum(h.failures) AS failures,
        sum(h.latency_sum_ms) AS latency_sum_ms, sum(h.latency_count) AS latency_count
    FROM health.check_rollups_hourly h
    WHERE h.bucket_start >= $1 AND h.bucket_start < $2 AND {services}
    GROUP BY h.bucket_start
) r
GROUP BY 1
"""
_ONE = "h.service_id = ${n}"
_LIVE = "h.service_id IN (SELECT id FROM health.services WHERE removed_at IS NULL)"


def _component(row: asyncpg.Record, now: datetime) -> Component:
    fresh = row["sampled_at"] is not None and now - row["sampled_at"] <= STALE_FIGURES
    return Component(
        service_id=str(row["id"]),
        slug=row["slug"],
        name=row["name"],
        type=ServiceType(row["type"]),
        status=ServiceStatus(row["status"]),
        status_reason=row["status_reason"],
        enabled=row["enabled"],
        average_latency_ms=row["average_latency_ms"],
        uptime_percent=row["uptime_percent"],
        cpu_percent=row["cpu_percent"] if fresh else None,
        memory_percent=row["memory_percent"] if fresh else None,
        last_checked=row["last_checked"],
        last_successful=row["last_successful"],
        status_changed_at=row["status_changed_at"],
    )


class PostgresOverview:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def components(self, now: datetime) -> list[Component]:
        """Every live service by name; resource figures older than STALE_FIGURES are left out."""
        return [_component(row, now) for row in await self._pool.fetch(_COMPONENTS)]

    async def tallies(self, plan: HistoryPlan, service_id: str | None) -> dict[datetime, Tally]:
        """Checks per bucket of the plan, of one service or of every live service together."""
        params: list[object] = [plan.start, plan.end]
        if plan.bucket is HistoryBucket.DAY:
            params.append(plan.zone_name)
        services = _LIVE
        if service_id is not None:
            params.append(uuid.UUID(service_id))
            services = _ONE.format(n=len(params))
        sql = _TALLIES.format(bucket=_BUCKET[plan.bucket], services=services)
        rows = await self._pool.fetch(sql, *params)
        return {
            row["bucket"]: Tally(row["checks"], row["failures"], row["latency_sum_ms"], row["latency_count"])
            for row in rows
        }
