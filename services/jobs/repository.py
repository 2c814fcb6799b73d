"""PostgreSQL storage of jobs (schema `jobs`): rows, pages, claims, batched progress and heartbeats."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.common.errors import InvalidArgumentError, NotFoundError
from services.jobs.domain import (
    ErrorClass,
    Job,
    JobFilter,
    JobPage,
    JobStatus,
    ProgressReport,
    SortField,
    parse_job_id,
)

# Sort expression and its SQL type per sort field. NULL times sort as the oldest possible.
_SORT: dict[SortField, tuple[str, str]] = {
    SortField.CREATED_AT: ("created_at", "timestamptz"),
    SortField.STARTED_AT: ("COALESCE(started_at, '-infinity'::timestamptz)", "timestamptz"),
    SortField.COMPLETED_AT: ("COALESCE(completed_at, '-infinity'::timestamptz)", "timestamptz"),
    SortField.UPDATED_AT: ("updated_at", "timestamptz"),
    SortField.STATUS: ("status_rank", "smallint"),
    SortField.JOB_TYPE: ("job_type", "text"),
    SortField.TENANT_ID: ("tenant_id", "text"),
    SortField.PROGRESS: ("progress_percent", "double precision"),
    SortField.ID: ("id", "uuid"),
}

_BASE_COLUMNS = (
    "id, job_type, tenant_id, status, parameters, metadata, attempt, max_attempts, root_job_id, "
    "retry_of_job_id, created_by, worker_id, total_items, processed_items, succeeded_items, failed_items, "
    "progress_percent, items_per_second, eta_seconds, progress_message, progress_sequence, "
    "progress_updated_at, error_message, error_category, error_class, error_stack_trace, cancel_requested, "
    "created_at, started_at, completed_at, updated_at, last_heartbeat_at, available_at, cancel_reason, log_sequence"
)
_COLUMNS = (
    f"{_BASE_COLUMNS}, (SELECT r.id FROM jobs.jobs r WHERE r.retry_of_job_id = jobs.jobs.id) AS retried_by_job_id"
)


def _returning(alias: str) -> str:
    cols = ", ".join(f"{alias}.{c.strip()}" for c in _BASE_COLUMNS.split(","))
    return f"{cols}, (SELECT r.id FROM jobs.jobs r WHERE r.retry_of_job_id = {alias}.id) AS retried_by_job_id"


# Columns a state change may write; anything else is a programming error.
_UPDATABLE = frozenset(
    {
        "status", "worker_id", "total_items", "processed_items", "succeeded_items", "failed_items",
        "progress_percent", "items_per_second", "eta_seconds", "progress_message", "progress_sequence",
        "progress_updated_at", "error_message", "error_category", "error_class", "error_stack_trace",
        "cancel_requested", "cancel_reason", "started_at", "completed_at", "updated_at", "last_heartbeat_at",
        "metadata",
    }
)  # fmt: skip

# Progress rules, applied to a whole batch in one statement:
#  - a report whose sequence is not above the stored one changes nothing (resends are idempotent);
#  - a report without total keeps the stored total, and may not go beyond it;
#  - percent = processed / total, capped at 100;
#  - throughput is smoothed: 0.3 x (items since the last report / seconds since it) + 0.7 x previous;
#  - ETA = remaining items / throughput, unknown (NULL) without a total or a throughput.
_APPLY_PROGRESS = f"""
WITH u AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[])
        AS u(id, total, processed, succeeded, failed, message, sequence)
), c AS (
    SELECT j.id,
           CASE WHEN u.total > 0 THEN u.total ELSE j.total_items END AS total,
           u.processed, u.succeeded, u.failed,
           COALESCE(NULLIF(u.message, ''), j.progress_message) AS message,
           CASE WHEN u.sequence > 0 THEN u.sequence ELSE j.progress_sequence + 1 END AS sequence,
           CASE
             WHEN j.progress_updated_at IS NULL OR u.processed < j.processed_items
                  OR clock_timestamp() <= j.progress_updated_at THEN j.items_per_second
             WHEN j.items_per_second <= 0 THEN (u.processed - j.processed_items)
                  / EXTRACT(EPOCH FROM clock_timestamp() - j.progress_updated_at)
             ELSE 0.3 * (u.processed - j.processed_items)
                      / EXTRACT(EPOCH FROM clock_timestamp() - j.progress_updated_at)
                  + 0.7 * j.items_per_second
           END AS rate
    FROM jobs.jobs j JOIN u ON u.id = j.id
    WHERE j.status = 'RUNNING'
      AND (u.sequence = 0 OR u.sequence > j.progress_sequence)
      AND (u.total > 0 OR j.total_items = 0 OR u.processed <= j.total_items)
    FOR UPDATE OF j
)
UPDATE jobs.jobs j SET
    total_items = c.total, processed_items = c.processed, succeeded_items = c.succeeded,
    failed_items = c.failed,
    progress_percent = CASE WHEN c.total > 0 THEN LEAST(100.0, 100.0 * c.processed / c.total) ELSE 0 END,
    items_per_second = c.rate,
    eta_seconds = CASE WHEN c.total > 0 AND c.rate > 0 THEN GREATEST(0, c.total - c.processed) / c.rate END,
    progress_message = c.message, progress_sequence = c.sequence,
    progress_updated_at = clock_timestamp(), last_heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
