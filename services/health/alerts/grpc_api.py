"""gRPC transport of the alert lifecycle (AlertsService on the health server): protobuf ⇄ domain only.

Domain errors are mapped to status codes by the server's interceptor (INVALID_ARGUMENT naming the
field, NOT_FOUND, FAILED_PRECONDITION).
"""

from __future__ import annotations

from b2x.monitoring.v1 import alerts_pb2, alerts_pb2_grpc
from google.protobuf.message import Message

from services.common.grpc_server import ServicerContext
from services.health.alerts.convert import (
    alert_to_proto,
    attempt_to_proto,
    episode_to_proto,
    filter_from_proto,
    rule_to_proto,
    silence_to_proto,
    test_result_to_proto,
    threshold_changes_from_proto,
    thresholds_to_proto,
)
from services.health.alerts.domain import check_comment, parse_duration, parse_matcher
from services.health.alerts.service import AlertService, utcnow
from services.health.domain import InvalidFieldError

SERVICE_NAME = alerts_pb2.DESCRIPTOR.services_by_name["AlertsService"].full_name


def _scope(request: Message) -> str | None:
    """The tenant a tenant-scoped key is limited to; None for an unscoped caller."""
    scoped = request.HasField("tenant_scope")
    return str(getattr(request, "tenant_scope")) if scoped else None  # noqa: B009 - every scoped request has it


def _actor(value: str, name: str = "actor") -> str:
    text = value.strip()
    if not text:
        raise InvalidFieldError(name, "say who is acting (the API key's name)")
    return check_comment(text, name)[:200]


class AlertsServicer(alerts_pb2_grpc.AlertsServiceServicer):
    def __init__(self, alerts: AlertService) -> None:
        self._alerts = alerts

    async def ListAlerts(
        self, request: alerts_pb2.ListAlertsRequest, context: ServicerContext
    ) -> alerts_pb2.ListAlertsResponse:
        page = await self._alerts.list_alerts(
            filter_from_proto(request.filter, _scope(request)), request.first, request.after or None
        )
        return alerts_pb2.ListAlertsResponse(
            alerts=[alert_to_proto(a) for a in page.alerts], next_cursor=page.next_cursor or "", total=page.total
        )

    async def GetAlert(
        self, request: alerts_pb2.GetAlertRequest, context: ServicerContext
    ) -> alerts_pb2.GetAlertResponse:
        detail = await self._alerts.get(request.id, _scope(request))
        return alerts_pb2.GetAlertResponse(
            alert=alert_to_proto(detail.alert), episodes=[episode_to_proto(e) for e in detail.episodes]
        )

    async def AcknowledgeAlert(
        self, request: alerts_pb2.AcknowledgeAlertRequest, context: ServicerContext
    ) -> alerts_pb2.AcknowledgeAlertResponse:
        alert = await self._alerts.acknowledge(request.id, _actor(request.actor), request.comment, _scope(request))
        return alerts_pb2.AcknowledgeAlertResponse(alert=alert_to_proto(alert))

    async def ResolveAlert(
        self, request: alerts_pb2.ResolveAlertRequest, context: ServicerContext
    ) -> alerts_pb2.ResolveAlertResponse:
        alert = await self._alerts.resolve(request.id, _actor(request.actor), request.comment, _scope(request))
        return alerts_pb2.ResolveAlertResponse(alert=alert_to_proto(alert))

    async def ListAlertRules(
        self, request: alerts_pb2.ListAlertRulesRequest, context: ServicerContext
    ) -> alerts_pb2.ListAlertRulesResponse:
        return alerts_pb2.ListAlertRulesResponse(rules=[rule_to_proto(r) for r in self._alerts.rules()])

    async def CreateSilence(
        self, request: alerts_pb2.CreateSilenceRequest, context: ServicerContext
    ) -> alerts_pb2.CreateSilenceResponse:
        matchers = [parse_matcher(text, f"matchers[{i}]") for i, text in enumerate(request.matchers)]
        duration = parse_duration(request.duration)
        silence = await self._alerts.create_silence(
            matchers, duration, _actor(request.created_by, "created_by"), request.comment, _scope(request)
        )
        return alerts_pb2.CreateSilenceResponse(silence=silence_to_proto(silence, silence.active(utcnow())))

    async def ExpireSilence(
        self, request: alerts_pb2.ExpireSilenceRequest, context: ServicerContext
    ) -> alerts_pb2.ExpireSilenceResponse:
        silence = await self._alerts.expire_silence(request.id, _actor(request.actor), _scope(request))
        return alerts_pb2.ExpireSilenceResponse(silence=silence_to_proto(silence, False))

    async def ListSilences(
        self, request: alerts_pb2.ListSilencesRequest, context: ServicerContext
    ) -> alerts_pb2.ListSilencesResponse:
        now = utcnow()
        silences = await self._alerts.silences(request.include_expired, _scope(request))
        return alerts_pb2.ListSilencesResponse(silences=[silence_to_proto(s, s.active(now)) for s in silences])

    async def UpdateThresholds(
        self, request: alerts_pb2.UpdateThresholdsRequest, context: ServicerContext
    ) -> alerts_pb2.UpdateThresholdsResponse:
        if not request.service.strip():
            raise InvalidFieldError("service", "name the service (slug or id)")
        slug, thresholds = await self._alerts.update_thresholds(
            request.service.strip(), threshold_changes_from_proto(request.changes), _actor(request.actor)
        )
        return alerts_pb2.UpdateThresholdsResponse(service_slug=slug, thresholds=thresholds_to_proto(thresholds))

    async def TestNotificationChannel(
        self, request: alerts_pb2.TestNotificationChannelRequest, context: ServicerContext
    ) -> alerts_pb2.TestNotificationChannelResponse:
        return test_result_to_proto(await self._alerts.test_channel(request.name))

    async def ListAlertNotifications(
        self, request: alerts_pb2.ListAlertNotificationsRequest, context: ServicerContext
    ) -> alerts_pb2.ListAlertNotificationsResponse:
        attempts = await self._alerts.notifications(request.alert_id, _scope(request))
        return alerts_pb2.ListAlertNotificationsResponse(attempts=[attempt_to_proto(a) for a in attempts])
