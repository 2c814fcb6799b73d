"""Announces connection test progress, communication errors, resource figures and resource alerts on the bus."""

from __future__ import annotations

from collections.abc import Mapping

from b2x.monitoring.v1 import events_pb2

from services.common.events import EventBus, Topic, new_event
from services.probes.agent.resources.model import ResourceAlert, ResourceMetrics
from services.probes.convert import error_to_proto, phase_to_proto, result_to_proto
from services.probes.domain import CommunicationError, ConnectionTestResult, Phase
from services.probes.insights.convert import resource_alert_to_proto, resource_metrics_to_proto


class BusProbeEvents:
    """ProbeEventSink over Redis pub/sub. Failures to publish are logged by the bus, never raised."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    async def phase_completed(self, test_id: str, service_id: str, phase: Phase) -> None:
        event = new_event("probes")
        event.connection_test_progress.CopyFrom(
            events_pb2.ConnectionTestProgress(test_id=test_id, service_id=service_id, phase=phase_to_proto(phase))
        )
        await self._bus.publish(Topic.CONNECTION_TESTS, event)

    async def test_finished(self, result: ConnectionTestResult) -> None:
        event = new_event("probes", correlation_id=result.correlation_id)
        event.connection_test_progress.CopyFrom(
            events_pb2.ConnectionTestProgress(
                test_id=result.id, service_id=result.service_id, result=result_to_proto(result)
            )
        )
        await self._bus.publish(Topic.CONNECTION_TESTS, event)

    async def error_recorded(self, error: CommunicationError) -> None:
        event = new_event("probes", correlation_id=error.details.correlation_id)
        event.communication_error_recorded.CopyFrom(events_pb2.CommunicationErrorRecorded(error=error_to_proto(error)))
        await self._bus.publish(Topic.COMMUNICATION_ERRORS, event)

    async def errors_recorded(self, errors: list[CommunicationError]) -> None:
        """Several errors in one pipelined publish (the periodic agents' batches)."""
        batch = []
        for error in errors:
            event = new_event("probes", correlation_id=error.details.correlation_id)
            event.communication_error_recorded.CopyFrom(
                events_pb2.CommunicationErrorRecorded(error=error_to_proto(error))
            )
            batch.append(event)
        await self._bus.publish_many(Topic.COMMUNICATION_ERRORS, batch)

    async def metrics_updated(
        self, updates: list[tuple[str, ResourceMetrics]], open_alerts: Mapping[str, list[ResourceAlert]]
    ) -> None:
        """ResourceMetricsUpdated for each sampled service, with the alerts open after its sample, in one
        pipelined publish."""
        batch = []
        for service_id, metrics in updates:
            event = new_event("probes")
            event.resource_metrics_updated.CopyFrom(
                events_pb2.ResourceMetricsUpdated(
                    service_id=service_id,
                    metrics=resource_metrics_to_proto(metrics),
                    open_alerts=[resource_alert_to_proto(a) for a in open_alerts.get(service_id, [])],
                )
            )
            batch.append(event)
        await self._bus.publish_many(Topic.RESOURCE_METRICS, batch)

    async def alerts_changed(self, alerts: list[ResourceAlert]) -> None:
        """ResourceAlertTriggered for each alert opened, and again (resolved_at set) when it resolves."""
        batch = []
        for alert in alerts:
            event = new_event("probes")
            event.resource_alert_triggered.CopyFrom(
                events_pb2.ResourceAlertTriggered(service_id=alert.service_id, alert=resource_alert_to_proto(alert))
            )
            batch.append(event)
        await self._bus.publish_many(Topic.RESOURCE_ALERTS, batch)
