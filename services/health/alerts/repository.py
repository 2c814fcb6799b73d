"""PostgreSQL storage of the alert lifecycle (schema `health`, migration 003_alerts.sql).

Writes go through `transaction()`: the writer locks the alert it changes (`FOR UPDATE`, or the
fingerprint's unique index for a new one), and exposes the transaction's connection so the
notification sink stores its notices in the same transaction.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.common.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from services.health.alerts.domain import Alert, AlertFilter, AlertPage, Episode, Matcher, MatchOp, Silence
from services.health.alerts.notice import AlertState, Severity
from services.health.alerts.rules import ServiceStatusSeen
from services.health.domain import Thresholds

Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record] | asyncpg.Connection[asyncpg.Record]"

_EPISODE = (
    "e.episode, e.state, e.severity, e.summary, e.description, e.occurrences, e.started_at, e.last_fired_at, "
    "e.changed_at, e.acknowledged_at, e.acknowledged_by, e.ack_comment, e.resolved_at, e.resolved_by, "
    "e.resolve_comment, e.silenced_by, e.annotations"
)
_ALERT = (
    f"SELECT a.id, a.fingerprint, a.rule, a.labels, a.created_at, {_EPISODE} "
    "FROM health.alerts a JOIN health.alert_episodes e ON e.alert_id = a.id AND e.episode = a.episode"
)


def _episode(row: asyncpg.Record) -> Episode:
    return Episode(
        number=row["episode"],
        state=AlertState(row["state"]),
        severity=Severity(row["severity"]),
        summary=row["summary"],
        description=row["description"],
        occurrences=row["occurrences"],
        started_at=row["started_at"],
        last_fired_at=row["last_fired_at"],
        changed_at=row["changed_at"],
        acknowledged_at=row["acknowledged_at"],
        acknowledged_by=row["acknowledged_by"],
        ack_comment=row["ack_comment"],
        resolved_at=row["resolved_at"],
        resolved_by=row["resolved_by"],
        resolve_comment=row["resolve_comment"],
        silenced_by=str(row["silenced_by"]) if row["silenced_by"] else None,
        annotations=dict(row["annotations"] or {}),
    )


def _alert(row: asyncpg.Record) -> Alert:
    return Alert(
        id=str(row["id"]),
        fingerprint=row["fingerprint"],
        rule=row["rule"],
        labels=dict(row["labels"]),
        created_at=row["created_at"],
        current=_episode(row),
    )


def _silence(row: asyncpg.Record) -> Silence:
    matchers = tuple(Matcher(m["name"], MatchOp(m["op"]), m["value"]) for m in row["matchers"])
    return Silence(
        id=str(row["id"]),
        matchers=matchers,
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        created_by=row["created_by"],
        comment=row["comment"],
        created_at=row["created_at"],
        tenant=row["tenant_id"],
        expired_by=row["expired_by"],
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _uuid(value: str, what: str = "alert") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFoundError(f"{what} {value} not found") from None


def encode_cursor(changed_at: datetime, alert_id: str) -> str:
    return base64.urlsafe_b64encode(f"{changed_at.isoformat()}|{alert_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, _, alert_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), uuid.UUID(alert_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgumentError("after: the page token is malformed; start again without one") from None


class PostgresAlertWriter:
    """The writes of one transaction."""

    def __init__(self, conn: Conn) -> None:
        self.connection = conn

    async def by_fingerprint(self, fingerprint: str) -> Alert | None:
        row = await self.connection.fetchrow(f"{_ALERT} WHERE a.fingerprint = $1 FOR UPDATE OF a", fingerprint)
        return _alert(row) if row else None

    async def by_id(self, alert_id: str) -> Alert:
        row = await self.connection.fetchrow(f"{_ALERT} WHERE a.id = $1 FOR UPDATE OF a", _uuid(alert_id))
        if row is None:
            raise NotFoundError(f"alert {alert_id} not found")
        return _alert(row)

    async def save(self, alert: Alert) -> None:
        """Insert or update the alert and its current episode."""
        labels = dict(alert.labels)
        try:
            await self._save_alert(alert, labels)
        except asyncpg.UniqueViolationError:
            raise AlreadyExistsError(f"alert {alert.fingerprint} was created by another writer") from None
        await self._save_episode(alert)

    async def _save_alert(self, alert: Alert, labels: dict[str, str]) -> None:
        await self.connection.execute(
            """INSERT INTO health.alerts (id, fingerprint, rule, labels, tenant_id, service, episode, created_at)
               VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)
               ON CONFLICT (id) DO UPDATE SET labels = EXCLUDED.labels, episode = EXCLUDED.episode""",
            uuid.UUID(alert.id), alert.fingerprint, alert.rule, labels,
            labels.get("tenant", ""), labels.get("service", ""), alert.current.number, alert.created_at,
        )  # fmt: skip

    async def _save_episode(self, alert: Alert) -> None:
        e = alert.current
        await self.connection.execute(
            """INSERT INTO health.alert_episodes (alert_id, episode, state, severity, summary, description,
                   occurrences, started_at, last_fired_at, changed_at, acknowledged_at, acknowledged_by, ack_comment,
                   resolved_at, resolved_by, resolve_comment, silenced_by, annotations)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18::jsonb)
               ON CONFLICT (alert_id, episode) DO UPDATE SET state = EXCLUDED.state, severity = EXCLUDED.severity,
                   summary = EXCLUDED.summary, description = EXCLUDED.description,
                   occurrences = EXCLUDED.occurrences, last_fired_at = EXCLUDED.last_fired_at,
                   changed_at = EXCLUDED.changed_at, acknowledged_at = EXCLUDED.acknowledged_at,
                   acknowledged_by = EXCLUDED.acknowledged_by, ack_comment = EXCLUDED.ack_comment,
                   resolved_at = EXCLUDED.resolved_at, resolved_by = EXCLUDED.resolved_by,
                   resolve_comment = EXCLUDED.resolve_comment, silenced_by = EXCLUDED.silenced_by,
                   annotations = EXCLUDED.annotations""",
            uuid.UUID(alert.id), e.number, e.state.value, e.severity.value, e.summary, e.description, e.occurrences,
            e.started_at, e.last_fired_at, e.changed_at, e.acknowledged_at, e.acknowledged_by, e.ack_comment,
            e.resolved_at, e.resolved_by, e.resolve_comment, uuid.UUID(e.silenced_by) if e.silenced_by else None,
            dict(e.annotations),
        )  # fmt: skip

    async def active_silences(self, now: datetime) -> list[Silence]:
        rows = await self.connection.fetch(
            "SELECT * FROM health.silences WHERE starts_at <= $1 AND ends_at > $1 ORDER BY created_at", now
        )
        return [_silence(r) for r in rows]


class PostgresAlertRepository:
    """Reads and writes of the alert lifecycle."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresAlertWriter]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield PostgresAlertWriter(conn)

    # -- alerts ------------------------------------------------------------------------------------

    async def resolve_id(self, ref: str) -> str:
        """A full id, or the one alert whose id starts with `ref` (the CLI's short ids)."""
        text = ref.strip().lower()
        if not text or len(text) > 36 or any(c not in "0123456789abcdef-" for c in text):
            raise NotFoundError(f"alert {ref} not found")
        if len(text) == 36:
            return str(_uuid(text))
        rows = await self._pool.fetch(
            "SELECT id FROM health.alerts WHERE id::text LIKE $1 || '%' ORDER BY id LIMIT 2", text
        )
        if not rows:
            raise NotFoundError(f"alert {ref} not found")
        if len(rows) > 1:
            raise InvalidArgumentError(f"id: {ref!r} matches more than one alert; give more of the id")
        return str(rows[0]["id"])

    async def get(self, alert_id: str) -> Alert:
        row = await self._pool.fetchrow(f"{_ALERT} WHERE a.id = $1", _uuid(alert_id))
        if row is None:
            raise NotFoundError(f"alert {alert_id} not found")
        return _alert(row)

    async def episodes(self, alert_id: str) -> list[Episode]:
        rows = await self._pool.fetch(
            f"SELECT {_EPISODE} FROM health.alert_episodes e WHERE e.alert_id = $1 ORDER BY e.episode DESC",
            _uuid(alert_id),
        )
        return [_episode(r) for r in rows]

    async def page(self, flt: AlertFilter, first: int, after: str | None) -> AlertPage:
        clauses, params = _where(flt)
        count_params = list(params)
        count_where = " AND ".join(clauses) or "TRUE"
        if after:
            at, last = decode_cursor(after)
            params.extend([at, last])
            clauses.append(f"(e.changed_at, a.id) < (${len(params) - 1}, ${len(params)})")
        where = " AND ".join(clauses) or "TRUE"
        params.append(first + 1)
        rows = await self._pool.fetch(
            f"{_ALERT} WHERE {where} ORDER BY e.changed_at DESC, a.id DESC LIMIT ${len(params)}", *params
        )
        total = await self._pool.fetchval(
            "SELECT count(*) FROM health.alerts a JOIN health.alert_episodes e "
            f"ON e.alert_id = a.id AND e.episode = a.episode WHERE {count_where}",
            *count_params,
        )
        alerts = [_alert(r) for r in rows[:first]]
        cursor = encode_cursor(alerts[-1].current.changed_at, alerts[-1].id) if len(rows) > first else None
        return AlertPage(alerts, cursor, int(total or 0))

    async def open_counts(self) -> dict[tuple[str, str], int]:
        """Alerts firing or acknowledged now, by rule and severity."""
        rows = await self._pool.fetch(
            "SELECT a.rule, e.severity, count(*) AS n FROM health.alerts a JOIN health.alert_episodes e "
            "ON e.alert_id = a.id AND e.episode = a.episode WHERE e.state <> 'resolved' GROUP BY 1, 2"
        )
        return {(r["rule"], r["severity"]): int(r["n"]) for r in rows}

    async def open_alerts(self, rule: str) -> list[Alert]:
        rows = await self._pool.fetch(f"{_ALERT} WHERE a.rule = $1 AND e.state <> 'resolved'", rule)
        return [_alert(r) for r in rows]

    async def purge(self, before: datetime, failures_before: datetime) -> int:
        """Drop episodes that ended before `before` (history is kept a year), alerts whose last episode
        did, and counted job failures older than `failures_before`."""
        async with self._pool.acquire() as conn, conn.transaction():
            result = await conn.execute(
                "DELETE FROM health.alert_episodes e USING health.alerts a WHERE e.alert_id = a.id "
                "AND e.episode < a.episode AND e.changed_at < $1",
                before,
            )
            await conn.execute(
                "DELETE FROM health.alerts a USING health.alert_episodes e WHERE e.alert_id = a.id "
                "AND e.episode = a.episode AND e.state = 'resolved' AND e.changed_at < $1",
                before,
            )
            await conn.execute("DELETE FROM health.job_failures WHERE failed_at < $1", failures_before)
        return int(result.split()[-1])

    # -- silences ----------------------------------------------------------------------------------

    async def insert_silence(self, silence: Silence) -> Silence:
        matchers = [{"name": m.name, "op": m.op.value, "value": m.value} for m in silence.matchers]
        await self._pool.execute(
            """INSERT INTO health.silences (id, matchers, starts_at, ends_at, created_by, comment, tenant_id,
                   created_at) VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, $8)""",
            uuid.UUID(silence.id), matchers, silence.starts_at, silence.ends_at, silence.created_by,
            silence.comment, silence.tenant, silence.created_at,
        )  # fmt: skip
        return silence

    async def silence(self, silence_id: str) -> Silence:
        row = await self._pool.fetchrow("SELECT * FROM health.silences WHERE id = $1", _uuid(silence_id, "silence"))
        if row is None:
            raise NotFoundError(f"silence {silence_id} not found")
        return _silence(row)

    async def expire_silence(self, silence_id: str, who: str, now: datetime) -> Silence:
        row = await self._pool.fetchrow(
            "UPDATE health.silences SET ends_at = GREATEST(starts_at, $2), expired_by = $3 "
            "WHERE id = $1 AND ends_at > $2 RETURNING *",
            _uuid(silence_id, "silence"), now, who,
        )  # fmt: skip
        if row is None:
            await self.silence(silence_id)  # NotFound when it does not exist
            raise InvalidArgumentError(f"id: silence {silence_id} has already expired")
        return _silence(row)

    async def silences(self, now: datetime, *, include_expired: bool, tenant: str | None) -> list[Silence]:
        clauses: list[str] = ["TRUE"]
        params: list[Any] = []
        if not include_expired:
            params.append(now)
            clauses.append(f"ends_at > ${len(params)}")
        if tenant is not None:
            params.append(tenant)
            clauses.append(f"tenant_id = ${len(params)}")
        rows = await self._pool.fetch(
            f"SELECT * FROM health.silences WHERE {' AND '.join(clauses)} ORDER BY created_at DESC LIMIT 500",
            *params,
        )
        return [_silence(r) for r in rows]

    # -- job outcomes ------------------------------------------------------------------------------

    async def record_failure(self, job_id: str, job_type: str, tenant: str, at: datetime, final: bool) -> bool:
        """Store a failed job once; False when it was already stored (a redelivered outcome)."""
        status = await self._pool.execute(
            "INSERT INTO health.job_failures (job_id, job_type, tenant_id, failed_at, final) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id) DO NOTHING",
            uuid.UUID(job_id), job_type, tenant, at, final,
        )  # fmt: skip
        return bool(status.endswith(" 1"))

    async def count_failures(self, job_type: str, tenant: str, since: datetime) -> int:
        value = await self._pool.fetchval(
            "SELECT count(*) FROM health.job_failures WHERE job_type = $1 AND tenant_id = $2 AND failed_at >= $3",
            job_type, tenant, since,
        )  # fmt: skip
        return int(value or 0)

    # -- services and thresholds -------------------------------------------------------------------

    async def slugs(self, service_ids: Sequence[str]) -> dict[str, str]:
        ids = []
        for value in service_ids:
            with contextlib.suppress(ValueError):
                ids.append(uuid.UUID(value))
        rows = await self._pool.fetch("SELECT id, slug FROM health.services WHERE id = ANY($1::uuid[])", ids)
        return {str(r["id"]): r["slug"] for r in rows}

    async def service_statuses(self, service_ids: Sequence[str]) -> list[ServiceStatusSeen]:
        """The aggregated status of each live service, and since when."""
        ids = [uuid.UUID(v) for v in service_ids if _is_uuid(v)]
        rows = await self._pool.fetch(
            "SELECT id, slug, status, status_changed_at FROM health.services "
            "WHERE id = ANY($1::uuid[]) AND removed_at IS NULL",
            ids,
        )
        return [ServiceStatusSeen(str(r["id"]), r["slug"], r["status"], r["status_changed_at"]) for r in rows]

    async def service_ref(self, ref: str) -> tuple[str, str, Thresholds]:
        """(id, slug, effective thresholds) of a live service named by slug or id."""
        params: list[Any] = [ref]
        where = "slug = $1"
        with contextlib.suppress(ValueError):
            params = [uuid.UUID(ref)]
            where = "id = $1"
        row = await self._pool.fetchrow(
            "SELECT id, slug, COALESCE((SELECT o.thresholds FROM health.threshold_overrides o "
            f"WHERE o.service_id = s.id), s.thresholds) AS thresholds FROM health.services s "
            f"WHERE {where} AND removed_at IS NULL",
            *params,
        )
        if row is None:
            raise NotFoundError(f"service {ref} not found")
        return str(row["id"]), row["slug"], _thresholds(row["thresholds"])

    async def set_thresholds(self, service_id: str, thresholds: Thresholds, who: str, now: datetime) -> None:
        await self._pool.execute(
            """INSERT INTO health.threshold_overrides (service_id, thresholds, updated_by, updated_at)
               VALUES ($1, $2::jsonb, $3, $4) ON CONFLICT (service_id) DO UPDATE SET
               thresholds = EXCLUDED.thresholds, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at""",
            uuid.UUID(service_id), dataclasses.asdict(thresholds), who, now,
        )  # fmt: skip


_THRESHOLD_FIELDS = frozenset(f.name for f in dataclasses.fields(Thresholds))


def _thresholds(raw: Mapping[str, Any] | None) -> Thresholds:
    data = dict(raw or {})
    return Thresholds(**{k: v for k, v in data.items() if k in _THRESHOLD_FIELDS})


def _where(flt: AlertFilter) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []

    def add(sql: str, value: Any) -> None:
        params.append(value)
        clauses.append(sql.replace("$?", f"${len(params)}"))

    if flt.states:
        add("e.state = ANY($?::text[])", [s.value for s in flt.states])
    if flt.severities:
        add("e.severity = ANY($?::text[])", [s.value for s in flt.severities])
    if flt.rules:
        add("a.rule = ANY($?::text[])", list(flt.rules))
    if flt.service:
        add("a.service = $?", flt.service)
    if flt.since is not None:
        add("e.changed_at >= $?", flt.since)
    if flt.tenant is not None:
        # A tenant's view: its own alerts and those that belong to no tenant.
        add("a.tenant_id IN ($?, '')", flt.tenant)
    return clauses, params
