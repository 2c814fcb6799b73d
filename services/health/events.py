"""Announces status changes on the bus: one HealthStatusChanged per change, in one pipelined publish."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.events import EventBus, Topic, new_event
from services.health.aggregation.feeds import status_change_to_proto
from services.health.domain import StatusChange


class BusStatusAnnouncer:
    """StatusAnnouncer over Redis pub/sub; a publish that fails is logged by the bus, never raised
    (PostgreSQL already holds the new status, and subscribers re-read it after a Resync)."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    async def status_changed(self, changes: Sequence[StatusChange]) -> None:
        batch = []
        for change in changes:
            event = new_event("health")
            event.health_status_changed.CopyFrom(status_change_to_proto(change))
            batch.append(event)
        await self._bus.publish_many(Topic.HEALTH_STATUS, batch)
