"""PostgreSQL storage of the registry (schema `health`): every registry read and write of `health.services`.

The aggregation (`aggregation/store.py`) writes the status columns and the rollups; the overview
(`overview/repository.py`) reads them. Registry writes and aggregation writes lock rows in id order.

Reads go straight to the pool. Writes go through `transaction()`, which holds one advisory lock for
the whole registry: writes are rare (a config change, an operator's RegisterService), and one lock
makes the file sync and API writes of every replica simple to reason about. Removed services keep
their row (`removed_at`), so the history tables that reference them stay intact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.common.errors import AlreadyExistsError, NotFoundError
from services.health.domain import (
    ConnectedService,
    ProbeKind,
    ProbeOptions,
    ResourceSnapshot,
    ServiceDefinition,
    ServiceStatus,
    ServiceType,
    Source,
    Thresholds,
)
from services.health.status import DISABLED, NOT_CHECKED

# Thresholds set over the API (health.threshold_overrides, alerts/) win over the file's or registration's.
_THRESHOLDS = (
    "COALESCE((SELECT o.thresholds FROM health.threshold_overrides o WHERE o.service_id = health.services.id), "
    "health.services.thresholds) AS thresholds"
)
_COLUMNS = (
    "id, slug, name, type, endpoint, probe_kind, description, labels, check_interval_seconds, "
    f"{_THRESHOLDS}, "
    "probe_options, enabled, source, status, status_reason, last_checked, last_successful, average_latency_ms, "
    "uptime_percent, created_at, updated_at, removed_at, status_changed_at"
)
_RESOURCE_COLUMNS = (
    "sampled_at",
    "cpu_percent",
    "cpu_average",
    "cpu_peak",
    "memory_used_bytes",
    "memory_total_bytes",
    "memory_percent",
    "memory_peak_bytes",
    "connection_pool_active",
    "connection_pool_total",
    "thread_count",
    "queue_depth",
    "processing_rate_per_minute",
)
# Reads of the public view: the service with its latest resource sample, when there is one.
_READ = (
    f"SELECT {_COLUMNS}, {', '.join('r.' + c for c in _RESOURCE_COLUMNS)} "
    "FROM health.services LEFT JOIN health.resource_latest r ON r.service_id = health.services.id"
)
# pg_advisory_xact_lock key for registry writes; the migrations lock is 0x62327800.
_REGISTRY_LOCK_KEY = 0x62327801
_THRESHOLD_FIELDS = frozenset(f.name for f in dataclasses.fields(Thresholds))
_PROBE_FIELDS = frozenset(f.name for f in dataclasses.fields(ProbeOptions))


def _known(data: dict[str, Any] | None, names: frozenset[str]) -> dict[str, Any]:
    # Keys written by a newer version are ignored rather than crashing an older replica.
    return {k: v for k, v in (data or {}).items() if k in names}


def row_to_resources(row: asyncpg.Record) -> ResourceSnapshot | None:
    """The resource columns of a read joined with health.resource_latest; None when never sampled."""
    if row["sampled_at"] is None:
        return None
    return ResourceSnapshot(**{c: row[c] for c in _RESOURCE_COLUMNS})


def _row_to_service(row: asyncpg.Record) -> ConnectedService:
    probe = _known(row["probe_options"], _PROBE_FIELDS)
    probe["expected_statuses"] = tuple(probe.get("expected_statuses", ()))
    definition = ServiceDefinition(
        slug=row["slug"],
        name=row["name"],
        type=ServiceType(row["type"]),
        endpoint=row["endpoint"],
        probe_kind=ProbeKind(row["probe_kind"]),
        description=row["description"],
        labels=row["labels"] or {},
        check_interval_seconds=row["check_interval_seconds"],
        thresholds=Thresholds(**_known(row["thresholds"], _THRESHOLD_FIELDS)),
        enabled=row["enabled"],
        probe=ProbeOptions(**probe),
    )
    return ConnectedService(
        id=str(row["id"]),
        definition=definition,
        source=Source(row["source"]),
        status=ServiceStatus(row["status"]),
        status_reason=row["status_reason"],
        last_checked=row["last_checked"],
        last_successful=row["last_successful"],
        average_latency_ms=row["average_latency_ms"],
        uptime_percent=row["uptime_percent"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        removed_at=row["removed_at"],
        resources=row_to_resources(row) if "sampled_at" in row else None,
        status_changed_at=row["status_changed_at"],
    )


_DEFINITION_COLUMNS = (
    "slug",
    "name",
    "type",
    "endpoint",
    "probe_kind",
    "description",
    "labels",
    "check_interval_seconds",
    "thresholds",
    "probe_options",
    "enabled",
)


def _definition_values(d: ServiceDefinition) -> list[Any]:
    """Values for columns slug..enabled, in `_DEFINITION_COLUMNS` order."""
    probe = dataclasses.asdict(d.probe)
    probe["headers"] = dict(d.probe.headers)
    probe["expected_statuses"] = list(d.probe.expected_statuses)
    return [
        d.slug,
        d.name,
        d.type.value,
        d.endpoint,
        d.probe_kind.value,
        d.description,
        dict(d.labels),
        d.check_interval_seconds,
        dataclasses.asdict(d.thresholds),
        probe,
        d.enabled,
    ]


def _where_ref(service_id: str | None, slug: str | None) -> tuple[str, Any]:
    return ("id = $1", uuid.UUID(service_id)) if service_id else ("slug = $1", slug)


def _describe(service_id: str | None, slug: str | None) -> str:
    return f"service {slug!r}" if slug else f"service {service_id}"


def _live(row: asyncpg.Record | None, service_id: str | None, slug: str | None) -> ConnectedService:
    if row is None:
        raise NotFoundError(f"{_describe(service_id, slug)} not found")
    service = _row_to_service(row)
    if service.removed_at is not None:
        raise NotFoundError(f"{_describe(service_id, slug)} was removed on {service.removed_at:%Y-%m-%d %H:%M} UTC")
    return service


class PostgresRegistryWriter:
    """Writes inside one registry transaction (see `PostgresRegistry.transaction`)."""

    def __init__(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        self._conn = conn

    async def find(self, slug: str) -> ConnectedService | None:
        """The row with this slug, removed or not."""
        row = await self._conn.fetchrow(f"SELECT {_COLUMNS} FROM health.services WHERE slug = $1", slug)
        return _row_to_service(row) if row else None

    async def find_live(self, service_id: str | None, slug: str | None) -> ConnectedService:
        """A service that has not been removed, by id or slug; NotFoundError otherwise."""
        where, value = _where_ref(service_id, slug)
        row = await self._conn.fetchrow(f"SELECT {_COLUMNS} FROM health.services WHERE {where}", value)
        return _live(row, service_id, slug)

    async def all(self) -> list[ConnectedService]:
        """Every row, removed ones included."""
        rows = await self._conn.fetch(f"SELECT {_COLUMNS} FROM health.services ORDER BY slug")
        return [_row_to_service(r) for r in rows]

    async def insert(self, definition: ServiceDefinition, source: Source, now: datetime) -> ConnectedService:
        columns = ", ".join(_DEFINITION_COLUMNS)
        params = ", ".join(f"${i + 2}" for i in range(len(_DEFINITION_COLUMNS)))
        n = len(_DEFINITION_COLUMNS)
        try:
            row = await self._conn.fetchrow(
                f"INSERT INTO health.services (id, {columns}, source, created_at, updated_at, status_reason,"
                f" check_reason) VALUES ($1, {params}, ${n + 2}, ${n + 3}, ${n + 3}, ${n + 4}, ${n + 4})"
                f" RETURNING {_COLUMNS}",
                uuid.uuid4(),
                *_definition_values(definition),
                source.value,
                now,
                NOT_CHECKED if definition.enabled else DISABLED,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExistsError(f"service {definition.slug!r} already exists") from None
        assert row is not None
        return _row_to_service(row)

    async def replace(
        self,
        service_id: str,
        definition: ServiceDefinition,
        source: Source,
        now: datetime,
        *,
        reset_status: str | None = None,
    ) -> ConnectedService:
        """Write a new definition and owner; revives a removed row. `reset_status` sets UNKNOWN with that reason."""
        assignments = [f"{c} = ${i + 2}" for i, c in enumerate(_DEFINITION_COLUMNS)]
        n = len(_DEFINITION_COLUMNS)
        params: list[Any] = [uuid.UUID(service_id), *_definition_values(definition), source.value, now]
        assignments += [f"source = ${n + 2}", f"updated_at = ${n + 3}", "removed_at = NULL"]
        if reset_status is not None:
            params.append(reset_status)
            # The check verdict goes too, or the next resource sample would bring the old status back.
            assignments += [
                "status = 'UNKNOWN'",
                f"status_reason = ${len(params)}",
                "check_status = 'UNKNOWN'",
                f"check_reason = ${len(params)}",
                "breaker_open_since = NULL",
                "pressure = ''",
                f"status_changed_at = CASE WHEN status = 'UNKNOWN' THEN status_changed_at ELSE ${n + 3} END",
            ]
        row = await self._conn.fetchrow(
            f"UPDATE health.services SET {', '.join(assignments)} WHERE id = $1 RETURNING {_COLUMNS}", *params
        )
        if row is None:
            raise NotFoundError(f"service {service_id} not found")
        return _row_to_service(row)

    async def remove(self, service_id: str, now: datetime) -> ConnectedService:
        """Soft-delete: the row stays for history, hidden from reads."""
        row = await self._conn.fetchrow(
            f"UPDATE health.services SET removed_at = $2, updated_at = $2 WHERE id = $1 RETURNING {_COLUMNS}",
            uuid.UUID(service_id),
            now,
        )
        if row is None:
            raise NotFoundError(f"service {service_id} not found")
        return _row_to_service(row)


class PostgresRegistry:
    """Reads and writes health.services; translates asyncpg errors into domain errors."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresRegistryWriter]:
        """One transaction under the registry lock; commits on normal exit, rolls back on error."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _REGISTRY_LOCK_KEY)
            # Row locks in id order, the order the aggregation takes them in: the two never deadlock.
            await conn.execute("SELECT 1 FROM health.services ORDER BY id FOR UPDATE")
            yield PostgresRegistryWriter(conn)

    async def get(self, service_id: str | None, slug: str | None) -> ConnectedService:
        where, value = _where_ref(service_id, slug)
        row = await self._pool.fetchrow(f"{_READ} WHERE {where}", value)
        return _live(row, service_id, slug)

    async def list_live(
        self,
        statuses: Sequence[ServiceStatus] = (),
        types: Sequence[ServiceType] = (),
        *,
        enabled_only: bool = False,
    ) -> list[ConnectedService]:
        """Services not removed, by name; empty filters match everything."""
        clauses = ["removed_at IS NULL"]
        params: list[Any] = []
        if statuses:
            params.append([s.value for s in statuses])
            clauses.append(f"status = ANY(${len(params)}::text[])")
        if types:
            params.append([t.value for t in types])
            clauses.append(f"type = ANY(${len(params)}::text[])")
        if enabled_only:
            clauses.append("enabled")
        rows = await self._pool.fetch(
            f"{_READ} WHERE {' AND '.join(clauses)} ORDER BY lower(name), slug",
            *params,
        )
        return [_row_to_service(r) for r in rows]