FROM c WHERE j.id = c.id
RETURNING {_returning("j")}
"""


_START_QUEUED = f"""
UPDATE jobs.jobs j SET
    status = 'RUNNING', worker_id = $3, started_at = $4, updated_at = $4, last_heartbeat_at = $4,
    progress_updated_at = $4, total_items = CASE WHEN u.total > 0 THEN u.total ELSE j.total_items END
FROM unnest($1::uuid[], $2::bigint[]) AS u(id, total)
WHERE j.id = u.id AND j.status = 'QUEUED'
RETURNING {_returning("j")}
"""


_COMPLETE_RUNNING = f"""
UPDATE jobs.jobs j SET
    status = 'COMPLETED', completed_at = $3, updated_at = $3, progress_percent = 100.0, eta_seconds = 0.0,
    progress_message = COALESCE(NULLIF(u.message, ''), j.progress_message)
FROM unnest($1::uuid[], $2::text[]) AS u(id, message)
WHERE j.id = u.id AND j.status = 'RUNNING' AND j.worker_id = $4
RETURNING {_returning("j")}
"""

# Jobs per (status, tenant, type): the folded counts and the changes not folded yet (migration 006).
_COUNTS = (
    "(SELECT status, tenant_id, job_type, n FROM jobs.job_counts UNION ALL "
    "SELECT status, tenant_id, job_type, delta FROM jobs.job_count_changes) AS counts"
)
_FOLD_COUNTS = """
WITH moved AS (DELETE FROM jobs.job_count_changes RETURNING status, tenant_id, job_type, delta),
summed AS (SELECT status, tenant_id, job_type, sum(delta) AS d FROM moved GROUP BY 1, 2, 3),
folded AS (
    INSERT INTO jobs.job_counts AS c (status, tenant_id, job_type, n)
    SELECT status, tenant_id, job_type, d FROM summed ORDER BY 1, 2, 3
    ON CONFLICT (status, tenant_id, job_type) DO UPDATE SET n = c.n + EXCLUDED.n
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved)
"""


VACUUM_AFTER_FOLDING = 10_000  # changes; below this autovacuum keeps up and the dead rows cost little


def _counted(flt: JobFilter) -> bool:
    """Whether the kept counts can answer this filter: it names only statuses, tenants and types."""
    return not (flt.created_after or flt.created_before or flt.updated_after or flt.text or flt.id_prefix)


def row_to_job(row: asyncpg.Record) -> Job:
    return Job(
        id=str(row["id"]),
        job_type=row["job_type"],
        tenant_id=row["tenant_id"],
        status=JobStatus(row["status"]),
        parameters=row["parameters"] or {},
        metadata=row["metadata"] or {},
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        root_job_id=str(row["root_job_id"]),
        retry_of_job_id=str(row["retry_of_job_id"]) if row["retry_of_job_id"] else None,
        created_by=row["created_by"],
        worker_id=row["worker_id"],
        total_items=row["total_items"],
        processed_items=row["processed_items"],
        succeeded_items=row["succeeded_items"],
        failed_items=row["failed_items"],
        progress_percent=row["progress_percent"],
        items_per_second=row["items_per_second"],
        eta_seconds=row["eta_seconds"],
        progress_message=row["progress_message"],
        progress_sequence=row["progress_sequence"],
        progress_updated_at=row["progress_updated_at"],
        error_message=row["error_message"],
        error_category=row["error_category"],
        error_class=ErrorClass(row["error_class"]) if row["error_class"] else None,
        error_stack_trace=row["error_stack_trace"],
        cancel_requested=row["cancel_requested"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        updated_at=row["updated_at"],
        last_heartbeat_at=row["last_heartbeat_at"],
        available_at=row["available_at"],
        cancel_reason=row["cancel_reason"],
        log_sequence=row["log_sequence"],
        retried_by_job_id=str(row["retried_by_job_id"]) if row["retried_by_job_id"] else None,
    )


def encode_cursor(sort: SortField, descending: bool, key: str, job_id: str) -> str:
    raw = json.dumps({"s": sort.value, "d": descending, "k": key, "i": job_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: SortField, descending: bool) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        key, job_id = str(data["k"]), str(uuid.UUID(data["i"]))
        same_order = data["s"] == sort.value and bool(data["d"]) == descending
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidArgumentError("page token is malformed; start again without one") from None
    if not same_order:
        raise InvalidArgumentError("page token belongs to a different sort order; start again without one")
    return key, job_id


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _where(flt: JobFilter, params: list[Any], *, with_status: bool = True) -> str:
    clauses: list[str] = []

    def add(sql: str, value: Any) -> None:
        params.append(value)
        clauses.append(sql.format(f"${len(params)}"))

    def one_of(column: str, values: list[str]) -> None:
        # One value as an equality: PostgreSQL before 17 reads an index in order only for `=`, not `= ANY`.
        if len(values) == 1:
            add(f"{column} = {{}}", values[0])
        else:
            add(f"{column} = ANY({{}}::text[])", values)

    if flt.statuses and with_status:
        one_of("status", [s.value for s in flt.statuses])
    if flt.job_types:
        one_of("job_type", list(flt.job_types))
    if flt.tenant_ids:
        one_of("tenant_id", list(flt.tenant_ids))
    if flt.created_after:
        add("created_at >= {}", flt.created_after)
    if flt.created_before:
        add("created_at < {}", flt.created_before)
    if flt.updated_after:
        add("updated_at > {}", flt.updated_after)
    if flt.text:
        add("error_message ILIKE {}", f"%{_escape_like(flt.text)}%")
    if flt.id_prefix:
        add("id::text LIKE {}", f"{flt.id_prefix.lower()}%")
    return " AND ".join(clauses) if clauses else "TRUE"


class PostgresJobRepository:
    """Reads and writes jobs.jobs; translates asyncpg errors into domain errors."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(self, job: Job, idempotency_key: str | None) -> tuple[Job, bool]:
        """Store a new job. With a used idempotency key, or as a second retry of the same job, the
        existing job is returned with False."""
        async with self._pool.acquire() as conn:
            try:
                row = await conn.fetchrow(
                    f"""
                    INSERT INTO jobs.jobs (id, job_type, tenant_id, status, parameters, metadata, attempt,
                        max_attempts, root_job_id, retry_of_job_id, idempotency_key, created_by, total_items,
                        created_at, updated_at, available_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::timestamptz, $14::timestamptz,
                            COALESCE($15::timestamptz, $14::timestamptz))
                    ON CONFLICT (idempotency_key) DO NOTHING
                    RETURNING {_COLUMNS}
                    """,
                    uuid.UUID(job.id), job.job_type, job.tenant_id, job.status.value, job.parameters,
                    job.metadata, job.attempt, job.max_attempts, uuid.UUID(job.root_job_id),
                    uuid.UUID(job.retry_of_job_id) if job.retry_of_job_id else None,
                    idempotency_key, job.created_by, job.total_items, job.created_at, job.available_at,
                )  # fmt: skip
            except asyncpg.UniqueViolationError:
                # jobs_one_retry_per_job: a concurrent retry of the same job won.
                row = None
            if row is not None:
                return row_to_job(row), True
            if idempotency_key:
                existing = await conn.fetchrow(
                    f"SELECT {_COLUMNS} FROM jobs.jobs WHERE idempotency_key = $1", idempotency_key
                )
            else:
                existing = await conn.fetchrow(
                    f"SELECT {_COLUMNS} FROM jobs.jobs WHERE retry_of_job_id = $1",
                    uuid.UUID(job.retry_of_job_id) if job.retry_of_job_id else None,
                )
        if existing is None:
            raise NotFoundError(f"job {job.id} could not be stored")
        return row_to_job(existing), False

    async def get(self, job_id: str) -> Job:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM jobs.jobs WHERE id = $1", parse_job_id(job_id))
        if row is None:
            raise NotFoundError(f"job {job_id} not found")
        return row_to_job(row)

    async def modify(self, job_id: str, change: Callable[[Job], dict[str, Any] | None]) -> tuple[Job, Job]:
        """Lock the job, let `change` decide (or raise), write its fields; returns (before, after).

        `change` returning None means "nothing to write" and leaves the row untouched.
        """
        key = parse_job_id(job_id)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM jobs.jobs WHERE id = $1 FOR UPDATE", key)
            if row is None:
                raise NotFoundError(f"job {job_id} not found")
            before = row_to_job(row)
            fields = change(before)
            if not fields:
                return before, before
            unknown = set(fields) - _UPDATABLE
            if unknown:
                raise ValueError(f"not updatable: {sorted(unknown)}")
            names = list(fields)
            values = [v.value if isinstance(v, JobStatus | ErrorClass) else v for v in (fields[n] for n in names)]
            assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
            updated = await conn.fetchrow(
                f"UPDATE jobs.jobs SET {assignments} WHERE id = $1 RETURNING {_COLUMNS}", key, *values
            )
        assert updated is not None
        return before, row_to_job(updated)

    async def page(
        self, flt: JobFilter, sort: SortField, descending: bool, page_size: int, cursor: str | None
    ) -> JobPage:
        expr, sql_type = _SORT[sort]
        params: list[Any] = []
        where = _where(flt, params)
        count_params = list(params)
        if cursor:
            key, last_id = decode_cursor(cursor, sort, descending)
            params.extend([key, uuid.UUID(last_id)])
            op = "<" if descending else ">"
            where += f" AND ({expr}, id) {op} (${len(params) - 1}::text::{sql_type}, ${len(params)}::uuid)"
        order = "DESC" if descending else "ASC"
        params.append(page_size + 1)
        # The page and the total are independent: ask for both at once on two connections.
        try:
            rows, total = await self._page_and_total(expr, order, where, params, flt, count_params)
        except asyncpg.DataError:
            # A page token whose key does not read as the sort column's type was not made by us.
            raise InvalidArgumentError("page token is malformed; start again without one") from None
        has_more = len(rows) > page_size
        rows = rows[:page_size]
        last = rows[-1] if rows else None
        next_cursor = encode_cursor(sort, descending, last["sort_key"], str(last["id"])) if has_more and last else None
        return JobPage([row_to_job(r) for r in rows], next_cursor, int(total or 0))

    async def _page_and_total(
        self, expr: str, order: str, where: str, params: list[Any], flt: JobFilter, count_params: list[Any]
    ) -> tuple[list[asyncpg.Record], Any]:
        if _counted(flt):  # statuses, tenants and types only: the kept counts answer (migration 006)
            total_params: list[Any] = []
            total_sql = f"SELECT COALESCE(sum(n), 0) FROM {_COUNTS} WHERE {_where(flt, total_params)}"
        else:
            total_params, total_sql = count_params, f"SELECT count(*) FROM jobs.jobs WHERE {_where(flt, [])}"
        rows, total = await asyncio.gather(
            self._pool.fetch(
                f"SELECT {_COLUMNS}, ({expr})::text AS sort_key FROM jobs.jobs WHERE {where} "
                f"ORDER BY {expr} {order}, id {order} LIMIT ${len(params)}",
                *params,
            ),
            self._pool.fetchval(total_sql, *total_params),
        )
        return list(rows), total

    async def count_by_status(self, flt: JobFilter) -> dict[JobStatus, int]:
        params: list[Any] = []
        where = _where(flt, params, with_status=False)
        source = _COUNTS if _counted(flt) else "jobs.jobs"
        amount = "sum(n)" if _counted(flt) else "count(*)"
        rows = await self._pool.fetch(
            f"SELECT status, {amount} AS n FROM {source} WHERE {where} GROUP BY status", *params
        )
        counts = dict.fromkeys(JobStatus, 0)
        counts.update({JobStatus(r["status"]): int(r["n"]) for r in rows})
        return counts

    async def fold_counts(self) -> int:
        """Fold the appended count changes into jobs.job_counts (maintenance); returns how many.

        Every status count and page total reads jobs.job_count_changes whole, dead rows included. After a
        burst (a bulk import, a day's backlog queued at once) the fold leaves that many dead rows, and
        until autovacuum comes by (a minute or more) each count pays for them: 14 ms per count with a
        million (bench/jobs_queries.py). A large fold therefore vacuums the table at once, which also
        gives its emptied pages back."""
        folded = int(await self._pool.fetchval(_FOLD_COUNTS) or 0)
        if folded >= VACUUM_AFTER_FOLDING:
            await self._pool.execute("VACUUM (ANALYZE) jobs.job_count_changes")
        return folded

    async def attempts(self, root_job_id: str) -> list[Job]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM jobs.jobs WHERE root_job_id = $1 ORDER BY attempt, created_at",
            parse_job_id(root_job_id),
        )
        return [row_to_job(r) for r in rows]

    async def claim(self, worker_id: str, job_types: Sequence[str], limit: int) -> list[Job]:
        """Take up to `limit` available queued jobs of these types; concurrent claimers never collide."""
        rows = await self._pool.fetch(
            f"""
            UPDATE jobs.jobs j SET status = 'RUNNING', worker_id = $1, started_at = clock_timestamp(),
                   updated_at = clock_timestamp(), last_heartbeat_at = clock_timestamp(),
                   progress_updated_at = clock_timestamp()
            WHERE j.id IN (
                SELECT id FROM jobs.jobs
                WHERE status = 'QUEUED' AND job_type = ANY($2::text[]) AND available_at <= clock_timestamp()
                ORDER BY available_at, created_at
                LIMIT $3
                FOR UPDATE SKIP LOCKED
            )
            RETURNING {_returning("j")}
            """,
            worker_id,
            list(job_types),
            limit,
        )
        return [row_to_job(r) for r in rows]

    async def apply_progress(self, reports: Sequence[ProgressReport]) -> list[Job]:
        """Apply many progress reports in one statement; returns the jobs that changed."""
        if not reports:
            return []
        rows = await self._pool.fetch(
            _APPLY_PROGRESS,
            [parse_job_id(r.job_id) for r in reports],
            [r.counts.total for r in reports],
            [r.counts.processed for r in reports],
            [r.counts.succeeded for r in reports],
            [r.counts.failed for r in reports],
            [r.message for r in reports],
            [r.sequence for r in reports],
        )
        return [row_to_job(r) for r in rows]

    async def start_queued(self, starts: Sequence[tuple[str, int]], worker_id: str | None, now: datetime) -> list[Job]:
        """QUEUED → RUNNING on `worker_id` for these (job id, total; 0 keeps the stored total) in one
        statement; returns the jobs it started (the others were not queued, or do not exist)."""
        if not starts:
            return []
        ordered = sorted(starts)  # rows locked in one order by every such statement
        rows = await self._pool.fetch(
            _START_QUEUED,
            [parse_job_id(job_id) for job_id, _ in ordered],
            [total for _, total in ordered],
            worker_id,
            now,
        )
        return [row_to_job(r) for r in rows]

    async def complete_running(
        self, completions: Sequence[tuple[str, str]], worker_id: str, now: datetime
    ) -> list[Job]:
        """RUNNING → COMPLETED for these (job id, message; "" keeps the last progress message) of
        `worker_id` in one statement; returns the jobs it completed."""
        ordered = sorted(completions)  # rows locked in one order by every such statement
        rows = await self._pool.fetch(
            _COMPLETE_RUNNING,
            [parse_job_id(job_id) for job_id, _ in ordered],
            [message for _, message in ordered],
            now,
            worker_id,
        )
        return [row_to_job(r) for r in rows]

    async def heartbeat(self, job_ids: Sequence[str], worker_id: str) -> list[tuple[str, bool]]:
        """Refresh the heartbeat of running jobs; returns (id, cancel_requested) for each one found."""
        ids = [parse_job_id(j) for j in job_ids]
        if not ids:
            return []
        rows = await self._pool.fetch(
            "UPDATE jobs.jobs SET last_heartbeat_at = clock_timestamp() "
            "WHERE id = ANY($1::uuid[]) AND status = 'RUNNING' AND (worker_id = $2 OR worker_id IS NULL) "
            "RETURNING id, cancel_requested",
            ids,
            worker_id,
        )
        return [(str(r["id"]), bool(r["cancel_requested"])) for r in rows]

    async def owners(self, job_ids: Sequence[str]) -> dict[str, str | None]:
        """The worker running each of these jobs (None when none has started it)."""
        if not job_ids:
            return {}
        rows = await self._pool.fetch(
            "SELECT id, worker_id FROM jobs.jobs WHERE id = ANY($1::uuid[])", [parse_job_id(j) for j in job_ids]
        )
        return {str(r["id"]): r["worker_id"] for r in rows}

    async def stale_running(self, older_than: datetime, limit: int = 200) -> list[str]:
        """Running jobs whose last heartbeat is older than `older_than` (their worker is gone)."""
        rows = await self._pool.fetch(
            "SELECT id FROM jobs.jobs WHERE status = 'RUNNING' AND last_heartbeat_at < $1 "
            "ORDER BY last_heartbeat_at LIMIT $2",
            older_than,
            limit,
        )
        return [str(r["id"]) for r in rows]
