"""PostgreSQL writes and start-up reads of resource sampling: samples, rollups, latest figures, alerts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import asyncpg

from services.probes.agent.resources.model import AlertType, ResourceAlert, ResourceMetrics, ResourceSample
from services.probes.agent.resources.rolling import MinuteSummary
from services.probes.agent.store import truncate
from services.probes.domain import Thresholds
from services.probes.partitions import Connection, Partitions


@dataclass(frozen=True)
class SampledService:
    """One service's outcome of a sampling round."""

    service_id: str
    slug: str
    source: str
    thresholds: Thresholds
    interval_seconds: float
    agent_id: str
    metrics: ResourceMetrics
    sample: ResourceSample | None = None
    sample_error: str = ""


_INSERT_SAMPLES = """
INSERT INTO probes.resource_samples (service_id, sampled_at, cpu_percent, memory_used_bytes, memory_total_bytes,
    memory_percent, pool_active, pool_total, threads, queue_depth, processing_rate)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::bigint[], $5::bigint[], $6::float8[],
    $7::int[], $8::int[], $9::int[], $10::int[], $11::float8[])
"""
_UPSERT_ROLLUP = """
INSERT INTO probes.{table} AS r (service_id, bucket_start, samples, cpu_sum, cpu_max, mem_pct_sum, mem_pct_max,
    mem_used_sum, mem_used_max, mem_total_max, pool_active_max, pool_total_max, threads_max, queue_sum, queue_max)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int[], $4::float8[], $5::float8[], $6::float8[],
    $7::float8[], $8::float8[], $9::bigint[], $10::bigint[], $11::int[], $12::int[], $13::int[], $14::float8[],
    $15::int[])
ON CONFLICT (service_id, bucket_start) DO UPDATE SET
    samples = r.samples + excluded.samples, cpu_sum = r.cpu_sum + excluded.cpu_sum,
    cpu_max = greatest(r.cpu_max, excluded.cpu_max), mem_pct_sum = r.mem_pct_sum + excluded.mem_pct_sum,
    mem_pct_max = greatest(r.mem_pct_max, excluded.mem_pct_max), mem_used_sum = r.mem_used_sum + excluded.mem_used_sum,
    mem_used_max = greatest(r.mem_used_max, excluded.mem_used_max),
    mem_total_max = greatest(r.mem_total_max, excluded.mem_total_max),
    pool_active_max = greatest(r.pool_active_max, excluded.pool_active_max),
    pool_total_max = greatest(r.pool_total_max, excluded.pool_total_max),
    threads_max = greatest(r.threads_max, excluded.threads_max), queue_sum = r.queue_sum + excluded.queue_sum,
    queue_max = greatest(r.queue_max, excluded.queue_max)
"""
_UPSERT_LATEST = """
INSERT INTO probes.resource_latest AS l (service_id, service_slug, sampled_at, cpu_percent, cpu_average, cpu_peak,
    memory_used_bytes, memory_total_bytes, memory_percent, memory_peak_bytes, pool_active, pool_total, threads,
    queue_depth, processing_rate, source, sample_error, thresholds, interval_seconds, agent_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
ON CONFLICT (service_id) DO UPDATE SET
    service_slug = excluded.service_slug, sampled_at = excluded.sampled_at, cpu_percent = excluded.cpu_percent,
    cpu_average = excluded.cpu_average, cpu_peak = excluded.cpu_peak, memory_used_bytes = excluded.memory_used_bytes,
    memory_total_bytes = excluded.memory_total_bytes, memory_percent = excluded.memory_percent,
    memory_peak_bytes = excluded.memory_peak_bytes, pool_active = excluded.pool_active,
    pool_total = excluded.pool_total, threads = excluded.threads, queue_depth = excluded.queue_depth,
    processing_rate = excluded.processing_rate, source = excluded.source, sample_error = excluded.sample_error,
    thresholds = excluded.thresholds, interval_seconds = excluded.interval_seconds, agent_id = excluded.agent_id
"""


def _rollup_rows(samples: Sequence[tuple[str, ResourceSample]], unit: str) -> list[tuple[object, ...]]:
    groups: dict[tuple[str, datetime], list[ResourceSample]] = {}
    for service_id, sample in samples:
        groups.setdefault((service_id, truncate(sample.sampled_at, unit)), []).append(sample)
    rows: list[tuple[object, ...]] = []
    for (service_id, start), group in groups.items():
        cpu = [s.cpu_percent or 0.0 for s in group]
        pct = [s.memory_percent or 0.0 for s in group]
        used = [s.memory_used_bytes or 0 for s in group]
        queue = [s.queue_depth or 0 for s in group]
        rows.append((
            service_id, start, len(group), sum(cpu), max(cpu), sum(pct), max(pct), float(sum(used)), max(used),
            max(s.memory_total_bytes or 0 for s in group), max(s.pool_active or 0 for s in group),
            max(s.pool_total or 0 for s in group), max(s.threads or 0 for s in group), float(sum(queue)), max(queue),
        ))  # fmt: skip
    return rows


