"""Time partitions of the probes schema: which table is cut by day or month, created on the way in.

Writers call `Partitions.ensure` with the timestamps they are about to insert; it creates each missing
partition once per process (`probes.ensure_partition` is idempotent and serialised by an advisory
lock, so replicas racing on a new day are fine). The maintenance loop drops what is past retention.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import asyncpg

Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

STEP: dict[str, str] = {
    "communication_errors": "month",
    "error_counts_hourly": "month",
    "probe_results": "day",
    "latency_minute": "day",
    "latency_hour": "month",
    "resource_samples": "day",
    "resource_minute": "day",
    "resource_hour": "month",
}


def period_key(at: datetime, step: str) -> str:
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%d") if step == "day" else at.strftime("%Y-%m")


class Partitions:
    """Remembers which partitions exist so each is created at most once per process."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()

    async def ensure(self, conn: Connection, table: str, times: Iterable[datetime]) -> None:
        step = STEP[table]
        missing: dict[str, datetime] = {}
        for at in times:
            key = period_key(at, step)
            if (table, key) not in self._seen:
                missing.setdefault(key, at)
        for key, at in missing.items():
            await conn.execute("SELECT probes.ensure_partition($1, $2, $3)", table, at, step)
            self._seen.add((table, key))

    def forget(self) -> None:
        """After partitions were dropped: create again on demand."""
        self._seen.clear()
