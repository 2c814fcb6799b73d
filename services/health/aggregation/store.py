"""PostgreSQL writes of the aggregated view: service status columns, hourly check rollups, latest resources.

Every write takes arrays (`unnest`), so a batch of any size is one statement per table. Rows of
health.services are locked in id order, the order registry writes lock them in too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.health.aggregation.service import AggregateRow, AggregateUpdate
from services.health.domain import ResourceSnapshot, ServiceStatus, Thresholds
from services.health.registry.repository import row_to_resources
from services.health.status import CheckState, Verdict

# Average latency and uptime windows (to the hour: rollups are hourly).
LATENCY_WINDOW = timedelta(hours=24)
UPTIME_WINDOW = timedelta(days=7)
# pg_try_advisory_xact_lock key of the retention deletes (the registry uses 0x62327801).
_PRUNE_LOCK_KEY = 0x62327802

_THRESHOLD_FIELDS = frozenset(f.name for f in dataclasses.fields(Thresholds))
_RESOURCE_FIELDS = tuple(f.name for f in dataclasses.fields(ResourceSnapshot))

_SELECT_ROWS = f"""
SELECT s.id, s.slug, s.name, s.enabled, s.removed_at, s.updated_at, s.thresholds, s.check_interval_seconds,
    s.status, s.status_reason, s.check_status, s.check_reason, s.pressure, s.breaker_open_since,
    s.last_checked, s.last_successful, s.last_failure, {", ".join("r." + c for c in _RESOURCE_FIELDS)}
FROM health.services s LEFT JOIN health.resource_latest r ON r.service_id = s.id
"""
_LOCK = _SELECT_ROWS + "WHERE s.id = ANY($1::uuid[]) ORDER BY s.id FOR UPDATE OF s"
# Checked services that have been silent for three intervals and a minute (status.stale_after).
_LOCK_SILENT = (
    _SELECT_ROWS
    + """WHERE s.enabled AND s.removed_at IS NULL AND s.check_status <> 'UNKNOWN'
    AND s.last_checked < $1::timestamptz - make_interval(secs => 3 * s.check_interval_seconds + 60)
ORDER BY s.id FOR UPDATE OF s SKIP LOCKED"""
)

_COUNT_CHECKS = """
WITH batch AS (
    SELECT DISTINCT ON (service_id, checked_at) service_id, checked_at, success, latency
    FROM unnest($1::uuid[], $2::timestamptz[], $3::bool[], $4::float8[]) AS b(service_id, checked_at, success, latency)
), fresh AS (
    INSERT INTO health.check_receipts (checked_at, service_id)
    SELECT checked_at, service_id FROM batch
    ON CONFLICT DO NOTHING
    RETURNING checked_at, service_id
)
INSERT INTO health.check_rollups_hourly AS r
    (service_id, bucket_start, checks, failures, latency_sum_ms, latency_count, latency_max_ms)
SELECT b.service_id, date_trunc('hour', b.checked_at), count(*), count(*) FILTER (WHERE NOT b.success),
    coalesce(sum(b.latency) FILTER (WHERE b.success), 0), count(*) FILTER (WHERE b.success),
    coalesce(max(b.latency) FILTER (WHERE b.success), 0)
FROM batch b JOIN fresh f ON f.service_id = b.service_id AND f.checked_at = b.checked_at
GROUP BY 1, 2
ON CONFLICT (service_id, bucket_start) DO UPDATE SET
    checks = r.checks + excluded.checks,
    failures = r.failures + excluded.failures,
    latency_sum_ms = r.latency_sum_ms + excluded.latency_sum_ms,
    latency_count = r.latency_count + excluded.latency_count,
    latency_max_ms = greatest(r.latency_max_ms, excluded.latency_max_ms)
"""

_SAVE = """
UPDATE health.services s SET
    status = u.status, status_reason = u.status_reason, check_status = u.check_status,
    check_reason = u.check_reason, pressure = u.pressure, breaker_open_since = u.breaker_open_since,
    last_checked = u.last_checked, last_successful = u.last_successful, last_failure = u.last_failure,
    status_changed_at = CASE WHEN s.status = u.status THEN s.status_changed_at ELSE u.changed_at END,
    average_latency_ms = w.latency, uptime_percent = w.uptime
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
        $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $13::text[])
    AS u(id, status, status_reason, check_status, check_reason, pressure, breaker_open_since, last_checked,
        last_successful, changed_at, last_failure)
