"""Background duties of the jobs service: reap jobs of lost workers, keep log partitions in shape, fold
the jobs' count changes into the kept counts.

Several replicas may run these loops at once: reaping re-checks each job under its row lock, and
partition DDL tolerates a replica that got there first.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from services.common.logging import get_logger
from services.jobs.logs import LogStore
from services.jobs.repository import PostgresJobRepository
from services.jobs.service import JobsService

log = get_logger(__name__)
COUNTS_FOLD_SECONDS = 5.0  # how many count changes a status count sums beyond the kept counts


class Maintenance:
    def __init__(
        self,
        jobs: JobsService,
        repository: PostgresJobRepository,
        logs: LogStore,
        *,
        heartbeat_timeout: float,
        interval: float,
        retention_days: int,
    ) -> None:
        self._jobs = jobs
        self._repo = repository
        self._logs = logs
        self._timeout = heartbeat_timeout
        self._interval = interval
        self._retention_days = retention_days
        self._tasks: list[asyncio.Task[None]] = []

    async def reap_once(self) -> int:
        """Fail (or cancel) running jobs whose worker went silent; returns how many."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self._timeout)
        reaped = 0
        for job_id in await self._repo.stale_running(cutoff):
            if await self._jobs.reap(job_id, cutoff) is not None:
                reaped += 1
        return reaped

    async def fold_counts_once(self) -> int:
        """Fold the jobs' appended count changes into the kept counts (migration 006)."""
        return await self._repo.fold_counts()

    async def partitions_once(self) -> None:
        today = datetime.now(UTC).date()
        await self._logs.ensure_partitions(today)
        await self._logs.drop_expired(today, self._retention_days)

    async def _loop(self, name: str, every: float, work: object) -> None:
        while True:
            try:
                await work()  # type: ignore[operator]
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("maintenance round failed", duty=name)
            await asyncio.sleep(every)

    async def start(self) -> None:
        await self.partitions_once()
        self._tasks = [
            asyncio.create_task(self._loop("reaper", self._interval, self.reap_once), name="jobs-reaper"),
            asyncio.create_task(self._loop("partitions", 3600, self.partitions_once), name="jobs-partitions"),
            asyncio.create_task(self._loop("counts", COUNTS_FOLD_SECONDS, self.fold_counts_once), name="jobs-counts"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
