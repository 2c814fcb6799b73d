"""Domain metrics of the health service (served on B2X_HEALTH_METRICS_PORT).

- `HEALTH_SNAPSHOT` reads the registry's aggregated view every `B2X_METRICS_SNAPSHOT_SECONDS`: one
  series per connected service and state (`b2x_service_status`, 1 for the current state), 7-day uptime
  and 24-hour average latency, and the check-states stream's backlog (entries the "health" consumer
  group has not read or not acknowledged yet; Redis `XINFO GROUPS`). Every replica reads the same
  rows: aggregate with `max`.
- The alerting pipeline (services/health/alerts/) updates `ALERTS_FIRING` (the number of alerts
  firing or acknowledged per rule and severity, read from the alerts table every few seconds by each
  replica: aggregate with `max`) and the notification
  counters (`NOTIFICATIONS_SENT` once per delivered notification, `NOTIFICATIONS_FAILED` once per failed
  attempt). They are defined here so that the health process exposes them and the dashboards and rules
  in deploy/ can name them before the first alert fires. Their labels are rule names, the four
  severities and channel names from the declarative file: all bounded by configuration.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from services.common.metrics import GaugeSpec, Samples, Snapshot, one_hot

STATUSES = ("ONLINE", "DEGRADED", "OFFLINE", "UNKNOWN")
# On Redis < 7 (no `lag` in XINFO GROUPS) undelivered entries are counted by reading their ids, up to this many.
UNDELIVERED_CAP = 5000

ALERTS_FIRING = Gauge("b2x_alerts_firing", "Alerts firing now, by rule and severity", ["rule", "severity"])
NOTIFICATIONS_SENT = Counter("b2x_notifications_sent_total", "Notifications delivered, by channel", ["channel"])
NOTIFICATIONS_FAILED = Counter(
    "b2x_notifications_failed_total", "Notification attempts that failed (retried later), by channel", ["channel"]
)

HEALTH_SNAPSHOT = Snapshot(
    "health",
    [
        GaugeSpec(
            "b2x_service_status",
            "Aggregated status of each connected service: 1 for its current state, 0 for the others",
            ("service", "type", "status"),
        ),
        GaugeSpec("b2x_service_uptime_ratio", "Share of successful checks over the last 7 days (0-1)", ("service",)),
        GaugeSpec(
            "b2x_service_latency_average_seconds", "Average latency of successful checks over 24 hours", ("service",)
        ),
        GaugeSpec(
            "b2x_stream_backlog",
            "Entries of a Redis Stream its consumer group has not yet read or acknowledged",
            ("stream", "group"),
        ),
    ],
)

_SERVICES = """
SELECT slug, type, status, uptime_percent, average_latency_ms FROM health.services
 WHERE removed_at IS NULL AND enabled
"""


class HealthSnapshotReader:
    """Reads `HEALTH_SNAPSHOT`'s figures: the registry (one query) and each stream's group (XINFO GROUPS)."""

    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, streams: Mapping[str, str]) -> None:
        """`streams`: a short name (the `stream` label) → the Redis key of each stream to watch."""
        self._pool = pool
        self._redis = redis
        self._streams = streams

    async def __call__(self) -> Samples:
        rows = await self._pool.fetch(_SERVICES)
        status: list[tuple[tuple[str, ...], float]] = []
        uptime: list[tuple[tuple[str, ...], float]] = []
        latency: list[tuple[tuple[str, ...], float]] = []
        for row in rows:
            status += one_hot((row["slug"], row["type"].lower()), row["status"], STATUSES)
            if row["uptime_percent"] is not None:
                uptime.append(((row["slug"],), row["uptime_percent"] / 100))
            if row["average_latency_ms"] is not None:
                latency.append(((row["slug"],), row["average_latency_ms"] / 1000))
        return {
            "b2x_service_status": status,
            "b2x_service_uptime_ratio": uptime,
            "b2x_service_latency_average_seconds": latency,
            "b2x_stream_backlog": await self._backlog(),
        }

    async def _backlog(self) -> list[tuple[tuple[str, ...], float]]:
        """Entries not yet delivered to each stream's group (`lag`) plus delivered but unacknowledged ones."""
        found: list[tuple[tuple[str, ...], float]] = []
        for name, key in self._streams.items():
            try:
                groups = await self._redis.xinfo_groups(key)
                for group in groups:
                    group_name = _text(group["name"])
                    lag = group.get("lag")
                    if lag is None:  # Redis < 7 has no lag: count what follows the last delivered entry
                        lag = await self._undelivered(key, _text(group["last-delivered-id"]))
                    found.append(((name, group_name), float(group.get("pending") or 0) + float(lag)))
            except RedisError:
                continue  # no stream yet (nothing published) or Redis away: no figure rather than a wrong one
        return found

    async def _undelivered(self, key: str, last_delivered: str) -> int:
        entries = await self._redis.xrange(key, min=f"({last_delivered}", max="+", count=UNDELIVERED_CAP)
        return len(entries or [])


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