CROSS JOIN LATERAL (
    SELECT (sum(r.latency_sum_ms) FILTER (WHERE r.bucket_start >= $11)
            / nullif(sum(r.latency_count) FILTER (WHERE r.bucket_start >= $11), 0)) AS latency,
        (100.0 * sum(r.checks - r.failures) / nullif(sum(r.checks), 0))::float8 AS uptime
    FROM health.check_rollups_hourly r
    WHERE r.service_id = u.id AND r.bucket_start >= $12
) w
WHERE s.id = u.id
"""

_SAVE_RESOURCES = f"""
INSERT INTO health.resource_latest AS l (service_id, {", ".join(_RESOURCE_FIELDS)})
SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::int8[],
    $7::int8[], $8::float8[], $9::int8[], $10::int4[], $11::int4[], $12::int4[], $13::int4[], $14::float8[])
ON CONFLICT (service_id) DO UPDATE SET {", ".join(f"{c} = excluded.{c}" for c in _RESOURCE_FIELDS)}
WHERE excluded.sampled_at >= l.sampled_at
"""


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _row(record: asyncpg.Record) -> AggregateRow:
    thresholds = {k: v for k, v in (record["thresholds"] or {}).items() if k in _THRESHOLD_FIELDS}
    return AggregateRow(
        service_id=str(record["id"]),
        slug=record["slug"],
        name=record["name"],
        enabled=record["enabled"],
        removed=record["removed_at"] is not None,
        definition_changed_at=record["updated_at"],
        thresholds=Thresholds(**thresholds),
        interval_seconds=record["check_interval_seconds"],
        status=ServiceStatus(record["status"]),
        status_reason=record["status_reason"],
        check=Verdict(ServiceStatus(record["check_status"]), record["check_reason"]),
        pressure=record["pressure"],
        breaker_open_since=record["breaker_open_since"],
        last_checked=record["last_checked"],
        last_successful=record["last_successful"],
        last_failure=record["last_failure"],
        resources=row_to_resources(record),
    )


def _uuids(values: Sequence[str]) -> list[uuid.UUID]:
    found: list[uuid.UUID] = []
    for value in values:
        try:
            found.append(uuid.UUID(value))
        except ValueError:
            continue  # not one of ours: the caller reports ids it did not get back
    return found


class PostgresAggregationWriter:
    """The writes of one aggregation batch, inside its transaction."""

    def __init__(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        self._conn = conn

    async def lock(self, service_ids: Sequence[str]) -> dict[str, AggregateRow]:
        """The registered services among these ids, locked until the batch commits."""
        records = await self._conn.fetch(_LOCK, _uuids(service_ids))
        return {str(r["id"]): _row(r) for r in records}

    async def lock_silent(self, now: datetime) -> dict[str, AggregateRow]:
        """Enabled services with a check verdict whose checks stopped arriving; others' locks are skipped."""
        records = await self._conn.fetch(_LOCK_SILENT, now)
        return {str(r["id"]): _row(r) for r in records}

    async def count_checks(self, states: Sequence[CheckState]) -> None:
        """Add the checks not counted before to their hourly rollups."""
        if not states:
            return
        await self._conn.execute(
            _COUNT_CHECKS,
            [uuid.UUID(s.service_id) for s in states],
            [s.checked_at for s in states],
            [s.success for s in states],
            [s.latency_ms for s in states],
        )

    async def save_resources(self, samples: Mapping[str, ResourceSnapshot]) -> None:
        if not samples:
            return
        columns: list[list[object]] = [[uuid.UUID(sid) for sid in samples]]
        columns += [[getattr(s, name) for s in samples.values()] for name in _RESOURCE_FIELDS]
        await self._conn.execute(_SAVE_RESOURCES, *columns)

    async def save(self, updates: Sequence[AggregateUpdate], now: datetime) -> None:
        """Write the updates and recompute their 24 h latency and 7 d uptime from the rollups."""
        if not updates:
            return
        await self._conn.execute(
            _SAVE,
            [uuid.UUID(u.service_id) for u in updates],
            [u.verdict.status.value for u in updates],
            [u.verdict.reason for u in updates],
            [u.check.status.value for u in updates],
            [u.check.reason for u in updates],
            [u.pressure for u in updates],
            [u.breaker_open_since for u in updates],
            [u.last_checked for u in updates],
            [u.last_successful for u in updates],
            [u.changed_at for u in updates],
            hour_of(now - LATENCY_WINDOW),
            hour_of(now - UPTIME_WINDOW),
            [u.last_failure for u in updates],
        )


class PostgresAggregationStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresAggregationWriter]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield PostgresAggregationWriter(conn)

    async def prune(self, rollups_before: datetime, receipts_before: datetime) -> tuple[int, int] | None:
        """Delete rollup hours and check receipts past retention; None when another replica is at it."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _PRUNE_LOCK_KEY):
                return None
            rollups = await conn.execute(
                "DELETE FROM health.check_rollups_hourly WHERE bucket_start < $1", rollups_before
            )
            receipts = await conn.execute("DELETE FROM health.check_receipts WHERE checked_at < $1", receipts_before)
        return int(rollups.split()[-1]), int(receipts.split()[-1])
