"""PostgreSQL writes of the periodic checks: results, latest state, latency rollups, in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from services.probes.agent import histogram
from services.probes.agent.breaker import BreakerSnapshot
from services.probes.agent.records import CheckRecord
from services.probes.domain import BreakerState, CommunicationError
from services.probes.partitions import Connection, Partitions
from services.probes.repository import insert_errors

_INSERT_RESULTS = """
INSERT INTO probes.probe_results (service_id, checked_at, slot, agent_id, success, degraded, skipped, error_type,
    total_ms, dns_ms, tcp_ms, tls_ms, ttfb_ms, download_ms, status_code, communication_error_id)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::text[], $5::bool[], $6::bool[], $7::bool[],
    $8::text[], $9::float8[], $10::float8[], $11::float8[], $12::float8[], $13::float8[], $14::float8[], $15::int[],
    $16::uuid[])
"""
_UPSERT_LATEST = """
INSERT INTO probes.service_latest AS l (service_id, service_slug, checked_at, success, degraded, error_type,
    error_group, summary, total_latency_ms, speed_rating, consecutive_failures, breaker_state, breaker_retry_at,
    breaker_cooldown_seconds, last_success_at, last_failure_at, agent_id, interval_seconds, slot)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bool[], $5::bool[], $6::text[], $7::text[],
    $8::text[], $9::float8[], $10::text[], $11::int[], $12::text[], $13::timestamptz[], $14::float8[],
    $15::timestamptz[], $16::timestamptz[], $17::text[], $18::int[], $19::bigint[])
ON CONFLICT (service_id) DO UPDATE SET
    service_slug = excluded.service_slug, checked_at = excluded.checked_at, success = excluded.success,
    degraded = excluded.degraded, error_type = excluded.error_type, error_group = excluded.error_group,
    summary = excluded.summary, total_latency_ms = excluded.total_latency_ms, speed_rating = excluded.speed_rating,
    consecutive_failures = excluded.consecutive_failures, breaker_state = excluded.breaker_state,
    breaker_retry_at = excluded.breaker_retry_at, breaker_cooldown_seconds = excluded.breaker_cooldown_seconds,
    last_success_at = coalesce(excluded.last_success_at, l.last_success_at),
    last_failure_at = coalesce(excluded.last_failure_at, l.last_failure_at),
    agent_id = excluded.agent_id, interval_seconds = excluded.interval_seconds,
    slot = greatest(excluded.slot, l.slot)
WHERE excluded.checked_at >= l.checked_at
"""
_UPSERT_ROLLUP = """
INSERT INTO probes.{table} AS r (service_id, bucket_start, checks, failures, skipped, ok_ms_sum, ok_ms_max, histogram)
SELECT s, b, c, f, k, total, top, h::int[]
FROM unnest($1::text[], $2::timestamptz[], $3::int[], $4::int[], $5::int[], $6::float8[], $7::float8[], $8::text[])
    AS u(s, b, c, f, k, total, top, h)
ON CONFLICT (service_id, bucket_start) DO UPDATE SET
    checks = r.checks + excluded.checks, failures = r.failures + excluded.failures,
    skipped = r.skipped + excluded.skipped, ok_ms_sum = r.ok_ms_sum + excluded.ok_ms_sum,
    ok_ms_max = greatest(r.ok_ms_max, excluded.ok_ms_max),
    histogram = ARRAY(SELECT coalesce(a, 0) + coalesce(b, 0)
                      FROM unnest(r.histogram, excluded.histogram) WITH ORDINALITY AS t(a, b, i) ORDER BY i)
