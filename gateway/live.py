"""The loop every live subscription shares: follow one topic of the bus, skip Resync, filter, release.

    async with follow(info.context, Topic.HEALTH_STATUS, "health_status_changed", for_service(id)) as changes:
        async for change in changes:
            yield to_gql(change)

`follow` yields the payload of each event that carries `field` and that `keep` accepts. The bus
subscription (one shared Redis connection, a queue per subscriber) is released when the `async with`
ends, which happens when the client unsubscribes or disconnects (the resolver's generator is closed).
Resync markers are skipped: these subscriptions carry momentary figures and changes, and a client that
missed some re-reads state with a query. Job subscriptions catch up on Resync instead (gateway/jobs).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from gateway.context import Context
from services.common.events import Resync, Topic


def everything(_payload: Any) -> bool:
    return True


def for_service(service_id: object | None) -> Callable[[Any], bool]:
    """Keep payloads of one service (by its `service_id` field), or all when no id is given."""
    if not service_id:
        return everything
    wanted = str(service_id)
    return lambda payload: bool(payload.service_id == wanted)


@asynccontextmanager
async def follow(
    ctx: Context, topic: Topic, field: str, keep: Callable[[Any], bool] = everything
) -> AsyncIterator[AsyncIterator[Any]]:
    """The payloads (`event.<field>`) of `topic`'s events that `keep` accepts, while the block runs."""
    subscription = await ctx.state.bus.subscribe(topic)

    async def payloads() -> AsyncIterator[Any]:
        async for item in subscription:
            if isinstance(item, Resync) or item.WhichOneof("payload") != field:
                continue
            payload = getattr(item, field)
            if keep(payload):
                yield payload

    try:
        yield payloads()
    finally:
        await subscription.close()
