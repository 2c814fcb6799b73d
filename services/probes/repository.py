"""PostgreSQL storage of connection tests and communication errors (schema `probes`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.common.db import newest_first
from services.common.errors import InvalidArgumentError, NotFoundError
from services.probes import codec
from services.probes.domain import (
    BreakerState,
    Classification,
    CommunicationError,
    ConnectionTestResult,
    ErrorFilter,
    ErrorGroup,
    ErrorType,
    Page,
    ProbeKind,
    Severity,
    SpeedRating,
)
from services.probes.fingerprint import endpoint_key
from services.probes.metrics import record_errors
from services.probes.partitions import Connection, Partitions
from services.probes.probing.classify import GROUP, SEVERITY

_TEST_COLUMNS = (
    "id, service_id, service_slug, executed_at, success, degraded, probe_kind, endpoint, correlation_id, "
    "speed_rating, total_latency_ms, summary, error_type, error_group, severity, error_code, "
    "communication_error_id, metrics, phases, recommendations, evidence, circuit_breaker"
)
ERROR_COLUMNS = (
    "id, occurred_at, service_id, service_slug, error_type, error_group, severity, error_code, message, "
    "correlation_id, connection_test_id, correlated_job_id, recommendations, details, tenant_id"
)


def parse_id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgumentError(f"{what} {value[:60]!r} is not a valid UUID") from None


async def insert_errors(conn: Connection, errors: list[CommunicationError], partitions: Partitions) -> None:
    """Store communication errors and count them per hour and fingerprint, in the caller's transaction."""
    if not errors:
        return
    await partitions.ensure(conn, "communication_errors", (e.timestamp for e in errors))
    await partitions.ensure(conn, "error_counts_hourly", (e.timestamp for e in errors))
    await conn.executemany(
        f"INSERT INTO probes.communication_errors ({ERROR_COLUMNS}) VALUES "
        "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
        [
            (
                uuid.UUID(e.id), e.timestamp, e.service_id, e.service_slug, e.classification.error_type.value,
                e.classification.group.value, e.classification.severity.value, e.classification.code,
                e.classification.message, uuid.UUID(e.details.correlation_id),
                uuid.UUID(e.connection_test_id) if e.connection_test_id else None,
                uuid.UUID(e.correlated_job_id) if e.correlated_job_id else None,
                e.recommendations, codec.details_to_json(e.details), e.tenant_id,
            )
            for e in errors
        ],
    )  # fmt: skip
    counts: dict[tuple[str, str, str, datetime], list[Any]] = {}
    for e in errors:
        hour = e.timestamp.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        key = (e.service_id, e.classification.error_type.value, endpoint_key(e.details.endpoint_url), hour)
        row = counts.get(key)
        if row is None:
            counts[key] = [e.service_slug, e.classification.group.value, 1, e.timestamp, e.timestamp]
        else:
            row[2] += 1
            row[3], row[4] = min(row[3], e.timestamp), max(row[4], e.timestamp)
    await conn.executemany(
        "INSERT INTO probes.error_counts_hourly AS c (service_id, error_type, endpoint_key, hour_start, service_slug, "
        "error_group, count, first_seen, last_seen) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) "
        "ON CONFLICT (service_id, error_type, endpoint_key, hour_start) DO UPDATE "
        "SET count = c.count + excluded.count, first_seen = least(c.first_seen, excluded.first_seen), "
        "last_seen = greatest(c.last_seen, excluded.last_seen)",
        [(*key, *row) for key, row in counts.items()],
    )


