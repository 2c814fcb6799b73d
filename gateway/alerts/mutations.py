"""Alert mutations (operator or admin; each one written to the audit log)."""

from __future__ import annotations

import strawberry
from b2x.monitoring.v1 import alerts_pb2

from gateway.alerts import types as t
from gateway.alerts.convert import alert_to_gql, silence_to_gql, thresholds_to_proto
from gateway.alerts.queries import scoped
from gateway.audit import AuditScope
from gateway.auth import Principal, Role
from gateway.context import Context, Info
from gateway.errors import forbidden
from gateway.registry.convert import thresholds_to_gql


def _actor(principal: Principal) -> str:
    return f"{principal.name} ({principal.key_id})"


async def _target(ctx: Context, alert_id: str, principal: Principal, audit: AuditScope) -> str:
    """The alert's full id, noted with its tenant for the audit entry; NOT_FOUND for an alert the caller
    may not see."""
    clients = ctx.state.clients
    detail = await clients.call(
        clients.alerts,
        clients.alerts.stub.GetAlert,
        scoped(alerts_pb2.GetAlertRequest(id=alert_id), principal.tenant_id),
    )
    audit.target = detail.alert.id
    audit.target_tenant = detail.alert.tenant_id or None
    return str(detail.alert.id)


@strawberry.type
class AlertMutations:
    @strawberry.mutation(description="Acknowledge a firing alert: someone is on it (who, when, comment)")
    async def acknowledge_alert(self, info: Info, id: strawberry.ID, comment: str | None = None) -> t.Alert:
        ctx = info.context
        async with ctx.audited("acknowledgeAlert", str(id), {"comment": comment}) as audit:
            principal = ctx.require(Role.OPERATOR)
            alert_id = await _target(ctx, str(id), principal, audit)
            clients = ctx.state.clients
            request = alerts_pb2.AcknowledgeAlertRequest(id=alert_id, actor=_actor(principal), comment=comment or "")
            response = await clients.call(
                clients.alerts, clients.alerts.stub.AcknowledgeAlert, scoped(request, principal.tenant_id)
            )
        return alert_to_gql(response.alert)

    @strawberry.mutation(description="Resolve an alert by hand; it fires again as a new episode if the problem returns")
    async def resolve_alert(self, info: Info, id: strawberry.ID, comment: str | None = None) -> t.Alert:
        ctx = info.context
        async with ctx.audited("resolveAlert", str(id), {"comment": comment}) as audit:
            principal = ctx.require(Role.OPERATOR)
            alert_id = await _target(ctx, str(id), principal, audit)
            clients = ctx.state.clients
            request = alerts_pb2.ResolveAlertRequest(id=alert_id, actor=_actor(principal), comment=comment or "")
            response = await clients.call(
                clients.alerts, clients.alerts.stub.ResolveAlert, scoped(request, principal.tenant_id)
            )
        return alert_to_gql(response.alert)

    @strawberry.mutation(
        description="Silence the notifications of alerts matching every matcher for a while (a tenant key's "
        "silence covers its tenant's alerts only)"
    )
    async def create_silence(self, info: Info, input: t.CreateSilenceInput) -> t.Silence:
        ctx = info.context
        arguments = {"matchers": input.matchers, "duration": input.duration, "comment": input.comment}
        async with ctx.audited("createSilence", None, arguments):
            principal = ctx.require(Role.OPERATOR)
            request = alerts_pb2.CreateSilenceRequest(
                matchers=input.matchers, duration=input.duration, comment=input.comment, created_by=_actor(principal)
            )
            clients = ctx.state.clients
            response = await clients.call(
                clients.alerts, clients.alerts.stub.CreateSilence, scoped(request, principal.tenant_id)
            )
        return silence_to_gql(response.silence)

    @strawberry.mutation(description="End a silence now")
    async def expire_silence(self, info: Info, id: strawberry.ID) -> t.Silence:
        ctx = info.context
        async with ctx.audited("expireSilence", str(id)):
            principal = ctx.require(Role.OPERATOR)
            request = alerts_pb2.ExpireSilenceRequest(id=str(id), actor=_actor(principal))
            clients = ctx.state.clients
            response = await clients.call(
                clients.alerts, clients.alerts.stub.ExpireSilence, scoped(request, principal.tenant_id)
            )
        return silence_to_gql(response.silence)

    @strawberry.mutation(
        description="Change resource thresholds of a service (only those given); kept over the declarative "
        "file's and across restarts"
    )
    async def update_thresholds(
        self, info: Info, service: str, thresholds: t.ThresholdsInput
    ) -> t.UpdateThresholdsResult:
        ctx = info.context
        arguments = {k: v for k, v in vars(thresholds).items() if v is not None}
        async with ctx.audited("updateThresholds", service, arguments):
            principal = ctx.require(Role.OPERATOR)
            if principal.tenant_id is not None:
                raise forbidden("thresholds apply to every tenant; a tenant-scoped key cannot change them")
            request = alerts_pb2.UpdateThresholdsRequest(
                service=service, changes=thresholds_to_proto(thresholds), actor=_actor(principal)
            )
            clients = ctx.state.clients
            response = await clients.call(clients.alerts, clients.alerts.stub.UpdateThresholds, request)
        return t.UpdateThresholdsResult(
            service=response.service_slug, thresholds=thresholds_to_gql(response.thresholds)
        )

    @strawberry.mutation(description="Send a test message over a notification channel now (operator)")
    async def test_notification_channel(self, info: Info, name: str) -> t.ChannelTestResult:
        ctx = info.context
        async with ctx.audited("testNotificationChannel", name):
            principal = ctx.require(Role.OPERATOR)
            if principal.tenant_id is not None:
                raise forbidden("notification channels serve every tenant; a tenant-scoped key cannot test them")
            clients = ctx.state.clients
            response = await clients.call(
                clients.alerts,
                clients.alerts.stub.TestNotificationChannel,
                alerts_pb2.TestNotificationChannelRequest(name=name),
            )
        return t.ChannelTestResult(
            channel=response.channel, delivered=response.delivered, detail=response.detail,
            duration_ms=response.duration_ms,
        )  # fmt: skip
