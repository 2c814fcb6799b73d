"""Live connection tests (follow any test's phases, or run one and stream it), and live resource figures
and resource alerts."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from b2x.monitoring.v1 import events_pb2, probes_pb2

from gateway.auth import Role
from gateway.context import Info
from gateway.live import follow, for_service
from gateway.probes import types as t
from gateway.probes.convert import alert_to_gql, phase_to_gql, result_to_gql
from gateway.registry.convert import resources_to_gql
from services.common.events import Topic

TEST_STREAM_DEADLINE = 120.0  # the whole streamed test, phases and retries included


@strawberry.type
class ProbeSubscriptions:
    @strawberry.subscription(
        description="Phases and results of connection tests as they happen, optionally for one service or test"
    )
    async def connection_test_progress(
        self, info: Info, service_id: strawberry.ID | None = None, test_id: strawberry.ID | None = None
    ) -> AsyncGenerator[t.ConnectionTestUpdate, None]:
        ctx = info.context
        ctx.require()
        of_service = for_service(service_id)

        def keep(progress: events_pb2.ConnectionTestProgress) -> bool:
            return of_service(progress) and (not test_id or progress.test_id == str(test_id))

        async with follow(ctx, Topic.CONNECTION_TESTS, "connection_test_progress", keep) as updates:
            async for progress in updates:
                yield t.ConnectionTestUpdate(
                    test_id=progress.test_id,
                    service_id=progress.service_id or None,
                    phase=phase_to_gql(progress.phase) if progress.HasField("phase") else None,
                    result=result_to_gql(progress.result) if progress.HasField("result") else None,
                )

    @strawberry.subscription(
        description="Run a connection test now (operator) and stream each phase as it completes, then the result"
    )
    async def run_connection_test(self, info: Info, service: str) -> AsyncGenerator[t.ConnectionTestUpdate, None]:
        ctx = info.context
        principal = ctx.require(Role.OPERATOR)
        clients = ctx.state.clients
        await ctx.state.audit.record(
            principal, action="runConnectionTest", target=service, arguments={}, outcome="ok", client_ip=ctx.client_ip
        )
        request = probes_pb2.StreamConnectionTestRequest(service=service)
        async with clients.stream(
            clients.probes, clients.probes.stub.StreamConnectionTest, request, timeout=TEST_STREAM_DEADLINE
        ) as updates:
            async for update in updates:
                kind = update.WhichOneof("update")
                yield t.ConnectionTestUpdate(
                    test_id=update.test_id,
                    service_id=update.result.service_id or None if kind == "result" else None,
                    phase=phase_to_gql(update.phase) if kind == "phase" else None,
                    result=result_to_gql(update.result) if kind == "result" else None,
                )

    @strawberry.subscription(
        description="Live resource figures (SignalR ResourceMetricsUpdated), optionally of one service"
    )
    async def resource_metrics_updated(
        self, info: Info, service_id: strawberry.ID | None = None
    ) -> AsyncGenerator[t.ResourceMetricsEvent, None]:
        info.context.require()
        keep = for_service(service_id)
        async with follow(info.context, Topic.RESOURCE_METRICS, "resource_metrics_updated", keep) as updates:
            async for update in updates:
                yield t.ResourceMetricsEvent(service_id=update.service_id, metrics=resources_to_gql(update.metrics))

    @strawberry.subscription(description="Resource threshold breaches (SignalR ResourceAlertTriggered)")
    async def resource_alert_triggered(
        self, info: Info, service_id: strawberry.ID | None = None
    ) -> AsyncGenerator[t.ResourceAlertEvent, None]:
        info.context.require()
        keep = for_service(service_id)
        async with follow(info.context, Topic.RESOURCE_ALERTS, "resource_alert_triggered", keep) as updates:
            async for update in updates:
                yield t.ResourceAlertEvent(service_id=update.service_id, alert=alert_to_gql(update.alert))
