"""Alert queries: pages of alerts, one alert with its episodes and notifications, rules, silences.

A tenant-scoped key sees the alerts labelled with its tenant or with none, and its tenant's silences.
"""

from __future__ import annotations

from typing import Any

import strawberry
from b2x.monitoring.v1 import alerts_pb2

from gateway.alerts import types as t
from gateway.alerts.convert import (
    alert_to_gql,
    attempt_to_gql,
    episode_to_gql,
    filter_to_proto,
    rule_to_gql,
    silence_to_gql,
)
from gateway.context import Info
from gateway.errors import gql_error
from gateway.jobs.types import PageInfo

MAX_FIRST = 500


def scoped(request: Any, tenant: str | None) -> Any:
    """The request limited to the caller's tenant, when the key is tenant-scoped."""
    if tenant is not None:
        request.tenant_scope = tenant
    return request


@strawberry.type
class AlertQueries:
    @strawberry.field(description="Alerts, most recently changed first (filter.active: what fires now)")
    async def alerts(
        self, info: Info, filter: t.AlertFilter | None = None, first: int = 50, after: str | None = None
    ) -> t.AlertConnection:
        ctx = info.context
        principal = ctx.require()
        if not 1 <= first <= MAX_FIRST:
            raise gql_error(f"first must be between 1 and {MAX_FIRST} (got {first})", "BAD_USER_INPUT")
        request = scoped(
            alerts_pb2.ListAlertsRequest(filter=filter_to_proto(filter), first=first, after=after or ""),
            principal.tenant_id,
        )
        clients = ctx.state.clients
        response = await clients.call(clients.alerts, clients.alerts.stub.ListAlerts, request)
        end = response.next_cursor or None
        edges = [t.AlertEdge(cursor=end or "", node=alert_to_gql(a)) for a in response.alerts]
        return t.AlertConnection(
            edges=edges, page_info=PageInfo(has_next_page=end is not None, end_cursor=end), total_count=response.total
        )

    @strawberry.field(description="One alert (its id or the first characters of it), every episode and notification")
    async def alert(self, info: Info, id: strawberry.ID) -> t.AlertDetails:
        ctx = info.context
        principal = ctx.require()
        clients = ctx.state.clients
        detail = await clients.call(
            clients.alerts,
            clients.alerts.stub.GetAlert,
            scoped(alerts_pb2.GetAlertRequest(id=str(id)), principal.tenant_id),
        )
        notifications = await clients.call(
            clients.alerts,
            clients.alerts.stub.ListAlertNotifications,
            scoped(alerts_pb2.ListAlertNotificationsRequest(alert_id=detail.alert.id), principal.tenant_id),
        )
        return t.AlertDetails(
            alert=alert_to_gql(detail.alert),
            episodes=[episode_to_gql(e) for e in detail.episodes],
            notifications=[attempt_to_gql(a) for a in notifications.attempts],
        )

    @strawberry.field(description="The alert rules and their parameters")
    async def alert_rules(self, info: Info) -> list[t.AlertRule]:
        ctx = info.context
        ctx.require()
        clients = ctx.state.clients
        response = await clients.call(
            clients.alerts, clients.alerts.stub.ListAlertRules, alerts_pb2.ListAlertRulesRequest()
        )
        return [rule_to_gql(r) for r in response.rules]

    @strawberry.field(description="Silences, newest first; expired ones too with includeExpired")
    async def silences(self, info: Info, include_expired: bool = False) -> list[t.Silence]:
        ctx = info.context
        principal = ctx.require()
        clients = ctx.state.clients
        response = await clients.call(
            clients.alerts,
            clients.alerts.stub.ListSilences,
            scoped(alerts_pb2.ListSilencesRequest(include_expired=include_expired), principal.tenant_id),
        )
        return [silence_to_gql(s) for s in response.silences]
