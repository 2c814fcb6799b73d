"""The outbox in PostgreSQL: notices in, groups flushed into notifications, notifications claimed and settled.

Every step is one short transaction and safe with several health replicas: routing runs under a
transaction-level advisory lock (one router at a time, notices applied in order), flushing and sending
take their rows with FOR UPDATE SKIP LOCKED, and a sender holds a notification by a lease that runs out
if its process dies, so another replica picks it up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.health.alerts.delivery.domain import Message, MessageAlert, Router, Timing, rfc3339, timing_for
from services.health.alerts.notice import AlertNotice, NotificationAttempt
from services.health.registry.config import NotificationsModel

Connection = asyncpg.Connection | PoolConnectionProxy
_ROUTE_LOCK = 0x62327864_6C76  # "b2xdlv": one router at a time across replicas

_INSERT_NOTICE = """
INSERT INTO health.notification_notices (alert_id, fingerprint, episode, state, severity, summary, description,
    labels, annotations, started_at, changed_at, resolved_at, occurrences, acknowledged_by, comment, silenced_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9::text::jsonb, $10, $11, $12, $13, $14, $15, $16)
"""

_UPSERT_GROUP = """
INSERT INTO health.notification_groups AS g (route, channel, group_key, group_labels, next_flush_at)
VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() + make_interval(secs => $6) END)
ON CONFLICT (route, channel, group_key) DO UPDATE SET next_flush_at = CASE
    WHEN NOT $5 THEN g.next_flush_at
    WHEN g.last_sent_at IS NULL THEN COALESCE(g.next_flush_at, now() + make_interval(secs => $6))
    ELSE LEAST(COALESCE(g.next_flush_at, 'infinity'), GREATEST(now(), g.last_sent_at + make_interval(secs => $7)))
END
RETURNING id
"""

# A firing notice changes the group unless the channel was already told this very episode fires.
_UPSERT_MEMBER = """
INSERT INTO health.notification_group_alerts AS m (group_id, fingerprint, notice_id, changed)
VALUES ($1, $2, $3, $4 IN ('firing', 'resolved'))
ON CONFLICT (group_id, fingerprint) DO UPDATE SET
    notice_id = EXCLUDED.notice_id,
    told = m.told AND (SELECT episode FROM health.notification_notices WHERE id = m.notice_id) = $5,
    changed = m.changed OR $4 = 'resolved' OR ($4 = 'firing' AND NOT (m.told
        AND (SELECT episode FROM health.notification_notices WHERE id = m.notice_id) = $5))
WHERE EXCLUDED.notice_id > m.notice_id
"""

_SILENCE_MEMBER = """
UPDATE health.notification_group_alerts m SET notice_id = $3
  FROM health.notification_groups g
 WHERE g.id = m.group_id AND g.route = $1 AND g.channel = $4 AND m.fingerprint = $2 AND m.notice_id < $3
"""

_INSERT_NOTIFICATION = """
INSERT INTO health.notifications (idempotency_key, channel, route, group_key, status, payload)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id
"""

_MEMBERS = """
SELECT m.fingerprint, m.changed, m.told, n.*
  FROM health.notification_group_alerts m JOIN health.notification_notices n ON n.id = m.notice_id
 WHERE m.group_id = $1
 ORDER BY n.started_at, n.id
"""

_CLAIM = """
UPDATE health.notifications SET lease_until = now() + make_interval(secs => $3), leased_by = $2
 WHERE id IN (SELECT id FROM health.notifications
               WHERE channel = $1 AND status = 'pending' AND next_attempt_at <= now()
                 AND (lease_until IS NULL OR lease_until < now())
               ORDER BY next_attempt_at, created_at LIMIT $4 FOR UPDATE SKIP LOCKED)
RETURNING id, idempotency_key, channel, group_key, payload, attempts
"""

_ATTEMPTS = """
SELECT a.channel, a.notification_id, a.attempt, a.status, a.error, a.duration_ms, a.at
  FROM health.notification_attempts a
  JOIN health.notification_alerts na ON na.notification_id = a.notification_id
 WHERE na.alert_id = $1
UNION ALL
SELECT n.channel, n.id, n.attempts + 1, 'pending', n.last_error, NULL, n.next_attempt_at
  FROM health.notifications n JOIN health.notification_alerts na ON na.notification_id = n.id
 WHERE na.alert_id = $1 AND n.status = 'pending'
ORDER BY 7, 3
"""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A notification a sender holds now."""

    id: Any
    attempt: int  # the number of this attempt, 1 for the first
    message: Message


def _notice_args(notice: AlertNotice) -> tuple[Any, ...]:
    return (
        notice.alert_id, notice.fingerprint, notice.episode, str(notice.state), str(notice.severity),
        notice.summary, notice.description, json.dumps(dict(notice.labels)), json.dumps(dict(notice.annotations)),
        notice.started_at,
        notice.changed_at, notice.resolved_at, notice.occurrences, notice.acknowledged_by, notice.comment,
        notice.silenced_by,
    )  # fmt: skip


