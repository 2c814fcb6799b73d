"""Execution logs and steps of jobs: storage in daily partitions, idempotent appends, retention.

`jobs.job_logs` is partitioned by the day a line was received; retention drops whole partitions
(never a DELETE over millions of rows). Appends are idempotent per job: a line whose sequence is not
above the job's stored `log_sequence` was stored before and is skipped, so the SDK may resend freely.
Lines for an attempt that has finished are refused, like its progress (docs/reliability.md); only the
service's own notes (the reaper's) are written after the end.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import asyncpg

from services.common.logging import get_logger
from services.jobs.domain import JobStep, LogLevel, LogLine, StepStatus, StepUpdate, StoredLog, parse_job_id

log = get_logger(__name__)
_PARTITION = re.compile(r"^job_logs_p(\d{8})$")

_APPEND = """
WITH u AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::smallint[], $4::text[], $5::timestamptz[], $6::text[],
                         $7::jsonb[]) AS u(job_id, sequence, level, message, ts, stack_trace, context)
), prev AS (
    SELECT j.id, j.log_sequence FROM jobs.jobs j WHERE j.id IN (SELECT DISTINCT job_id FROM u)
        AND j.status IN ('QUEUED', 'RUNNING')  -- late lines of a finished attempt are refused, like progress
    FOR UPDATE
), fresh AS (
    SELECT DISTINCT ON (u.job_id, u.sequence) u.* FROM u JOIN prev ON prev.id = u.job_id
    WHERE u.sequence > prev.log_sequence
    ORDER BY u.job_id, u.sequence
), ins AS (
    INSERT INTO jobs.job_logs (job_id, sequence, level, message, ts, stack_trace, context)
    SELECT job_id, sequence, level, message, ts, NULLIF(stack_trace, ''), context FROM fresh
    RETURNING job_id, sequence, level, message, ts, stack_trace, context
), bump AS (
    UPDATE jobs.jobs j SET log_sequence = m.top, updated_at = clock_timestamp()
    FROM (SELECT job_id, max(sequence) AS top FROM ins GROUP BY job_id) m
    WHERE j.id = m.job_id
)
SELECT ins.*, j.tenant_id FROM ins JOIN jobs.jobs j ON j.id = ins.job_id ORDER BY ins.job_id, ins.sequence
"""


# A line the service itself writes into a job's log (the reaper's), numbered after the worker's last one.
_NOTE = """
WITH j AS (
    UPDATE jobs.jobs SET log_sequence = log_sequence + 1 WHERE id = $1 RETURNING id, log_sequence, tenant_id
)
INSERT INTO jobs.job_logs (job_id, sequence, level, message, ts, context)
SELECT j.id, j.log_sequence, $2, $3, clock_timestamp(), $4::jsonb FROM j
RETURNING job_id, sequence, level, message, ts, stack_trace, context, (SELECT tenant_id FROM j) AS tenant_id
"""


def _stored(row: asyncpg.Record, job_id: str, tenant_id: str = "") -> StoredLog:
    return StoredLog(
        job_id=job_id,
        sequence=row["sequence"],
        level=LogLevel(row["level"]),
        message=row["message"],
        timestamp=row["ts"],
        stack_trace=row["stack_trace"] or "",
        context=row["context"] or {},
        tenant_id=tenant_id,
    )


def partition_name(day: date) -> str:
    return f"job_logs_p{day:%Y%m%d}"


class LogStore:
    """Reads and writes jobs.job_logs and jobs.job_steps."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def append(self, lines: Sequence[tuple[str, LogLine]]) -> list[StoredLog]:
        """Store (job id, line) pairs not stored before; returns what was new, per job in order."""
        if not lines:
            return []
        args = (
            [parse_job_id(job_id) for job_id, _ in lines],
            [ln.sequence for _, ln in lines],
            [int(ln.level) for _, ln in lines],
            [ln.message for _, ln in lines],
            [ln.timestamp for _, ln in lines],
            [ln.stack_trace for _, ln in lines],
            [ln.context for _, ln in lines],
        )
        try:
            rows = await self._pool.fetch(_APPEND, *args)
        except asyncpg.CheckViolationError:
            # No partition for today yet (maintenance has not run since midnight): create it and retry.
            await self.ensure_partitions(datetime.now(UTC).date(), days_ahead=2)
            rows = await self._pool.fetch(_APPEND, *args)
        return [_stored(r, str(r["job_id"]), r["tenant_id"]) for r in rows]

    async def note(self, job_id: str, level: LogLevel, message: str, context: dict[str, object]) -> StoredLog | None:
        """Append the service's own line to a job's log, whatever its status; None for an unknown job."""
        args = (parse_job_id(job_id), int(level), message, context)
        try:
            row = await self._pool.fetchrow(_NOTE, *args)
        except asyncpg.CheckViolationError:
            await self.ensure_partitions(datetime.now(UTC).date(), days_ahead=2)
            row = await self._pool.fetchrow(_NOTE, *args)
        return _stored(row, str(row["job_id"]), row["tenant_id"]) if row is not None else None

    async def read(
        self,
        job_id: str,
        *,
        after_sequence: int = 0,
        tail: int = 0,
        limit: int = 1000,
        min_level: LogLevel | None = None,
        text: str = "",
    ) -> tuple[list[StoredLog], int]:
        """Lines of a job in order (the last `tail` ones, or up to `limit` after a sequence) and the
        job's highest stored sequence."""
        key = parse_job_id(job_id)
        clauses = ["job_id = $1", "sequence > $2"]
        params: list[object] = [key, after_sequence]
        if min_level is not None:
            params.append(int(min_level))
            clauses.append(f"level >= ${len(params)}")
        if text:
            params.append(text)
            clauses.append(f"to_tsvector('simple', message) @@ plainto_tsquery('simple', ${len(params)})")
        where = " AND ".join(clauses)
        if tail:
            params.append(tail)
            sql = (
                f"SELECT * FROM (SELECT * FROM jobs.job_logs WHERE {where} ORDER BY sequence DESC "
                f"LIMIT ${len(params)}) t ORDER BY sequence"
            )
        else:
            params.append(limit)
            sql = f"SELECT * FROM jobs.job_logs WHERE {where} ORDER BY sequence LIMIT ${len(params)}"
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *params)
            last = await conn.fetchval("SELECT log_sequence FROM jobs.jobs WHERE id = $1", key)
        logs = [_stored(r, job_id) for r in rows]
        return logs, int(last or 0)

    async def upsert_steps(self, job_id: str, steps: Sequence[StepUpdate]) -> None:
        if not steps:
            return
        key = parse_job_id(job_id)
        await self._pool.executemany(
            """
            INSERT INTO jobs.job_steps (job_id, idx, name, status, started_at, completed_at, message)
            VALUES ($1, $2, $3, $4,
                    CASE WHEN $4 <> 'PENDING' THEN $5::timestamptz END,
                    CASE WHEN $4 IN ('COMPLETED', 'FAILED', 'SKIPPED') THEN $5::timestamptz END, $6)
            ON CONFLICT (job_id, idx) DO UPDATE SET
                name = EXCLUDED.name, status = EXCLUDED.status, message = EXCLUDED.message,
                started_at = COALESCE(jobs.job_steps.started_at, EXCLUDED.started_at),
                completed_at = COALESCE(EXCLUDED.completed_at, jobs.job_steps.completed_at)
            """,
            [(key, s.index, s.name, s.status.value, s.at or datetime.now(UTC), s.message) for s in steps],
        )

    async def steps(self, job_id: str) -> list[JobStep]:
        rows = await self._pool.fetch(
            "SELECT * FROM jobs.job_steps WHERE job_id = $1 ORDER BY idx", parse_job_id(job_id)
        )
        return [
            JobStep(
                index=r["idx"],
                name=r["name"],
                status=StepStatus(r["status"]),
                started_at=r["started_at"],
                completed_at=r["completed_at"],
                message=r["message"],
            )
            for r in rows
        ]

    async def ensure_partitions(self, today: date, days_ahead: int = 7) -> list[str]:
        """Create the daily partitions from yesterday to `days_ahead` days ahead; returns those created."""
        created = []
        async with self._pool.acquire() as conn:
            for offset in range(-1, days_ahead + 1):
                day = today + timedelta(days=offset)
                name = partition_name(day)
                exists = await conn.fetchval("SELECT to_regclass($1)", f"jobs.{name}")
                if exists:
                    continue
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                try:
                    await conn.execute(
                        f"CREATE TABLE IF NOT EXISTS jobs.{name} PARTITION OF jobs.job_logs "
                        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + timedelta(days=1)).isoformat()}')"
                    )
                except asyncpg.DuplicateTableError:
                    continue  # another replica made it between our check and our create
                created.append(name)
        if created:
            log.info("log partitions created", partitions=created)
        return created

    async def drop_expired(self, today: date, retention_days: int) -> list[str]:
        """Drop daily partitions entirely older than the retention window; returns those dropped."""
        cutoff = today - timedelta(days=retention_days)
        dropped = []
        async with self._pool.acquire() as conn:
            names = await conn.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
                "WHERE n.nspname = 'jobs' AND p.relname = 'job_logs'"
            )
            for row in names:
                match = _PARTITION.match(row["relname"])
                if match and datetime.strptime(match.group(1), "%Y%m%d").date() < cutoff:
                    await conn.execute(f"DROP TABLE IF EXISTS jobs.{row['relname']}")
                    dropped.append(row["relname"])
        if dropped:
            log.info("expired log partitions dropped", partitions=dropped, retention_days=retention_days)
        return dropped
