"""The event bus over real Redis: fan-out on one connection, bounded queues, resync markers."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from services.common.events import EventBus, Resync, Topic, new_event


async def test_every_local_subscriber_gets_each_event_over_one_connection(
    redis_server_url: str, namespace: str
) -> None:
    """Three subscribers of a topic all receive a published event; other topics stay silent."""
    client = aioredis.from_url(redis_server_url)
    bus = EventBus(client, namespace)
    try:
        subs = [await bus.subscribe(Topic.JOB_STATUS) for _ in range(3)]
        other = await bus.subscribe(Topic.ALERTS)
        event = new_event("jobs", tenant_id="t1")
        event.job_status_changed.job_id = "j-1"
        assert await bus.publish(Topic.JOB_STATUS, event)
        for sub in subs:
            got = await sub.get(timeout=5)
            assert not isinstance(got, Resync) and got.job_status_changed.job_id == "j-1" and got.tenant_id == "t1"
        assert other.queue.empty()
        clients = await client.client_list()
        pubsub_connections = [c for c in clients if int(c.get("sub", 0)) + int(c.get("psub", 0)) > 0]
        assert len(pubsub_connections) == 1
        for sub in [*subs, other]:
            await sub.close()
        assert bus.subscriber_count() == 0
    finally:
        await bus.close()
        await client.aclose()


async def test_a_subscriber_that_falls_behind_gets_a_resync_instead_of_stale_events(
    redis_server_url: str, namespace: str
) -> None:
    """With a queue of 5, publishing 20 events to an idle subscriber leaves a Resync marker, not a gap."""
    client = aioredis.from_url(redis_server_url)
    bus = EventBus(client, namespace, queue_size=5)
    try:
        sub = await bus.subscribe(Topic.JOB_STATUS)
        for _ in range(20):
            await bus.publish(Topic.JOB_STATUS, new_event("jobs"))
        await asyncio.sleep(0.5)
        items = []
        while not sub.queue.empty():
            items.append(sub.queue.get_nowait())
        assert any(isinstance(i, Resync) and "fell behind" in i.reason for i in items)
        await sub.close()
    finally:
        await bus.close()
        await client.aclose()


async def test_publishing_without_redis_is_reported_not_raised(namespace: str) -> None:
    """A publish to an unreachable Redis returns False; the caller's state change is not failed."""
    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    bus = EventBus(client, namespace)
    try:
        assert await bus.publish(Topic.JOB_STATUS, new_event("jobs")) is False
    finally:
        await bus.close()
        await client.aclose()


async def test_events_published_together_travel_as_one_message_and_arrive_one_by_one(
    redis_server_url: str, namespace: str
) -> None:
    """publish_many sends one Redis message (docs/adr/0021-live-path.md); every subscriber gets each event, in order."""
    client = aioredis.from_url(redis_server_url)
    bus = EventBus(client, namespace)
    raw = client.pubsub()
    try:
        await raw.subscribe(bus.channel(Topic.JOB_STATUS))
        subs = [await bus.subscribe(Topic.JOB_STATUS) for _ in range(2)]
        sent = [new_event("jobs", tenant_id=f"t{i}") for i in range(3)]
        assert await bus.publish_many(Topic.JOB_STATUS, sent) is True
        for sub in subs:
            got = [await sub.get(timeout=5) for _ in sent]
            assert [e.id for e in got] == [e.id for e in sent]  # type: ignore[union-attr]
            assert [e.tenant_id for e in got] == ["t0", "t1", "t2"]  # type: ignore[union-attr]
            await sub.close()
        messages = []
        for _ in range(5):  # the subscribe confirmation, the message, then silence
            message = await raw.get_message(timeout=1)
            if message and message["type"] == "message":
                messages.append(message["data"])
        assert len(messages) == 1 and messages[0][:1] == b"\x00"
    finally:
        await raw.aclose()
        await bus.close()
        await client.aclose()


async def test_a_subscriber_with_a_filter_is_only_given_the_events_it_accepts(
    redis_server_url: str, namespace: str
) -> None:
    """`accept` runs on the reader: rejected events never reach the subscriber's queue; others get them all."""
    client = aioredis.from_url(redis_server_url)
    bus = EventBus(client, namespace)
    try:
        picky = await bus.subscribe(Topic.JOB_STATUS, accept=lambda e: e.tenant_id == "t1")
        everyone = await bus.subscribe(Topic.JOB_STATUS)
        sent = [new_event("jobs", tenant_id=f"t{i % 3}") for i in range(6)]
        await bus.publish_many(Topic.JOB_STATUS, sent)
        got = [await everyone.get(timeout=5) for _ in sent]
        assert [e.id for e in got] == [e.id for e in sent]  # type: ignore[union-attr]
        assert picky.queue.qsize() == 2
        assert [(await picky.get(timeout=5)).tenant_id for _ in range(2)] == ["t1", "t1"]  # type: ignore[union-attr]
        await picky.close()
        await everyone.close()
    finally:
        await bus.close()
        await client.aclose()
