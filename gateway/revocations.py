"""Open websockets follow their API key: a revoked (or expired) key loses its sockets on every replica.

A revocation is announced on the event bus (`Topic.API_KEYS`); every gateway replica drops the key from
its cache and closes the key's sockets with 4403. Announcements can be lost (Redis down, a key revoked
straight in the database with `keys_cli`), so each replica also re-verifies the keys of its open sockets
against the database every `recheck_seconds`, and after the bus tells it events may have been missed.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from gateway.auth import KeyStore
from services.common.events import EventBus, Resync, Subscription, Topic, new_event
from services.common.logging import get_logger
from services.common.tasks import stop_tasks

log = get_logger(__name__)


class LiveSocket(Protocol):
    """What the registry needs of a connection: its key and a way to end it."""

    api_key: str | None

    async def close_revoked(self) -> None: ...


def key_id_of(plain: str) -> str:
    """The public id part of `b2x_<id>_<secret>`."""
    return plain.split("_", 2)[1] if plain.count("_") >= 2 else ""


class SocketRegistry:
    """The open websockets of this replica by key id; closes them when their key stops being valid."""

    def __init__(self, keys: KeyStore, bus: EventBus, recheck_seconds: float) -> None:
        self._keys = keys
        self._bus = bus
        self._recheck_seconds = recheck_seconds
        self._sockets: dict[str, set[LiveSocket]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.bus_subscribers = 0  # the registry's own subscription to the bus

    def add(self, socket: LiveSocket) -> None:
        if socket.api_key:
            self._sockets.setdefault(key_id_of(socket.api_key), set()).add(socket)

    def discard(self, socket: LiveSocket) -> None:
        if socket.api_key:
            sockets = self._sockets.get(key_id_of(socket.api_key))
            if sockets is not None:
                sockets.discard(socket)
                if not sockets:
                    del self._sockets[key_id_of(socket.api_key)]

    def count(self) -> int:
        return sum(len(s) for s in self._sockets.values())

    async def announce(self, key_id: str) -> None:
        """Tell every replica (this one included, even when Redis is down) that `key_id` was revoked."""
        await self._revoked(key_id)
        event = new_event("gateway")
        event.api_key_revoked.key_id = key_id
        await self._bus.publish(Topic.API_KEYS, event)

    async def _revoked(self, key_id: str) -> None:
        self._keys.forget(key_id)
        sockets = list(self._sockets.pop(key_id, ()))
        if sockets:
            log.info("closing websockets of a revoked key", key_id=key_id, sockets=len(sockets))
        await asyncio.gather(*(s.close_revoked() for s in sockets), return_exceptions=True)

    async def recheck(self) -> None:
        """Re-verify every open socket's key against the database; close those that no longer verify."""
        for key_id, sockets in list(self._sockets.items()):
            plain = next((s.api_key for s in sockets if s.api_key), None)
            if plain is not None and await self._keys.verify(plain, fresh=True) is None:
                await self._revoked(key_id)

    async def start(self) -> None:
        subscription = await self._bus.subscribe(Topic.API_KEYS)
        self.bus_subscribers = 1
        self._tasks = [
            asyncio.create_task(self._listen(subscription), name="revocation-listener"),
            asyncio.create_task(self._recheck_loop(), name="revocation-recheck"),
        ]

    async def _listen(self, subscription: Subscription) -> None:
        async with subscription:
            async for item in subscription:
                try:
                    if isinstance(item, Resync):
                        # Revocations may have been missed: trust nothing cached, re-verify open sockets.
                        self._keys.forget_all()
                        await self.recheck()
                    elif item.HasField("api_key_revoked"):
                        await self._revoked(item.api_key_revoked.key_id)
                except Exception:
                    log.exception("revocation handling failed")

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self._recheck_seconds)
            try:
                await self.recheck()
            except Exception as error:  # the database may be down; the next round tries again
                log.warning("websocket key re-check failed", error=str(error))

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