class PostgresProbeRepository:
    """Connection tests and communication errors in PostgreSQL (the agents' writes are in `agent/store.py`,
    the read side's in `insights/repository.py`)."""

    def __init__(self, pool: asyncpg.Pool, partitions: Partitions | None = None) -> None:
        self._pool = pool
        self._partitions = partitions or Partitions()

    async def save(self, result: ConnectionTestResult, error: CommunicationError | None) -> None:
        """Store a test and the communication error it recorded, in one transaction."""
        async with self._pool.acquire() as conn, conn.transaction():
            if error is not None:
                await insert_errors(conn, [error], self._partitions)
            await conn.execute(
                f"INSERT INTO probes.connection_tests ({_TEST_COLUMNS}) VALUES "
                "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)",
                uuid.UUID(result.id),
                result.service_id,
                result.service_slug,
                result.executed_at,
                result.success,
                result.degraded,
                result.kind.value,
                result.endpoint,
                uuid.UUID(result.correlation_id),
                result.speed_rating.value if result.speed_rating else None,
                result.metrics.total_latency_ms,
                result.summary,
                result.error.error_type.value if result.error else None,
                result.error.group.value if result.error else None,
                result.error.severity.value if result.error else None,
                result.error.code if result.error else None,
                uuid.UUID(result.communication_error_id) if result.communication_error_id else None,
                codec.metrics_to_json(result.metrics),
                codec.phases_to_json(result.phases),
                result.recommendations,
                codec.details_to_json(result.evidence),
                result.breaker.value if result.breaker else None,
            )
        if error is not None:
            record_errors([error])

    async def get_test(self, test_id: str) -> ConnectionTestResult:
        row = await self._pool.fetchrow(
            f"SELECT {_TEST_COLUMNS} FROM probes.connection_tests WHERE id = $1", parse_id(test_id, "test id")
        )
        if row is None:
            raise NotFoundError(f"no connection test {test_id}")
        return _row_to_test(row)

    async def list_tests(self, service: str, page_size: int, cursor: str | None) -> Page[ConnectionTestResult]:
        params: list[Any] = []
        where = "true"
        if service:
            params.append(service)
            where = "(service_id = $1 OR service_slug = $1)"
        page = await newest_first(
            self._pool, columns=_TEST_COLUMNS, table="probes.connection_tests", where=where, params=params,
            time_column="executed_at", page_size=page_size, cursor=cursor,
        )  # fmt: skip
        return Page([_row_to_test(r) for r in page.rows], page.next_cursor, page.total)

    async def breaker_state(self, service_id: str) -> BreakerState | None:
        """The periodic checks' breaker of a service, as its agent last stored it."""
        value = await self._pool.fetchval(
            "SELECT breaker_state FROM probes.service_latest WHERE service_id = $1", service_id
        )
        return BreakerState(value) if value else None

    async def save_errors(self, errors: list[CommunicationError]) -> set[str]:
        """Store communication errors that no connection test recorded (a job's failed calls); those whose id is
        stored already (a report resent after its answer was lost) are skipped. Returns the ids stored now."""
        async with self._pool.acquire() as conn, conn.transaction():
            # Reports of one worker arrive one after the other; the lock covers replicas answering a resend.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('probes.job_call_failures'))")
            known = await conn.fetch(
                "SELECT id FROM probes.communication_errors WHERE id = ANY($1::uuid[])",
                [uuid.UUID(e.id) for e in errors],
            )
            seen = {str(row["id"]) for row in known}
            new = [e for e in errors if e.id not in seen]
            await insert_errors(conn, new, self._partitions)
        record_errors(new)
        return {e.id for e in new}

    async def get_error(self, error_id: str, tenant_id: str = "") -> CommunicationError:
        row = await self._pool.fetchrow(
            f"SELECT {ERROR_COLUMNS} FROM probes.communication_errors WHERE id = $1"
            " AND ($2 = '' OR tenant_id IS NULL OR tenant_id = $2)",
            parse_id(error_id, "error id"),
            tenant_id,
        )
        if row is None:
            raise NotFoundError(f"no communication error {error_id}")
        return row_to_error(row)

    async def list_errors(self, flt: ErrorFilter, page_size: int, cursor: str | None) -> Page[CommunicationError]:
        where, params = error_where(flt)
        page = await newest_first(
            self._pool, columns=ERROR_COLUMNS, table="probes.communication_errors", where=where, params=params,
            time_column="occurred_at", page_size=page_size, cursor=cursor,
        )  # fmt: skip
        return Page([row_to_error(r) for r in page.rows], page.next_cursor, page.total)


def error_where(flt: ErrorFilter) -> tuple[str, list[Any]]:
    """The WHERE clause (and its parameters, $1...) of communication errors matching a filter."""
    params: list[Any] = []
    clauses: list[str] = []

    def add(clause: str, value: Any) -> None:
        params.append(value)
        clauses.append(clause.replace("$?", f"${len(params)}"))

    if flt.service:
        add("(service_id = $? OR service_slug = $?)", flt.service)
    if flt.types:
        add("error_type = ANY($?::text[])", [t.value for t in flt.types])
    if flt.groups:
        add("error_group = ANY($?::text[])", [g.value for g in flt.groups])
    if flt.severities:
        add("severity = ANY($?::text[])", [s.value for s in flt.severities])
    if flt.tenant_id:
        add("(tenant_id IS NULL OR tenant_id = $?)", flt.tenant_id)
    if flt.correlated_job_id:
        add("correlated_job_id = $?", parse_id(flt.correlated_job_id, "correlated_job_id"))
    if flt.since:
        add("occurred_at >= $?", flt.since)
    if flt.until:
        add("occurred_at < $?", flt.until)
    return " AND ".join(clauses) or "true", params


def classification_of(
    error_type: str, group: str | None, severity: str | None, code: str, message: str
) -> Classification:
    kind = ErrorType(error_type)
    return Classification(
        error_type=kind,
        group=ErrorGroup(group) if group else GROUP[kind],
        severity=Severity(severity) if severity else SEVERITY[kind],
        code=code,
        message=message,
        transient=False,
    )


def _row_to_test(row: asyncpg.Record) -> ConnectionTestResult:
    result = ConnectionTestResult(
        id=str(row["id"]),
        service_id=row["service_id"],
        service_slug=row["service_slug"],
        executed_at=row["executed_at"],
        success=row["success"],
        kind=ProbeKind(row["probe_kind"]),
        endpoint=row["endpoint"],
        correlation_id=str(row["correlation_id"]),
        metrics=codec.metrics_from_json(row["metrics"]),
        evidence=codec.details_from_json(row["evidence"]),
        phases=codec.phases_from_json(row["phases"]),
        speed_rating=SpeedRating(row["speed_rating"]) if row["speed_rating"] else None,
        recommendations=list(row["recommendations"]),
        degraded=row["degraded"],
        summary=row["summary"],
        communication_error_id=str(row["communication_error_id"]) if row["communication_error_id"] else None,
        breaker=BreakerState(row["circuit_breaker"]) if row["circuit_breaker"] else None,
    )
    if row["error_type"]:
        result.error = classification_of(
            row["error_type"], row["error_group"], row["severity"], row["error_code"] or "", row["summary"]
        )
    return result


def row_to_error(row: asyncpg.Record) -> CommunicationError:
    return CommunicationError(
        id=str(row["id"]),
        service_id=row["service_id"],
        service_slug=row["service_slug"],
        timestamp=row["occurred_at"],
        classification=classification_of(
            row["error_type"], row["error_group"], row["severity"], row["error_code"], row["message"]
        ),
        details=codec.details_from_json(row["details"]),
        connection_test_id=str(row["connection_test_id"]) if row["connection_test_id"] else None,
        correlated_job_id=str(row["correlated_job_id"]) if row["correlated_job_id"] else None,
        recommendations=list(row["recommendations"]),
        tenant_id=row["tenant_id"],
    )
