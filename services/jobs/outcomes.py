"""The relay of the durable job-outcome feed: outbox rows → the `{namespace}:jobs:outcomes` Redis Stream.

    jobs.jobs  ── trigger, same transaction as the finishing status change ──►  jobs.outcome_outbox
    relay (every replica; rows locked with SKIP LOCKED)  ── XADD `outcome` = JobOutcome ──►  stream
                                                          ── DELETE, then COMMIT

A row leaves the outbox only in the transaction that appended it, so Redis being down delays outcomes
and never loses them; a crash between XADD and COMMIT appends a row twice, which the health service
absorbs (it stores each job's outcome once). This is a transport edge, so it is where protobuf is made.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from b2x.monitoring.v1 import job_outcomes_pb2, jobs_pb2
from prometheus_client import Counter

from services.common.events import job_outcomes_stream
from services.common.logging import get_logger
from services.common.protoconv import set_timestamp
from services.common.tasks import stop_tasks
from services.jobs.convert import ERROR_CLASS_TO_PROTO, STATUS_TO_PROTO
from services.jobs.domain import ErrorClass, JobStatus

log = get_logger(__name__)

OUTCOMES_RELAYED = Counter("b2x_jobs_outcomes_relayed_total", "Job outcomes appended to the outcome stream")
_MAX_BACKOFF = 30.0


def will_retry(row: asyncpg.Record) -> bool:
    """The jobs service queues an automatic retry for exactly these failures (RetryPolicy)."""
    return bool(
        row["status"] == JobStatus.FAILED.value
        and row["error_class"] == ErrorClass.TRANSIENT.value
        and row["attempt"] < row["max_attempts"]
    )


def outcome_to_proto(row: asyncpg.Record) -> job_outcomes_pb2.JobOutcome:
    error_class = ErrorClass(row["error_class"]) if row["error_class"] else None
    msg = job_outcomes_pb2.JobOutcome(
        job_id=str(row["job_id"]),
        job_type=row["job_type"],
        tenant_id=row["tenant_id"],
        status=STATUS_TO_PROTO[JobStatus(row["status"])],
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        error_class=ERROR_CLASS_TO_PROTO[error_class] if error_class else jobs_pb2.ERROR_CLASS_UNSPECIFIED,
        error_category=row["error_category"] or "",
        error_message=row["error_message"] or "",
        will_retry=will_retry(row),
    )
    set_timestamp(msg.finished_at, row["finished_at"])
    return msg


class OutcomeRelay:
    """Moves outbox rows to the stream, `batch` at a time, polling every `interval` seconds when idle."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        namespace: str,
        *,
        interval: float = 0.5,
        batch: int = 500,
        maxlen: int = 100_000,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self.key = job_outcomes_stream(namespace)
        self._interval = interval
        self._batch = batch
        self._maxlen = maxlen
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="jobs-outcome-relay")

    async def stop(self) -> None:
        await stop_tasks([self._task])
        self._task = None

    async def _run(self) -> None:
        backoff = self._interval
        healthy = True
        while True:
            try:
                moved = await self.relay_once()
                if not healthy:
                    log.info("job outcomes flow to the stream again", stream=self.key)
                healthy, backoff = True, self._interval
                if moved < self._batch:
                    await asyncio.sleep(self._interval)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if healthy:
                    log.warning("job outcomes not relayed yet; they wait in the outbox", error=str(error))
                healthy = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)

    async def relay_once(self) -> int:
        """Append up to `batch` outbox rows to the stream and delete them; returns how many."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows: list[Any] = await conn.fetch(
                "SELECT * FROM jobs.outcome_outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED", self._batch
            )
            if not rows:
                return 0
            async with self._redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    payload = outcome_to_proto(row).SerializeToString()
                    pipe.xadd(self.key, {"outcome": payload}, maxlen=self._maxlen, approximate=True)
                await pipe.execute()
            await conn.execute(
                "DELETE FROM jobs.outcome_outbox WHERE seq = ANY($1::bigint[])", [r["seq"] for r in rows]
            )
        OUTCOMES_RELAYED.inc(len(rows))
        return len(rows)