"""


def truncate(at: datetime, unit: str) -> datetime:
    at = at.astimezone(UTC)
    if unit == "minute":
        return at.replace(second=0, microsecond=0)
    if unit == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class _Bucket:
    checks: int = 0
    failures: int = 0
    skipped: int = 0
    ok_sum: float = 0.0
    ok_max: float = 0.0
    hist: list[int] = field(default_factory=histogram.empty)


def rollup(records: Iterable[CheckRecord], unit: str) -> dict[tuple[str, datetime], _Bucket]:
    buckets: dict[tuple[str, datetime], _Bucket] = {}
    for record in records:
        bucket = buckets.setdefault((record.service_id, truncate(record.checked_at, unit)), _Bucket())
        bucket.checks += 1
        if record.success:
            bucket.ok_sum += record.total_ms
            bucket.ok_max = max(bucket.ok_max, record.total_ms)
            histogram.add(bucket.hist, record.total_ms)
        else:
            bucket.failures += 1
            bucket.skipped += record.skipped
    return buckets


class CheckStore:
    def __init__(self, pool: asyncpg.Pool, partitions: Partitions | None = None) -> None:
        self._pool = pool
        self._partitions = partitions or Partitions()

    async def write(self, records: Sequence[CheckRecord], errors: list[CommunicationError]) -> None:
        """Results, latest states, minute and hour rollups and communication errors, all or nothing."""
        async with self._pool.acquire() as conn, conn.transaction():
            times = [r.checked_at for r in records]
            for table in ("probe_results", "latency_minute", "latency_hour"):
                await self._partitions.ensure(conn, table, times)
            await insert_errors(conn, errors, self._partitions)
            if records:
                await self._insert_results(conn, records)
                await self._upsert_latest(conn, records)
                for table, unit in (("latency_minute", "minute"), ("latency_hour", "hour")):
                    await self._upsert_rollup(conn, table, rollup(records, unit))

    @staticmethod
    async def _insert_results(conn: Connection, records: Sequence[CheckRecord]) -> None:
        columns: list[list[object]] = [[] for _ in range(16)]
        for r in records:
            t = r.timing
            row = (
                r.service_id, r.checked_at, r.slot, r.agent_id, r.success, r.degraded, r.skipped,
                r.error.error_type.value if r.error else None, r.total_ms, t.dns_ms, t.tcp_ms, t.tls_ms, t.ttfb_ms,
                t.download_ms, r.status_code, uuid.UUID(r.communication_error_id) if r.communication_error_id else None,
            )  # fmt: skip
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        await conn.execute(_INSERT_RESULTS, *columns)

    @staticmethod
    async def _upsert_latest(conn: Connection, records: Sequence[CheckRecord]) -> None:
        latest: dict[str, CheckRecord] = {}
        slots: dict[str, int] = {}
        last_ok: dict[str, datetime] = {}
        last_failed: dict[str, datetime] = {}
        for r in sorted(records, key=lambda r: r.checked_at):
            latest[r.service_id] = r
            slots[r.service_id] = max(r.slot, slots.get(r.service_id, r.slot))
            if r.success:
                last_ok[r.service_id] = r.checked_at
            elif not r.skipped:
                last_failed[r.service_id] = r.checked_at
        columns: list[list[object]] = [[] for _ in range(19)]
        for r in latest.values():
            b = r.breaker
            row = (
                r.service_id, r.slug, r.checked_at, r.success, r.degraded,
                r.error.error_type.value if r.error else None, r.error.group.value if r.error else None,
                r.summary, r.total_ms, r.speed_rating.value if r.speed_rating else None, b.failures, b.state.value,
                b.retry_at, b.cooldown_seconds, last_ok.get(r.service_id), last_failed.get(r.service_id), r.agent_id,
                r.interval_seconds, slots[r.service_id],
            )  # fmt: skip
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        await conn.execute(_UPSERT_LATEST, *columns)

    @staticmethod
    async def _upsert_rollup(conn: Connection, table: str, buckets: dict[tuple[str, datetime], _Bucket]) -> None:
        columns: list[list[object]] = [[] for _ in range(8)]
        for (service_id, start), b in buckets.items():
            row = (
                service_id, start, b.checks, b.failures, b.skipped, b.ok_sum, b.ok_max,
                "{" + ",".join(map(str, b.hist)) + "}",
            )  # fmt: skip
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        await conn.execute(_UPSERT_ROLLUP.format(table=table), *columns)

    async def stored_slots(self, service_ids: Sequence[str]) -> dict[str, int | None]:
        """The slot of each target's latest stored check (None: none stored yet); absent targets were never checked."""
        rows = await self._pool.fetch(
            "SELECT service_id, slot FROM probes.service_latest WHERE service_id = ANY($1::text[])", list(service_ids)
        )
        return {r["service_id"]: r["slot"] for r in rows}

    async def breakers(self, service_ids: Sequence[str]) -> dict[str, BreakerSnapshot]:
        """The breaker each target had under its previous lease holder."""
        rows = await self._pool.fetch(
            "SELECT service_id, breaker_state, consecutive_failures, breaker_cooldown_seconds, breaker_retry_at "
            "FROM probes.service_latest WHERE service_id = ANY($1::text[])",
            list(service_ids),
        )
        return {
            r["service_id"]: BreakerSnapshot(
                BreakerState(r["breaker_state"]),
                r["consecutive_failures"],
                r["breaker_cooldown_seconds"],
                r["breaker_retry_at"],
            )
            for r in rows
        }
