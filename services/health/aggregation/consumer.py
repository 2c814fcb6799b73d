"""Durable hand-offs read with a consumer group: the probes' check-states stream (and, with the same
machinery, the jobs' outcome stream read by the alert rules).

    {namespace}:probes:check-states   XADD by every probe agent, field `state` = ServiceCheckState
            │  group "health" (created at 0 with MKSTREAM: nothing written before the first start is lost)
            ▼
    replica A, replica B ...          each XREADGROUPs its share; XACK only after PostgreSQL committed

A replica first re-reads its own pending entries (id 0): what it had read but not acknowledged when
it stopped. Then it reads new entries (`>`), blocking up to `block_ms`. Every `claim_idle` seconds
it takes over (XAUTOCLAIM) entries pending that long with any other consumer, a replica that died,
so nothing waits for it to come back. Entries that cannot be decoded, or that the stream trimmed
before they were read, are acknowledged and counted, never retried forever.

Redis down: retried with backoff, said once in the logs, and said again when it is back. PostgreSQL
down: the batch stays pending and is re-read from the pending list after a backoff. Delivery is at
least once; the store counts each check once (health.check_receipts), so a redelivery is harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.events import check_states_stream
from services.common.logging import get_logger
from services.common.tasks import stop_tasks
from services.health.aggregation.feeds import UndecodableFeed, check_state_from_bytes
from services.health.status import CheckState

log = get_logger(__name__)

GROUP = "health"
CHECK_STATES_CONSUMED = Counter("b2x_health_check_states_total", "Check states consumed from the stream", ["outcome"])

_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError, asyncio.TimeoutError)
_MAX_BACKOFF = 30.0

T = TypeVar("T")


@dataclass(frozen=True)
class ConsumerConfig:
    namespace: str
    consumer: str
    batch: int = 500
    block_ms: int = 2000
    claim_idle_seconds: float = 60.0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode(
    entry_id: bytes | str, fields: dict[bytes, bytes] | None, field: bytes, parse: Callable[[bytes], T]
) -> tuple[str, T | None]:
    """An entry's id and payload; None for a trimmed or undecodable entry (acknowledged, not applied)."""
    payload = (fields or {}).get(field)
    if payload is None:
        CHECK_STATES_CONSUMED.labels("missing").inc()
        log.warning("stream entry gone before it was stored", entry=_text(entry_id))
        return _text(entry_id), None
    try:
        return _text(entry_id), parse(payload)
    except UndecodableFeed as error:
        CHECK_STATES_CONSUMED.labels("undecodable").inc()
        log.warning("stream entry ignored", entry=_text(entry_id), error=str(error))
        return _text(entry_id), None


