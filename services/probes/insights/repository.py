"""PostgreSQL reads behind the insight RPCs: check states, rollups, resources, alerts, error counts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.common.db import newest_first
from services.probes.agent.records import CheckState
from services.probes.agent.resources.model import ResourceAlert, ResourceMetrics, ServiceResources
from services.probes.agent.resources.store import alert_from_row
from services.probes.domain import (
    BreakerState,
    CommunicationError,
    ErrorFilter,
    ErrorGroup,
    ErrorType,
    Page,
    SpeedRating,
    Thresholds,
)
from services.probes.insights.history import LatencyRow, ResourceRow
from services.probes.insights.patterns import HourlyCount
from services.probes.probing.classify import make
from services.probes.repository import ERROR_COLUMNS, error_where, parse_id, row_to_error

# A resource figure older than this many sampling intervals is shown as stale.
STALE_INTERVALS = 3


def _state(row: asyncpg.Record) -> CheckState:
    error = None
    if row["error_type"]:
        error = make(ErrorType(row["error_type"]), "", row["summary"])
    return CheckState(
        service_id=row["service_id"],
        service_slug=row["service_slug"],
        checked_at=row["checked_at"],
        success=row["success"],
        degraded=row["degraded"],
        summary=row["summary"],
        total_latency_ms=row["total_latency_ms"],
        consecutive_failures=row["consecutive_failures"],
        breaker=BreakerState(row["breaker_state"]),
        agent_id=row["agent_id"],
        interval_seconds=row["interval_seconds"],
        error=error,
        speed_rating=SpeedRating(row["speed_rating"]) if row["speed_rating"] else None,
        breaker_retry_at=row["breaker_retry_at"],
        last_success_at=row["last_success_at"],
        last_failure_at=row["last_failure_at"],
    )


def _resources(row: asyncpg.Record, alerts: list[ResourceAlert], now: datetime) -> ServiceResources:
    metrics = ResourceMetrics(
        timestamp=row["sampled_at"],
        cpu_percent=row["cpu_percent"],
        cpu_average=row["cpu_average"],
        cpu_peak=row["cpu_peak"],
        memory_used_bytes=row["memory_used_bytes"],
        memory_total_bytes=row["memory_total_bytes"],
        memory_percent=row["memory_percent"],
        memory_peak_bytes=row["memory_peak_bytes"],
        connection_pool_active=row["pool_active"],
        connection_pool_total=row["pool_total"],
        thread_count=row["threads"],
        queue_depth=row["queue_depth"],
        processing_rate_per_minute=row["processing_rate"],
    )
    age = (now - row["sampled_at"]).total_seconds()
    return ServiceResources(
        service_id=row["service_id"],
        service_slug=row["service_slug"],
        metrics=metrics,
        thresholds=Thresholds(**row["thresholds"]),
        source=row["source"],
        interval_seconds=row["interval_seconds"],
        sample_error=row["sample_error"],
        active_alerts=alerts,
        stale=age > STALE_INTERVALS * row["interval_seconds"],
    )


class InsightsRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def resolve(self, service: str) -> tuple[str, str] | None:
        """(id, slug) of a service the probes have data about, by id or slug."""
        row = await self._pool.fetchrow(
            "SELECT service_id, service_slug FROM probes.service_latest WHERE service_id = $1 OR service_slug = $1 "
            "UNION ALL SELECT service_id, service_slug FROM probes.resource_latest "
            "WHERE service_id = $1 OR service_slug = $1 "
            "UNION ALL (SELECT service_id, service_slug FROM probes.error_counts_hourly "
            "WHERE service_id = $1 OR service_slug = $1 ORDER BY hour_start DESC LIMIT 1) LIMIT 1",
            service,
        )
        return (row["service_id"], row["service_slug"]) if row else None

    async def check_states(self, refs: Sequence[str]) -> list[CheckState]:
        if refs:
            rows = await self._pool.fetch(
                "SELECT * FROM probes.service_latest WHERE service_id = ANY($1::text[]) "
                "OR service_slug = ANY($1::text[]) ORDER BY service_slug",
                list(refs),
            )
        else:
            rows = await self._pool.fetch("SELECT * FROM probes.service_latest ORDER BY service_slug")
        return [_state(r) for r in rows]

    async def latency_rows(self, service_id: str, unit: str, start: datetime, end: datetime) -> list[LatencyRow]:
        rows = await self._pool.fetch(
            "SELECT bucket_start, checks, failures, skipped, ok_ms_sum, ok_ms_max, histogram "
            f"FROM probes.latency_{unit} WHERE service_id = $1 "
            f"AND bucket_start >= date_trunc('{unit}', $2::timestamptz) AND bucket_start < $3 ORDER BY bucket_start",
            service_id,
            start,
            end,
        )
        return [
            LatencyRow(r["bucket_start"], r["checks"], r["failures"], r["skipped"], r["ok_ms_sum"], r["ok_ms_max"],
                       list(r["histogram"]))
            for r in rows
        ]  # fmt: skip

    async def resource_rows(self, service_id: str, unit: str, start: datetime, end: datetime) -> list[ResourceRow]:
        rows = await self._pool.fetch(
            "SELECT bucket_start, samples, cpu_sum, cpu_max, mem_pct_sum, mem_pct_max, mem_used_sum, mem_used_max, "
            "mem_total_max, pool_active_max, pool_total_max, threads_max, queue_sum, queue_max "
            f"FROM probes.resource_{unit} WHERE service_id = $1 "
            f"AND bucket_start >= date_trunc('{unit}', $2::timestamptz) AND bucket_start < $3 ORDER BY bucket_start",
            service_id,
            start,
            end,
        )
        return [ResourceRow(r["bucket_start"], *(r[k] for k in list(r.keys())[1:])) for r in rows]

    async def resources(self, refs: Sequence[str], now: datetime) -> list[ServiceResources]:
        where, params = "true", []
        if refs:
            where, params = "service_id = ANY($1::text[]) OR service_slug = ANY($1::text[])", [list(refs)]
        rows = await self._pool.fetch(
            f"SELECT * FROM probes.resource_latest WHERE {where} ORDER BY service_slug", *params
        )
        ids = [r["service_id"] for r in rows]
        alerts = await self._pool.fetch(
            "SELECT * FROM probes.resource_alerts WHERE service_id = ANY($1::text[]) AND resolved_at IS NULL "
            "ORDER BY triggered_at",
            ids,
        )
        by_service: dict[str, list[ResourceAlert]] = {}
        for a in alerts:
            by_service.setdefault(a["service_id"], []).append(alert_from_row(a))
        return [_resources(r, by_service.get(r["service_id"], []), now) for r in rows]

    async def alerts(
        self,
        service: str,
        active_only: bool,
        since: datetime | None,
        until: datetime | None,
        size: int,
        cursor: str | None,
    ) -> Page[ResourceAlert]:
        clauses, params = ["true"], []

        def add(clause: str, value: Any) -> None:
            params.append(value)
            clauses.append(clause.replace("$?", f"${len(params)}"))

        if service:
            add("(service_id = $? OR service_slug = $?)", service)
        if active_only:
            clauses.append("resolved_at IS NULL")
        if since:
            add("triggered_at >= $?", since)
        if until:
            add("triggered_at < $?", until)
        page = await newest_first(
            self._pool, columns="*", table="probes.resource_alerts", where=" AND ".join(clauses), params=params,
            time_column="triggered_at", page_size=size, cursor=cursor,
        )  # fmt: skip
        return Page([alert_from_row(r) for r in page.rows], page.next_cursor, page.total)

    async def hourly_error_counts(self, service: str, since: datetime, until: datetime) -> list[HourlyCount]:
        params: list[Any] = [since, until]
        where = "hour_start >= date_trunc('hour', $1::timestamptz) AND hour_start < $2"
        if service:
            params.append(service)
            where += " AND (service_id = $3 OR service_slug = $3)"
        rows = await self._pool.fetch(
            "SELECT service_id, service_slug, error_type, error_group, endpoint_key, hour_start, count, first_seen, "
            f"last_seen FROM probes.error_counts_hourly WHERE {where}",
            *params,
        )
        return [
            HourlyCount(r["service_id"], r["service_slug"], ErrorType(r["error_type"]), ErrorGroup(r["error_group"]),
                        r["endpoint_key"], r["hour_start"], r["count"], r["first_seen"], r["last_seen"])
            for r in rows
        ]  # fmt: skip

    async def errors_for_export(
        self, ids: Sequence[str], flt: ErrorFilter, limit: int
    ) -> tuple[list[CommunicationError], bool]:
        """The errors named by id (in the order given), or the newest `limit` matching the filter."""
        if ids:
            parsed = [parse_id(i, "error id") for i in ids]
            rows = await self._pool.fetch(
                f"SELECT {ERROR_COLUMNS} FROM probes.communication_errors WHERE id = ANY($1::uuid[])"
                " AND ($2 = '' OR tenant_id IS NULL OR tenant_id = $2)",
                parsed,
                flt.tenant_id,
            )
            by_id = {r["id"]: r for r in rows}
            return [row_to_error(by_id[i]) for i in parsed if i in by_id], False
        where, params = error_where(flt)
        params.append(limit + 1)
        rows = await self._pool.fetch(
            f"SELECT {ERROR_COLUMNS} FROM probes.communication_errors WHERE {where} "
            f"ORDER BY occurred_at DESC, id DESC LIMIT ${len(params)}",
            *params,
        )
        return [row_to_error(r) for r in rows[:limit]], len(rows) > limit


def missing_ids(ids: Sequence[str], found: Sequence[CommunicationError]) -> list[str]:
    have = {uuid.UUID(e.id) for e in found}
    return [i for i in ids if uuid.UUID(i) not in have]
