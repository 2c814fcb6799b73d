"""Background duties of the jobs service: reap jobs of lost workers, keep log partitions in shape, fold
the jobs' count changes into the kept counts.

Several replicas may run these loops at once: reaping re-checks each job under its row lock, and
partition DDL tolerates a replica that got there first.

Reaping judges silence, so it only counts silence the service could have heard (docs/reliability.md):
nothing is reaped until one heartbeat timeout after the server started listening, and again after
every loss of PostgreSQL (heartbeats sent meanwhile could not be stored). A worker whose heartbeats
resume within that grace keeps its job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from services.common.db import CONNECTION_ERRORS
from services.common.logging import get_logger
from services.common.tasks import stop_tasks
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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._jobs = jobs
        self._repo = repository
        self._logs = logs
        self._timeout = heartbeat_timeout
        self._interval = interval
        self._retention_days = retention_days
        self._monotonic = monotonic
        self._tasks: list[asyncio.Task[None]] = []
        # Since when (monotonic) the service could hear workers without a break; None: not now.
        self._hearing_since: float | None = None

    def hearing(self) -> None:
        """The server listens and PostgreSQL answers: the grace period starts now unless it already runs."""
        if self._hearing_since is None:
            self._hearing_since = self._monotonic()

    def database_lost(self) -> None:
        """PostgreSQL failed: heartbeats may be getting lost, so silence from now on proves nothing yet."""
        if self._hearing_since is not None:
            log.warning("reaping paused: PostgreSQL unreachable", grace_seconds=self._timeout)
        self._hearing_since = None

    def in_grace(self) -> bool:
        since = self._hearing_since
        return since is None or self._monotonic() - since < self._timeout

    async def reap_once(self) -> int:
        """Fail (or cancel) running jobs whose worker went silent; returns how many."""
        try:
            cutoff = datetime.now(UTC) - timedelta(seconds=self._timeout)
            stale = await self._repo.stale_running(cutoff)
        except CONNECTION_ERRORS:
            self.database_lost()
            raise
        self.hearing()
        if self.in_grace():
            return 0
        reaped = 0
        for job_id in stale:
            try:
                if await self._jobs.reap(job_id, cutoff) is not None:
                    reaped += 1
            except CONNECTION_ERRORS:
                self.database_lost()
                raise
        return reaped

    async def fold_counts_once(self) -> int:
        """Fold the jobs' appended count changes into the kept counts (migration 006)."""
        return await self._repo.fold_counts()

    async def partitions_once(self) -> None:
        today = datetime.now(UTC).date()
        await self._logs.ensure_partitions(today)
        await self._logs.drop_expired(today, self._retention_days)

    async def _loop(self, name: str, every: float, work: Callable[[], Awaitable[object]]) -> None:
        while True:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # One line per failed round: an outage repeats it every few seconds.
                log.warning("maintenance round failed", duty=name, error=str(error) or type(error).__name__)
            await asyncio.sleep(every)

    async def prepare(self) -> None:
        """Before the server listens: today's log partitions exist."""
        await self.partitions_once()

    async def start(self) -> None:
        """Once the server listens: the grace period starts, then the loops."""
        self.hearing()
        self._tasks = [
            asyncio.create_task(self._loop("reaper", self._interval, self.reap_once), name="jobs-reaper"),
            asyncio.create_task(self._loop("partitions", 3600, self.partitions_once), name="jobs-partitions"),
            asyncio.create_task(self._loop("counts", COUNTS_FOLD_SECONDS, self.fold_counts_once), name="jobs-counts"),
        ]

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