def _columns(rows: list[tuple[object, ...]], width: int) -> list[list[object]]:
    columns: list[list[object]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


def alert_from_row(row: asyncpg.Record) -> ResourceAlert:
    return ResourceAlert(
        id=str(row["id"]),
        service_id=row["service_id"],
        service_slug=row["service_slug"],
        alert_type=AlertType(row["alert_type"]),
        threshold_value=row["threshold_value"],
        actual_value=row["actual_value"],
        triggered_at=row["triggered_at"],
        message=row["message"],
        resolved_at=row["resolved_at"],
    )


class ResourceStore:
    def __init__(self, pool: asyncpg.Pool, partitions: Partitions | None = None) -> None:
        self._pool = pool
        self._partitions = partitions or Partitions()

    async def write_round(self, services: Sequence[SampledService], changes: Sequence[ResourceAlert]) -> list[str]:
        """Samples, rollups, latest figures and alert changes in one transaction; returns ids of alerts
        really opened (another agent may have opened the same one: that one is adopted, not repeated)."""
        samples = [(s.service_id, s.sample) for s in services if s.sample is not None]
        async with self._pool.acquire() as conn, conn.transaction():
            times = [sample.sampled_at for _, sample in samples]
            for table in ("resource_samples", "resource_minute", "resource_hour"):
                await self._partitions.ensure(conn, table, times)
            if samples:
                rows: list[tuple[object, ...]] = [
                    (sid, s.sampled_at, s.cpu_percent, s.memory_used_bytes, s.memory_total_bytes, s.memory_percent,
                     s.pool_active, s.pool_total, s.threads, s.queue_depth, s.processing_rate)
                    for sid, s in samples
                ]  # fmt: skip
                await conn.execute(_INSERT_SAMPLES, *_columns(rows, 11))
                for table, unit in (("resource_minute", "minute"), ("resource_hour", "hour")):
                    await conn.execute(_UPSERT_ROLLUP.format(table=table), *_columns(_rollup_rows(samples, unit), 15))
            for s in services:
                await self._upsert_latest(conn, s)
            return await self._apply_alerts(conn, changes)

    @staticmethod
    async def _upsert_latest(conn: Connection, s: SampledService) -> None:
        m = s.metrics
        await conn.execute(
            _UPSERT_LATEST,
            s.service_id, s.slug, m.timestamp, m.cpu_percent, m.cpu_average, m.cpu_peak, m.memory_used_bytes,
            m.memory_total_bytes, m.memory_percent, m.memory_peak_bytes, m.connection_pool_active,
            m.connection_pool_total, m.thread_count, m.queue_depth, m.processing_rate_per_minute, s.source,
            s.sample_error, asdict(s.thresholds), s.interval_seconds, s.agent_id,
        )  # fmt: skip

    @staticmethod
    async def _apply_alerts(conn: Connection, changes: Sequence[ResourceAlert]) -> list[str]:
        opened: list[str] = []
        for alert in changes:
            if alert.resolved_at is not None:
                await conn.execute(
                    "UPDATE probes.resource_alerts SET resolved_at = $2 WHERE id = $1 AND resolved_at IS NULL",
                    uuid.UUID(alert.id),
                    alert.resolved_at,
                )
                continue
            inserted = await conn.fetchval(
                "INSERT INTO probes.resource_alerts (id, service_id, service_slug, alert_type, threshold_value, "
                "actual_value, triggered_at, message) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) "
                "ON CONFLICT (service_id, alert_type) WHERE resolved_at IS NULL DO NOTHING RETURNING id",
                uuid.UUID(alert.id), alert.service_id, alert.service_slug, alert.alert_type.value,
                alert.threshold_value, alert.actual_value, alert.triggered_at, alert.message,
            )  # fmt: skip
            if inserted is not None:
                opened.append(alert.id)
                continue
            existing = await conn.fetchrow(
                "SELECT id, triggered_at FROM probes.resource_alerts "
                "WHERE service_id = $1 AND alert_type = $2 AND resolved_at IS NULL",
                alert.service_id,
                alert.alert_type.value,
            )
            if existing is not None:
                alert.id, alert.triggered_at = str(existing["id"]), existing["triggered_at"]
        return opened

    async def minute_summaries(self, service_ids: Sequence[str], since: datetime) -> dict[str, list[MinuteSummary]]:
        """The stored minute rollups since `since`, to seed the rolling figures of targets taken over."""
        rows = await self._pool.fetch(
            "SELECT service_id, bucket_start, samples, cpu_sum, cpu_max, mem_used_max FROM probes.resource_minute "
            "WHERE service_id = ANY($1::text[]) AND bucket_start >= $2 ORDER BY bucket_start",
            list(service_ids),
            since,
        )
        found: dict[str, list[MinuteSummary]] = {}
        for r in rows:
            found.setdefault(r["service_id"], []).append(
                MinuteSummary(r["bucket_start"], r["samples"], r["cpu_sum"], r["cpu_max"], r["mem_used_max"])
            )
        return found

    async def open_alerts(self, service_ids: Sequence[str]) -> dict[str, list[ResourceAlert]]:
        rows = await self._pool.fetch(
            "SELECT * FROM probes.resource_alerts WHERE service_id = ANY($1::text[]) AND resolved_at IS NULL",
            list(service_ids),
        )
        found: dict[str, list[ResourceAlert]] = {}
        for r in rows:
            found.setdefault(r["service_id"], []).append(alert_from_row(r))
        return found


def thresholds_json(t: Thresholds) -> str:
    return json.dumps(asdict(t))


DAY = timedelta(days=1)
