"""Live health status changes over graphql-transport-ws, fed by the shared Redis subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from gateway.context import Info
from gateway.health import types as t
from gateway.health.convert import status_change_to_gql
from gateway.live import follow, for_service
from services.common.events import Topic


@strawberry.type
class HealthSubscriptions:
    @strawberry.subscription(description="A connected service changed status (SignalR HealthStatusChanged)")
    async def health_status_changed(
        self, info: Info, service_id: strawberry.ID | None = None
    ) -> AsyncGenerator[t.HealthStatusEvent, None]:
        info.context.require()
        keep = for_service(service_id)
        async with follow(info.context, Topic.HEALTH_STATUS, "health_status_changed", keep) as changes:
            async for change in changes:
                yield status_change_to_gql(change)