class StreamConsumer(Generic[T]):
    """One replica's member of a consumer group of one stream; `apply` stores a batch or raises.

    Each entry's payload is its field `field`, parsed by `parse` (which raises UndecodableFeed).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        config: ConsumerConfig,
        apply: Callable[[Sequence[T]], Awaitable[object]],
        *,
        key: str,
        group: str,
        field: bytes,
        parse: Callable[[bytes], T],
        name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._config = config
        self._apply = apply
        self._clock = clock
        self.key = key
        self.group = group
        self.name = name
        self._field = field
        self._parse = parse
        self._task: asyncio.Task[None] | None = None
        self._pending_from: str | None = "0"  # re-read our own pending entries first
        self._claimed_at = -1e18
        self._redis_ok = True
        self.stored = 0

    # -- life ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"health-consumer-{self.group}")

    async def stop(self) -> None:
        """Stop reading; a batch being stored is abandoned unacknowledged and read again later."""
        await stop_tasks([self._task])
        self._task = None

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self.ensure_group()
                while True:
                    await self.step()
                    self._reconnected()
                    backoff = 0.5
            except asyncio.CancelledError:
                raise
            except _REDIS_DOWN as error:
                self._lost(error, backoff)
            except ResponseError as error:
                if "NOGROUP" in str(error):
                    # The stream or the group went away (Redis restarted without persistence): start over.
                    log.warning("consumer group missing; creating it again", stream=self.key)
                    self._pending_from = "0"
                    continue
                log.warning("stream refused a command; will retry", error=str(error), retry_in=backoff)
                self._pending_from = "0"
            except Exception as error:
                # PostgreSQL or a bug: the batch stays pending and is re-read after the backoff.
                log.warning("stream entries not stored yet; will retry", error=str(error), retry_in=backoff)
                self._pending_from = "0"
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _lost(self, error: BaseException, backoff: float) -> None:
        if self._redis_ok:
            self._redis_ok = False
            log.warning(
                f"{self.name} stream unreachable; retrying with backoff",
                stream=self.key,
                error=str(error) or type(error).__name__,
                retry_in=backoff,
            )
        self._pending_from = "0"

    def _reconnected(self) -> None:
        if not self._redis_ok:
            self._redis_ok = True
            log.info(f"{self.name} stream reachable again; resuming", stream=self.key)

    # -- one round ---------------------------------------------------------------------------------

    async def ensure_group(self) -> None:
        """Create the group at the start of the stream (and the stream) unless it exists."""
        try:
            await self._redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
            log.info("consumer group created", stream=self.key, group=self.group)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def step(self) -> int:
        """One read and store: own pending entries first, then entries claimed from dead consumers, then
        new ones. Returns how many entries were acknowledged."""
        if self._pending_from is not None:
            entries = await self._read(self._pending_from)
            if not entries:
                self._pending_from = None
                return 0
            self._pending_from = entries[-1][0]
            return await self._store(entries)
        if self._clock() - self._claimed_at >= self._config.claim_idle_seconds:
            self._claimed_at = self._clock()
            claimed = await self.claim()
            if claimed:
                return claimed
        return await self._store(await self._read(">"))

    async def _read(self, from_id: str) -> list[tuple[str, T | None]]:
        block = self._config.block_ms if from_id == ">" else None
        response: Any = await self._redis.xreadgroup(
            self.group, self._config.consumer, {self.key: from_id}, count=self._config.batch, block=block
        )
        if not response:
            return []
        _, raw_entries = response[0]
        return [_decode(entry_id, fields, self._field, self._parse) for entry_id, fields in raw_entries]

    async def claim(self) -> int:
        """Take over and store entries idle for `claim_idle_seconds` with other consumers; returns how many."""
        total = 0
        cursor = "0-0"
        idle_ms = int(self._config.claim_idle_seconds * 1000)
        while True:
            response: Any = await self._redis.xautoclaim(
                self.key, self.group, self._config.consumer, idle_ms, start_id=cursor, count=self._config.batch
            )
            cursor = _text(response[0])
            entries = [
                _decode(entry_id, fields, self._field, self._parse)
                for entry_id, fields in response[1]
                if entry_id is not None
            ]
            if entries:
                log.info("stream entries taken over from a stopped consumer", count=len(entries))
                total += await self._store(entries)
            if cursor == "0-0" or not entries:
                return total

    async def _store(self, entries: list[tuple[str, T | None]]) -> int:
        if not entries:
            return 0
        states = [state for _, state in entries if state is not None]
        if states:
            await self._apply(states)
            CHECK_STATES_CONSUMED.labels("stored").inc(len(states))
            self.stored += len(states)
        await self._redis.xack(self.key, self.group, *[entry_id for entry_id, _ in entries])
        return len(entries)


class CheckStateConsumer(StreamConsumer[CheckState]):
    """The member of the "health" group of the probes' check-states stream."""

    def __init__(
        self,
        redis: aioredis.Redis,
        config: ConsumerConfig,
        apply: Callable[[Sequence[CheckState]], Awaitable[object]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            redis,
            config,
            apply,
            key=check_states_stream(config.namespace),
            group=GROUP,
            field=b"state",
            parse=check_state_from_bytes,
            name="check-states",
            clock=clock,
        )
