"""Live events over Redis pub/sub: protobuf `Event` envelopes, one shared connection per process.

Publishers call `EventBus.publish(topic, event)`. A publish that fails because Redis is down is
logged and counted, never raised: PostgreSQL is the source of truth and the caller's state change
already landed there.

Subscribers call `EventBus.subscribe(topic, ...)` and iterate. All local subscribers share one
pub/sub connection read by one task; each has its own bounded queue, released when it closes (the
encode/broadcaster pattern). When events may have been missed (Redis went away, or the subscriber
fell behind and its queue overflowed) the subscriber receives a `Resync` marker: it should re-read
state from the owning service instead of trusting the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from b2x.monitoring.v1 import events_pb2
from prometheus_client import Counter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.errors import StartupError
from services.common.logging import get_logger
from services.common.tasks import stop_tasks

log = get_logger(__name__)

EVENTS_PUBLISHED = Counter("b2x_events_published_total", "Events published to Redis", ["topic"])
EVENTS_PUBLISH_FAILED = Counter("b2x_events_publish_failed_total", "Events that could not be published", ["topic"])
EVENTS_DROPPED = Counter("b2x_events_dropped_total", "Events dropped because a subscriber fell behind", ["topic"])
EVENTS_RECEIVED = Counter("b2x_events_received_total", "Events this process received from Redis", ["topic"])
EVENTS_DELIVERED = Counter(
    "b2x_events_delivered_total", "Events handed to local subscribers (fan-out: one per subscriber)", ["topic"]
)

# Starts a message that carries an `EventBatch` rather than one `Event` (no serialized Event starts with 0x00).
BATCH_MARK = b"\x00"


def _encode(events: Sequence[events_pb2.Event]) -> bytes:
    """One Redis message: a lone event as itself, several as an `EventBatch` behind BATCH_MARK."""
    if len(events) == 1:
        return events[0].SerializeToString()
    batch = events_pb2.EventBatch()
    batch.events.extend(events)
    return BATCH_MARK + batch.SerializeToString()


_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError, asyncio.TimeoutError)


class Topic(StrEnum):
    """Channels, one per SignalR hub event of the seeds plus the internal ones."""

    JOB_STATUS = "job-status"
    JOB_LOGS = "job-logs"
    HEALTH_STATUS = "health-status"
    ALERTS = "alerts"
    RESOURCE_METRICS = "resource-metrics"
    RESOURCE_ALERTS = "resource-alerts"
    CONNECTION_TESTS = "connection-tests"
    COMMUNICATION_ERRORS = "communication-errors"
    API_KEYS = "api-keys"  # revocations, between gateway replicas


def check_states_stream(namespace: str) -> str:
    """The Redis Stream of the durable probes → health hand-off (one `ServiceCheckState` per check)."""
    return f"{namespace}:probes:check-states"


def job_outcomes_stream(namespace: str) -> str:
    """The Redis Stream of the durable jobs → health hand-off (one `JobOutcome` per finished job)."""
    return f"{namespace}:jobs:outcomes"


@dataclass(frozen=True)
class Resync:
    """Events may have been missed since the last one delivered; re-read state."""

    reason: str


def describe_redis_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


async def connect_redis(url: str, *, timeout: float = 5.0, command_timeout: float = 2.0) -> aioredis.Redis:
    """A client whose server answered PING, or StartupError naming the address.

    Every command gives up after `command_timeout` (a frozen Redis answers nothing, forever), and a
    command that fails on a connection Redis dropped is retried once on a fresh one, so the first call
    after Redis returns does not fail for a dead pooled socket.
    """
    client: aioredis.Redis = aioredis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=command_timeout,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        retry_on_error=[RedisConnectionError],
    )
    try:
        await asyncio.wait_for(client.ping(), timeout)
    except (*_REDIS_DOWN, RedisError) as error:
        await client.aclose()
        reason = str(error) or type(error).__name__
        raise StartupError(f"cannot connect to Redis at {describe_redis_url(url)}: {reason}") from None
    return client


def new_event(source: str, *, tenant_id: str = "", correlation_id: str = "") -> events_pb2.Event:
    """An envelope with id and timestamp set; the caller fills one payload field."""
    event = events_pb2.Event(id=str(uuid.uuid4()), source=source, tenant_id=tenant_id, correlation_id=correlation_id)
    event.occurred_at.FromDatetime(datetime.now(UTC))
    return event


@dataclass(eq=False)
class Subscription:
    """One subscriber's view of the bus: an async iterator of events and resync markers."""

    bus: EventBus
    topics: frozenset[str]
    queue: asyncio.Queue[events_pb2.Event | Resync]
    closed: bool = field(default=False)
    # Decides, on the bus's reader, whether an event is queued at all: a subscriber that wants 50 of 1000
    # jobs is not woken for the other 950 (docs/adr/0021-live-path.md). Resync markers always pass.
    accept: Callable[[events_pb2.Event], bool] | None = None

    def __aiter__(self) -> AsyncIterator[events_pb2.Event | Resync]:
        return self

    async def __anext__(self) -> events_pb2.Event | Resync:
        if self.closed:
            raise StopAsyncIteration
        return await self.queue.get()

    async def get(self, timeout: float | None = None) -> events_pb2.Event | Resync:
        return await asyncio.wait_for(self.queue.get(), timeout)

    def deliver(self, item: events_pb2.Event | Resync, topic: str) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            dropped = self.queue.qsize()
            while not self.queue.empty():
                self.queue.get_nowait()
            EVENTS_DROPPED.labels(topic).inc(dropped + 1)
            self.queue.put_nowait(Resync(f"subscriber fell behind; {dropped + 1} events dropped"))

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.bus._release(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class EventBus:
    """Publishes envelopes and fans them out to local subscribers over one Redis connection."""

    def __init__(
        self, redis: aioredis.Redis, namespace: str, *, queue_size: int = 5000, outbox_limit: int = 20_000
    ) -> None:
        # A subscriber holds up to `queue_size` events: more than two bursts of a full ReportBatch (2 000).
        self._redis = redis
        self._outbox: deque[tuple[str, list[events_pb2.Event], contextvars.Context]] = deque()
        self._outbox_size = 0
        self._outbox_limit = outbox_limit
        self._outbox_ready = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None
        self._namespace = namespace
        self._queue_size = queue_size
        self._subscribers: dict[str, set[Subscription]] = {}
        self._confirmed: set[str] = set()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._closing = False
        self.connected = True

    def channel(self, topic: str) -> str:
        return f"{self._namespace}:events:{topic}"

    async def publish(self, topic: Topic | str, event: events_pb2.Event) -> bool:
        """Publish; False (logged, counted) when Redis is unreachable. Never raises for Redis faults."""
        try:
            await self._redis.publish(self.channel(topic), event.SerializeToString())
        except (*_REDIS_DOWN, RedisError) as error:
            EVENTS_PUBLISH_FAILED.labels(str(topic)).inc()
            log.warning("event not published; Redis unreachable", topic=str(topic), error=str(error))
            return False
        EVENTS_PUBLISHED.labels(str(topic)).inc()
        return True

    async def publish_many(self, topic: Topic | str, events: list[events_pb2.Event]) -> bool:
        """Publish several events as one Redis message (an `EventBatch`, docs/adr/0021-live-path.md);
        same failure rules as `publish`. Local subscribers receive them one by one, in order."""
        if not events:
            return True
        if len(events) == 1:
            return await self.publish(topic, events[0])
        batch = events_pb2.EventBatch()
        batch.events.extend(events)
        try:
            await self._redis.publish(self.channel(topic), BATCH_MARK + batch.SerializeToString())
        except (*_REDIS_DOWN, RedisError) as error:
            EVENTS_PUBLISH_FAILED.labels(str(topic)).inc(len(events))
            log.warning(
                "events not published; Redis unreachable", topic=str(topic), count=len(events), error=str(error)
            )
            return False
        EVENTS_PUBLISHED.labels(str(topic)).inc(len(events))
        return True

    def publish_soon(self, topic: Topic | str, events: Sequence[events_pb2.Event]) -> None:
        """Queue events for a background task that publishes them in order; never waits for Redis.

        For callers on the database path (the jobs service's batch reports): a frozen or lost Redis costs
        them nothing. While Redis does not answer the queue holds up to `outbox_limit` events; beyond
        that new events are dropped and counted like failed publishes.
        """
        if not events:
            return
        if self._outbox_size + len(events) > self._outbox_limit:
            EVENTS_PUBLISH_FAILED.labels(str(topic)).inc(len(events))
            log.warning("events not published; the outbox is full", topic=str(topic), count=len(events))
            return
        self._outbox.append((str(topic), list(events), contextvars.copy_context()))
        self._outbox_size += len(events)
        self._outbox_ready.set()
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_loop(), name="event-bus-publisher")

    async def _publish_loop(self) -> None:
        while not self._closing or self._outbox:
            if not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            batch: list[tuple[str, list[events_pb2.Event]]] = []
            context = self._outbox[0][2]
            while self._outbox and sum(len(e) for _, e in batch) < 500:
                topic, events, _ = self._outbox.popleft()
                batch.append((topic, events))
            self._outbox_size -= sum(len(e) for _, e in batch)
            # In the context of the call that queued the batch's first events: its trace gets the PUBLISH span.
            await asyncio.create_task(self._send(batch), context=context)

    async def _send(self, batch: list[tuple[str, list[events_pb2.Event]]]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for topic, events in batch:
                    pipe.publish(self.channel(topic), _encode(events))
                await pipe.execute()
        except (*_REDIS_DOWN, RedisError) as error:
            for topic, events in batch:
                EVENTS_PUBLISH_FAILED.labels(topic).inc(len(events))
            log.warning("events not published; Redis unreachable", count=sum(len(e) for _, e in batch),
                        error=str(error) or type(error).__name__)  # fmt: skip
            return
        for topic, events in batch:
            EVENTS_PUBLISHED.labels(topic).inc(len(events))

    async def subscribe(
        self,
        *topics: Topic | str,
        confirm_timeout: float = 5.0,
        accept: Callable[[events_pb2.Event], bool] | None = None,
    ) -> Subscription:
        """Register a subscriber; returns once Redis confirmed the channels (or Redis is down). With
        `accept`, only the events it accepts are queued for this subscriber."""
        if self._closing:
            raise RuntimeError("event bus is closed")
        sub = Subscription(self, frozenset(str(t) for t in topics), asyncio.Queue(self._queue_size), accept=accept)
        pending: list[asyncio.Future[None]] = []
        loop = asyncio.get_running_loop()
        for topic in sub.topics:
            channel = self.channel(topic)
            self._subscribers.setdefault(channel, set()).add(sub)
            if channel not in self._confirmed:
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.setdefault(channel, []).append(future)
                pending.append(future)
        self._ensure_reader()
        self._wakeup.set()
        if pending:
            try:
                done, _ = await asyncio.wait(pending, timeout=confirm_timeout)
            except BaseException:
                # Cancelled while waiting (the client left): nobody will close this subscriber.
                await self._release(sub)
                raise
            if len(done) < len(pending):
                # Redis is down: the subscriber still works and gets a Resync once it is back.
                sub.deliver(Resync("Redis unreachable; live events will resume when it returns"), "")
        return sub

    async def _release(self, sub: Subscription) -> None:
        for topic in sub.topics:
            subs = self._subscribers.get(self.channel(topic))
            if subs is not None:
                subs.discard(sub)
        self._wakeup.set()

    def subscriber_count(self) -> int:
        return len({s for subs in self._subscribers.values() for s in subs})

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_loop(), name="event-bus-reader")

    async def _reconcile(self, pubsub: aioredis.client.PubSub) -> None:
        wanted = {ch for ch, subs in self._subscribers.items() if subs}
        current = set(pubsub.channels.keys()) if pubsub.channels else set()
        current = {c.decode() if isinstance(c, bytes) else c for c in current}
        if add := wanted - current:
            await pubsub.subscribe(*add)
        if remove := current - wanted:
            await pubsub.unsubscribe(*remove)
            self._confirmed -= remove
        for channel in [c for c, subs in self._subscribers.items() if not subs]:
            del self._subscribers[channel]

    async def _read_loop(self) -> None:
        backoff = 0.2
        while not self._closing:
            pubsub = self._redis.pubsub()
            try:
                while not self._closing:
                    await self._reconcile(pubsub)
                    message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=0.1)
                    if not self.connected:
                        self.connected = True
                        log.info("event bus reconnected to Redis")
                        self._broadcast(Resync("Redis connection restored; events may have been missed"))
                    backoff = 0.2
                    if message is None:
                        if not self._subscribers:
                            self._wakeup.clear()
                            with contextlib.suppress(TimeoutError):
                                async with asyncio.timeout(5.0):
                                    await self._wakeup.wait()
                        continue
                    self._handle(message)
            except asyncio.CancelledError:
                raise
            except (*_REDIS_DOWN, RedisError) as error:
                if self.connected:
                    log.warning("event bus lost Redis; reconnecting", error=str(error))
                    self.connected = False
                    self._broadcast(Resync("Redis connection lost; live events paused"))
                self._confirmed.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _handle(self, message: dict[str, object]) -> None:
        raw_channel = message.get("channel")
        channel = raw_channel.decode() if isinstance(raw_channel, bytes) else str(raw_channel)
        kind = message.get("type")
        if kind == "subscribe":
            self._confirmed.add(channel)
            for future in self._waiters.pop(channel, []):
                if not future.done():
                    future.set_result(None)
            return
        if kind != "message":
            return
        data = message.get("data")
        if not isinstance(data, bytes):
            return
        received = time.time_ns()
        # Decoded once here, the same objects shared by every local subscriber.
        try:
            if data[:1] == BATCH_MARK:
                batch = events_pb2.EventBatch()
                batch.ParseFromString(data[1:])
                events = list(batch.events)
            else:
                event = events_pb2.Event()
                event.ParseFromString(data)
                events = [event]
        except Exception:
            log.warning("ignored an undecodable event", channel=channel, size=len(data))
            return
        topic = channel.rsplit(":", 1)[-1]
        subscribers = list(self._subscribers.get(channel, ()))
        delivered = 0
        for event in events:
            if event.hops:  # a measured event (docs/adr/0021-live-path.md): note when this process got it
                event.hops.add(name="gateway_received", at_unix_nanos=received)
            for sub in subscribers:
                if sub.accept is None or sub.accept(event):
                    sub.deliver(event, topic)
                    delivered += 1
        EVENTS_RECEIVED.labels(topic).inc(len(events))
        EVENTS_DELIVERED.labels(topic).inc(delivered)

    def _broadcast(self, marker: Resync) -> None:
        for sub in {s for subs in self._subscribers.values() for s in subs}:
            sub.deliver(marker, "")

    async def close(self, flush_timeout: float = 2.0) -> None:
        self._closing = True
        self._wakeup.set()
        self._outbox_ready.set()
        if self._publisher is not None:
            # What was queued before the stop still goes out, unless Redis does not answer.
            await asyncio.wait({self._publisher}, timeout=flush_timeout)
        await stop_tasks([self._publisher, self._reader])
        for future in [f for fs in self._waiters.values() for f in fs]:
            if not future.done():
                future.cancel()
