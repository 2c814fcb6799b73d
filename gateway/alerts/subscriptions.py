"""The live alert feed: every state change of every alert the caller may see (SignalR AlertTriggered)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from b2x.monitoring.v1 import events_pb2

from gateway.alerts import types as t
from gateway.alerts.convert import alert_to_gql
from gateway.context import Info
from gateway.live import follow
from services.common.events import Topic


@strawberry.type
class AlertSubscriptions:
    @strawberry.subscription(
        description="Every alert state change: fired, fired again, acknowledged, resolved; optionally of one "
        "service (slug) or at least one severity"
    )
    async def alert_triggered(
        self, info: Info, service: str | None = None, severities: list[t.AlertSeverity] | None = None
    ) -> AsyncGenerator[t.Alert, None]:
        ctx = info.context
        principal = ctx.require()
        wanted = {s.value for s in severities or []}

        def keep(change: events_pb2.AlertTriggered) -> bool:
            alert = change.alert
            if principal.tenant_id is not None and alert.tenant_id not in ("", principal.tenant_id):
                return False
            if service and alert.labels.get("service", "") != service:
                return False
            return not wanted or alert.labels.get("severity", "") in wanted

        async with follow(ctx, Topic.ALERTS, "alert_triggered", keep) as changes:
            async for change in changes:
                yield alert_to_gql(change.alert)
