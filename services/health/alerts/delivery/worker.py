"""The delivery worker: one asyncio task per process that routes notices and flushes due groups, and one
sender per channel, so a channel that is down (timeouts, 500s) delays only its own notifications.

Two health replicas may run it side by side: the outbox hands each row to one of them (outbox.py).
`stop()` lets sends in flight finish before it returns, so a restart does not send a message twice; if a
process dies mid-send anyway, the lease runs out, another sender tries again with the same idempotency
key (Message-ID, `Idempotency-Key`), and receivers can tell the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from services.common.logging import get_logger
from services.common.tasks import stop_tasks
from services.health.alerts.delivery.domain import Channel, DeliveryError
from services.health.alerts.delivery.outbox import Claimed, Outbox
from services.health.metrics import NOTIFICATIONS_FAILED, NOTIFICATIONS_SENT

log = get_logger(__name__)

_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@dataclass(frozen=True)
class WorkerOptions:
    worker_id: str
    poll_seconds: float = 1.0
    retry_initial: float = 5.0
    retry_max: float = 600.0
    in_flight_per_channel: int = 4
    stop_grace_seconds: float = 30.0
    keep_days: int = 400


def backoff(attempt: int, initial: float, maximum: float) -> float:
    """Seconds before attempt `attempt + 1`: doubled each time, capped, with ±20 % jitter so replicas and
    channels do not retry in step."""
    base = min(maximum, initial * 2 ** max(0, attempt - 1))
    return float(base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not security


class DeliveryWorker:
    """Moves notices through the outbox to the channels until stopped."""

    def __init__(self, outbox: Outbox, channels: Mapping[str, Channel], options: WorkerOptions) -> None:
        self._outbox = outbox
        self._channels = channels
        self._options = options
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._stopping.clear()
        self._tasks = [asyncio.create_task(self._pipeline(), name="delivery-pipeline")]
        self._tasks += [
            asyncio.create_task(self._sender(channel), name=f"delivery-{name}")
            for name, channel in self._channels.items()
        ]

    async def stop(self) -> None:
        """Take nothing new; let what is being sent finish (up to the grace), then close the channels."""
        self._stopping.set()
        self._wake.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=self._options.stop_grace_seconds)
            await stop_tasks(pending)
        self._tasks = []
        for channel in self._channels.values():
            await channel.aclose()

    async def _nap(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def _pipeline(self) -> None:
        last_prune = 0.0
        while not self._stopping.is_set():
            busy = False
            try:
                busy = await self._outbox.route_pending() > 0
                if await self._outbox.flush_due() > 0:
                    self._wake.set()
                    busy = True
                if time.monotonic() - last_prune > 3600:
                    await self._outbox.prune(self._options.keep_days)
                    last_prune = time.monotonic()
            except _DB_ERRORS as error:
                log.warning("notification routing failed; retrying", error=str(error))
            if not busy:
                await self._nap(self._options.poll_seconds)

    async def _sender(self, channel: Channel) -> None:
        options = self._options
        lease = channel.lease_seconds
        while not self._stopping.is_set():
            try:
                batch = await self._outbox.claim(channel.name, options.worker_id, options.in_flight_per_channel, lease)
            except _DB_ERRORS as error:
                log.warning("claiming notifications failed; retrying", channel=channel.name, error=str(error))
                batch = []
            if not batch:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(options.poll_seconds):
                        await self._wake.wait()
                continue
            # Shielded: a stop (or a cancelled task) never abandons a message half-recorded.
            await asyncio.shield(asyncio.gather(*(self._deliver(channel, claimed) for claimed in batch)))

    async def _deliver(self, channel: Channel, claimed: Claimed) -> None:
        started = time.monotonic()
        error: str | None = None
        try:
            detail = await channel.send(claimed.message)
        except DeliveryError as failure:
            error = failure.detail
        except Exception as failure:  # a bug in one channel must not stop the others
            error = f"{type(failure).__name__}: {failure}"
            log.exception("notification channel crashed", channel=channel.name)
        duration_ms = (time.monotonic() - started) * 1000
        retry_in = backoff(claimed.attempt, self._options.retry_initial, self._options.retry_max)
        for pause in (0.5, 1, 2, 4, 8):  # the send happened: its record must not be lost to a short DB blip
            try:
                await self._outbox.settle(
                    claimed, self._options.worker_id, error=error, duration_ms=duration_ms, retry_in=retry_in
                )
                break
            except _DB_ERRORS as db_error:
                log.warning("recording a notification attempt failed", error=str(db_error))
                await asyncio.sleep(pause)
        if error is None:
            NOTIFICATIONS_SENT.labels(channel.name).inc()
            log.info("notification sent", channel=channel.name, key=claimed.message.idempotency_key,
                     alerts=len(claimed.message.alerts), attempt=claimed.attempt, detail=detail)  # fmt: skip
        else:
            NOTIFICATIONS_FAILED.labels(channel.name).inc()
            log.warning("notification failed; will retry", channel=channel.name, attempt=claimed.attempt,
                        error=error, retry_in_seconds=round(retry_in, 1))  # fmt: skip