async def insert_notices(connection: Connection, notices: Sequence[AlertNotice]) -> None:
    """The outbox write, on the caller's connection and so inside the caller's transaction.

    Labels travel as JSON text, so any asyncpg connection works, with or without our jsonb codec."""
    if notices:
        await connection.executemany(_INSERT_NOTICE, [_notice_args(n) for n in notices])


def _alert(row: asyncpg.Record) -> MessageAlert:
    resolved = row["state"] == "resolved"
    return MessageAlert(
        alert_id=row["alert_id"],
        fingerprint=row["fingerprint"],
        status="resolved" if resolved else "firing",
        state=row["state"],
        severity=row["severity"],
        summary=row["summary"],
        description=row["description"],
        labels=row["labels"],
        annotations=row["annotations"],
        started_at=rfc3339(row["started_at"]) or "",
        ended_at=rfc3339(row["resolved_at"] or row["changed_at"]) if resolved else None,
        occurrences=row["occurrences"],
        acknowledged_by=row["acknowledged_by"],
    )


class Outbox:
    """The delivery tables, as the worker and the sink use them."""

    def __init__(self, pool: asyncpg.Pool, config: NotificationsModel) -> None:
        self._pool = pool
        self._config = config
        self._router = Router(config)

    async def route_pending(self, limit: int = 500) -> int:
        """Put unrouted notices into their groups (or record them as suppressed); returns how many."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _ROUTE_LOCK):
                return 0  # another replica is routing; it takes these too
            rows = await conn.fetch(
                "SELECT * FROM health.notification_notices WHERE routed_at IS NULL ORDER BY id LIMIT $1", limit
            )
            for row in rows:
                await self._route_one(conn, row)
            if rows:
                await conn.execute(
                    "UPDATE health.notification_notices SET routed_at = now() WHERE id = ANY($1::bigint[])",
                    [row["id"] for row in rows],
                )
            return len(rows)

    async def _route_one(self, conn: Connection, row: asyncpg.Record) -> None:
        labels: dict[str, str] = row["labels"]
        for destination in self._router.destinations(labels):
            if row["silenced_by"]:
                await self._suppress(conn, row, destination.route, destination.channel)
                continue
            timing = destination.timing
            group_labels = {name: labels.get(name, "") for name in timing.group_by}
            group_key = json.dumps(group_labels, sort_keys=True, separators=(",", ":"))
            schedule = row["state"] in ("firing", "resolved")
            group_id = await conn.fetchval(
                _UPSERT_GROUP, destination.route, destination.channel, group_key, group_labels, schedule,
                timing.group_wait, timing.group_interval,
            )  # fmt: skip
            await conn.execute(_UPSERT_MEMBER, group_id, row["fingerprint"], row["id"], row["state"], row["episode"])

    async def _suppress(self, conn: Connection, row: asyncpg.Record, route: str, channel: str) -> None:
        """A silenced notice: recorded with a 'suppressed' attempt, sent nowhere, and no longer repeated."""
        message = Message(f"suppressed/{row['id']}/{channel}", channel, "", {}, [_alert(row)])
        notification_id = await conn.fetchval(
            _INSERT_NOTIFICATION, message.idempotency_key, channel, route, "", "suppressed", message.to_json()
        )
        if notification_id is None:
            return
        await conn.execute(
            "INSERT INTO health.notification_alerts (notification_id, alert_id) VALUES ($1, $2)",
            notification_id, row["alert_id"],
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO health.notification_attempts (notification_id, channel, attempt, status, error)"
            " VALUES ($1, $2, 0, 'suppressed', $3)",
            notification_id, channel, f"silenced by {row['silenced_by']}",
        )  # fmt: skip
        await conn.execute(_SILENCE_MEMBER, route, row["fingerprint"], row["id"], channel)

    async def flush_due(self, limit: int = 50) -> int:
        """Turn due groups into notifications (group_wait, group_interval, repeat_interval); returns how many."""
        made = 0
        async with self._pool.acquire() as conn, conn.transaction():
            groups = await conn.fetch(
                "SELECT * FROM health.notification_groups WHERE next_flush_at <= now()"
                " ORDER BY next_flush_at LIMIT $1 FOR UPDATE SKIP LOCKED",
                limit,
            )
            now = await conn.fetchval("SELECT now()")
            for group in groups:
                made += await self._flush_one(conn, group, now)
        return made

    async def _flush_one(self, conn: Connection, group: asyncpg.Record, now: datetime) -> int:
        if group["channel"] not in self._config.channels:
            # The channel was removed from the file: its groups go; what was already made for it stays pending
            # (visible in the alerts' history) until the channel comes back.
            await conn.execute("DELETE FROM health.notification_groups WHERE id = $1", group["id"])
            return 0
        timing: Timing = timing_for(self._config, group["route"], group["channel"])
        members = await conn.fetch(_MEMBERS, group["id"])
        live = [m for m in members if not m["silenced_by"]]
        active = [m for m in live if m["state"] != "resolved"]
        resolved_news = [m for m in live if m["state"] == "resolved" and m["changed"] and m["told"]]
        firing_news = [m for m in live if m["state"] == "firing" and m["changed"]]
        repeatable = [m for m in active if m["state"] == "firing" or timing.keepalive]
        last_sent = group["last_sent_at"]
        repeat_due = bool(
            repeatable and last_sent is not None and now >= last_sent + timedelta(seconds=timing.repeat_interval)
        )
        made = 0
        if firing_news or resolved_news or repeat_due:
            flush_number = group["flushes"] + 1
            message = Message(
                idempotency_key=f"g{group['id']}/{flush_number}",
                channel=group["channel"],
                group_key=f"{group['route']}:{group['channel']}:{group['group_key']}",
                group_labels=group["group_labels"],
                alerts=[_alert(m) for m in active + resolved_news],
                dashboard_url=self._config.dashboard_url,
                repeat=not (firing_news or resolved_news),
            )
            notification_id = await conn.fetchval(
                _INSERT_NOTIFICATION, message.idempotency_key, message.channel, group["route"], message.group_key,
                "pending", message.to_json(),
            )  # fmt: skip
            if notification_id is not None:
                await conn.executemany(
                    "INSERT INTO health.notification_alerts (notification_id, alert_id) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING",
                    [(notification_id, a.alert_id) for a in message.alerts],
                )
                made = 1
            await conn.execute(
                "UPDATE health.notification_group_alerts SET told = true WHERE group_id = $1"
                " AND fingerprint = ANY($2::text[])",
                group["id"], [m["fingerprint"] for m in active],
            )  # fmt: skip
            last_sent = now
        await conn.execute(
            "DELETE FROM health.notification_group_alerts m USING health.notification_notices n"
            " WHERE m.group_id = $1 AND n.id = m.notice_id AND n.state = 'resolved'",
            group["id"],
        )
        await conn.execute(
            "UPDATE health.notification_group_alerts SET changed = false WHERE group_id = $1", group["id"]
        )
        if not active:
            await conn.execute("DELETE FROM health.notification_groups WHERE id = $1", group["id"])
            return made
        next_flush = last_sent + timedelta(seconds=timing.repeat_interval) if repeatable and last_sent else None
        await conn.execute(
            "UPDATE health.notification_groups SET next_flush_at = $2, last_sent_at = $3,"
            " flushes = flushes + $4 WHERE id = $1",
            group["id"], next_flush, last_sent, made,
        )  # fmt: skip
        return made

    async def claim(self, channel: str, worker: str, limit: int, lease_seconds: float) -> list[Claimed]:
        rows = await self._pool.fetch(_CLAIM, channel, worker, lease_seconds, limit)
        return [
            Claimed(
                row["id"], row["attempts"] + 1,
                Message.from_row(row["idempotency_key"], row["channel"], row["group_key"], row["payload"]),
            )
            for row in rows
        ]  # fmt: skip

    async def settle(
        self, claimed: Claimed, worker: str, *, error: str | None, duration_ms: float, retry_in: float
    ) -> None:
        """Record the attempt; a failure is retried after `retry_in` seconds, never dropped."""
        async with self._pool.acquire() as conn, conn.transaction():
            if error is None:
                await conn.execute(
                    "UPDATE health.notifications SET status = 'sent', attempts = $2, sent_at = now(),"
                    " lease_until = NULL, last_error = NULL WHERE id = $1",
                    claimed.id, claimed.attempt,
                )  # fmt: skip
            else:
                await conn.execute(
                    "UPDATE health.notifications SET attempts = $2, last_error = $3, lease_until = NULL,"
                    " next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1",
                    claimed.id, claimed.attempt, error, retry_in,
                )  # fmt: skip
            await conn.execute(
                "INSERT INTO health.notification_attempts (notification_id, channel, attempt, status, error,"
                " duration_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                claimed.id, claimed.message.channel, claimed.attempt, "sent" if error is None else "failed", error,
                duration_ms,
            )  # fmt: skip

    async def attempts(self, alert_id: str) -> list[NotificationAttempt]:
        rows = await self._pool.fetch(_ATTEMPTS, alert_id)
        return [
            NotificationAttempt(
                channel=row["channel"], notification_id=str(row["notification_id"]), attempt=row["attempt"],
                status=row["status"], error=row["error"], duration_ms=row["duration_ms"], at=row["at"],
            )
            for row in rows
        ]  # fmt: skip

    async def prune(self, keep_days: int) -> None:
        """Delivery history older than `keep_days` (a year and a bit by default) goes; pending work stays."""
        async with self._pool.acquire() as conn, conn.transaction():
            cutoff = timedelta(days=keep_days)
            await conn.execute(
                "DELETE FROM health.notifications WHERE status <> 'pending' AND created_at < now() - $1::interval",
                cutoff,
            )
            await conn.execute(
                "DELETE FROM health.notification_notices n WHERE routed_at IS NOT NULL"
                " AND submitted_at < now() - $1::interval AND NOT EXISTS"
                " (SELECT 1 FROM health.notification_group_alerts m WHERE m.notice_id = n.id)",
                cutoff,
            )
