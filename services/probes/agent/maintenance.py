"""Keeps the time partitions of the probes schema: tomorrow's exist before it starts, old ones are dropped.

Runs in every probes process once at start and then hourly; the SQL functions take an advisory lock
per table, so replicas doing it at the same time do not collide. Retention is per table, from the
B2X_PROBES_*_RETENTION_DAYS settings; a month partition goes when all of its month is past retention.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import asyncpg

from services.common.logging import get_logger
from services.probes.partitions import STEP, Partitions

log = get_logger(__name__)

EVERY = 3600.0


class Maintenance:
    def __init__(self, pool: asyncpg.Pool, retention_days: Mapping[str, int], caches: list[Partitions]) -> None:
        unknown = set(retention_days) - set(STEP)
        if unknown:
            raise ValueError(f"no partitioned table {sorted(unknown)}")
        self._pool = pool
        self._retention = dict(retention_days)
        self._caches = caches

    async def once(self, now: datetime | None = None) -> list[str]:
        """Create today's and tomorrow's partitions, drop those past retention; returns the dropped ones."""
        now = now or datetime.now(UTC)
        dropped: list[str] = []
        async with self._pool.acquire() as conn:
            for table, step in STEP.items():
                for ahead in (timedelta(0), timedelta(days=1)):
                    await conn.execute("SELECT probes.ensure_partition($1, $2, $3)", table, now + ahead, step)
                if table in self._retention:
                    cutoff = now - timedelta(days=self._retention[table])
                    rows = await conn.fetch("SELECT probes.drop_partitions_before($1, $2) AS name", table, cutoff)
                    dropped += [r["name"] for r in rows]
        if dropped:
            for cache in self._caches:
                cache.forget()
            log.info("partitions past retention dropped", partitions=dropped)
        return dropped

    async def run(self) -> None:
        while True:
            try:
                await self.once()
            except Exception as error:
                log.warning("partition maintenance failed; will retry", error=str(error))
            await asyncio.sleep(EVERY)
