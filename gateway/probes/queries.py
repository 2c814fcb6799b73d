"""Queries of the probes service: connection tests and communication errors (REQ-001 /services/{id}/…),
error patterns, exports, latency and resource history, check states, resources and probe agents."""

from __future__ import annotations

import base64
from datetime import datetime

import strawberry
from b2x.monitoring.v1 import common_pb2, probes_pb2

from gateway.auth import Role
from gateway.context import Info
from gateway.enums import to_proto
from gateway.errors import gql_error
from gateway.probes import types as t
from gateway.probes.convert import (
    agent_to_gql,
    alert_to_gql,
    check_state_to_gql,
    error_to_gql,
    latency_to_gql,
    patterns_to_gql,
    resource_history_to_gql,
    resources_of,
    result_to_gql,
)
from services.common.protoconv import set_timestamp

MAX_FIRST = 500


def _page(first: int, after: str | None) -> common_pb2.PageRequest:
    if not 1 <= first <= MAX_FIRST:
        raise gql_error(f"first must be between 1 and {MAX_FIRST} (got {first})", "BAD_USER_INPUT")
    return common_pb2.PageRequest(page_size=first, page_token=after or "")


def _range(message: object, since: datetime | None, until: datetime | None) -> None:
    if since or until:
        set_timestamp(message.time_range.start, since)  # type: ignore[attr-defined]
        set_timestamp(message.time_range.end, until)  # type: ignore[attr-defined]


def _bucket(bucket: t.HistoryBucket | None) -> int:
    return to_proto(probes_pb2.HistoryBucket, bucket) if bucket else 0


@strawberry.type
class ProbeQueries:
    @strawberry.field(
        description="Communication errors, newest first (REQ-001 GET /services/{id}/communication-errors)"
    )
    async def communication_errors(
        self,
        info: Info,
        service: str | None = None,
        types: list[t.CommunicationErrorType] | None = None,
        groups: list[t.CommunicationErrorGroup] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        first: int = 50,
        after: str | None = None,
        severities: list[t.ErrorSeverity] | None = None,
        correlated_job_id: strawberry.ID | None = None,
    ) -> t.CommunicationErrorPage:
        principal = info.context.require()
        request = probes_pb2.ListCommunicationErrorsRequest(
            service=service or "",
            # A tenant-scoped key never sees errors correlated to another tenant's jobs.
            tenant_id=principal.tenant_id or "",
            correlated_job_id=str(correlated_job_id or ""),
            types=[to_proto(probes_pb2.CommunicationErrorType, x) for x in types or []],
            groups=[to_proto(probes_pb2.CommunicationErrorGroup, x) for x in groups or []],
            severities=[to_proto(common_pb2.ErrorSeverity, x) for x in severities or []],
            page=_page(first, after),
        )
        if since or until:
            set_timestamp(request.time_range.start, since)
            set_timestamp(request.time_range.end, until)
        clients = info.context.state.clients
        response = await clients.call(clients.probes, clients.probes.stub.ListCommunicationErrors, request)
        return t.CommunicationErrorPage(
            errors=[error_to_gql(e) for e in response.errors],
            has_next_page=response.page_info.has_next_page,
            end_cursor=response.page_info.next_page_token or None,
            total_count=response.page_info.total_count,
        )

    @strawberry.field(description="One communication error with its request/response evidence")
    async def communication_error(self, info: Info, id: strawberry.ID) -> t.CommunicationError:
        principal = info.context.require()
        clients = info.context.state.clients
        response = await clients.call(
            clients.probes,
            clients.probes.stub.GetCommunicationError,
            probes_pb2.GetCommunicationErrorRequest(error_id=str(id), tenant_id=principal.tenant_id or ""),
        )
        return error_to_gql(response.error)

    @strawberry.field(description="Stored connection test results, newest first, for comparison over time")
    async def connection_tests(
        self, info: Info, service: str | None = None, first: int = 20, after: str | None = None
    ) -> t.ConnectionTestPage:
        info.context.require()
        request = probes_pb2.ListConnectionTestsRequest(service=service or "", page=_page(first, after))
        clients = info.context.state.clients
        response = await clients.call(clients.probes, clients.probes.stub.ListConnectionTests, request)
        return t.ConnectionTestPage(
            results=[result_to_gql(r) for r in response.results],
            has_next_page=response.page_info.has_next_page,
            end_cursor=response.page_info.next_page_token or None,
        )

    @strawberry.field(description="One connection test result (REQ-001 GET /services/{id}/test/{testId})")
    async def connection_test(self, info: Info, id: strawberry.ID) -> t.ConnectionTestResult:
        info.context.require()
        clients = info.context.state.clients
        response = await clients.call(
            clients.probes, clients.probes.stub.GetConnectionTest, probes_pb2.GetConnectionTestRequest(test_id=str(id))
        )
        return result_to_gql(response.result)

    @strawberry.field(description="Error pattern analysis: fingerprints, heatmap, top types, trend, recurring spikes")
    async def error_patterns(
        self,
        info: Info,
        service: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        timezone: str | None = None,
        max_fingerprints: int = 20,
    ) -> t.ErrorPatterns:
        info.context.require()
        request = probes_pb2.GetErrorPatternsRequest(
            service=service or "", timezone=timezone or "", max_fingerprints=max_fingerprints
        )
        _range(request, since, until)
        clients = info.context.state.clients
        response = await clients.call(clients.probes, clients.probes.stub.GetErrorPatterns, request)
        return patterns_to_gql(response)

    @strawberry.field(description="Errors for a support ticket: JSON, or TEXT for the 'Report to Provider' template")
    async def export_communication_errors(
        self,
        info: Info,
        ids: list[strawberry.ID] | None = None,
        service: str | None = None,
        types: list[t.CommunicationErrorType] | None = None,
        groups: list[t.CommunicationErrorGroup] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        format: t.ExportFormat | None = None,
        limit: int = 500,
        severities: list[t.ErrorSeverity] | None = None,
    ) -> t.ExportFile:
        principal = info.context.require()
        request = probes_pb2.ExportCommunicationErrorsRequest(
            error_ids=[str(i) for i in ids or []],
            tenant_id=principal.tenant_id or "",
            service=service or "",
            types=[to_proto(probes_pb2.CommunicationErrorType, x) for x in types or []],
            groups=[to_proto(probes_pb2.CommunicationErrorGroup, x) for x in groups or []],
            format=to_proto(probes_pb2.ExportFormat, format) if format else probes_pb2.EXPORT_FORMAT_JSON,
            limit=limit,
            severities=[to_proto(common_pb2.ErrorSeverity, x) for x in severities or []],
        )
        _range(request, since, until)
        clients = info.context.state.clients
        r = await clients.call(clients.probes, clients.probes.stub.ExportCommunicationErrors, request)
        return t.ExportFile(filename=r.filename, content_type=r.content_type, content=r.content, base64=False,
                            item_count=r.error_count, truncated=r.truncated)  # fmt: skip

    @strawberry.field(description="A connection test report as JSON, TEXT or PDF (base64)")
    async def export_connection_test(
        self,
        info: Info,
        id: strawberry.ID,
        format: t.ExportFormat | None = None,
    ) -> t.ExportFile:
        info.context.require()
        request = probes_pb2.ExportConnectionTestRequest(
            test_id=str(id),
            format=to_proto(probes_pb2.ExportFormat, format) if format else probes_pb2.EXPORT_FORMAT_JSON,
        )
        clients = info.context.state.clients
        r = await clients.call(clients.probes, clients.probes.stub.ExportConnectionTest, request)
        binary = not r.content_type.startswith(("text/", "application/json"))
        content = base64.b64encode(r.content).decode() if binary else r.content.decode("utf-8")
        return t.ExportFile(filename=r.filename, content_type=r.content_type, content=content, base64=binary,
                            item_count=1, truncated=False)  # fmt: skip

    @strawberry.field(description="Historical latency and availability of a service (from rollups)")
    async def latency_history(
        self,
        info: Info,
        service: str,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket: t.HistoryBucket | None = None,
    ) -> t.LatencyHistory:
        info.context.require()
        request = probes_pb2.GetLatencyHistoryRequest(service=service, bucket=_bucket(bucket))  # type: ignore[arg-type]
        _range(request, since, until)
        clients = info.context.state.clients
        return latency_to_gql(await clients.call(clients.probes, clients.probes.stub.GetLatencyHistory, request))

    @strawberry.field(description="The latest periodic check of each service, with its circuit breaker")
    async def check_states(self, info: Info, services: list[str] | None = None) -> list[t.CheckState]:
        info.context.require()
        clients = info.context.state.clients
        response = await clients.call(
            clients.probes,
            clients.probes.stub.ListCheckStates,
            probes_pb2.ListCheckStatesRequest(services=services or []),
        )
        return [check_state_to_gql(s) for s in response.states]

    @strawberry.field(description="Current CPU, memory, pool, threads and queue of sampled services")
    async def resources(self, info: Info, services: list[str] | None = None) -> list[t.ServiceResources]:
        info.context.require()
        clients = info.context.state.clients
        response = await clients.call(
            clients.probes,
            clients.probes.stub.ListResourceMetrics,
            probes_pb2.ListResourceMetricsRequest(services=services or []),
        )
        return [resources_of(r) for r in response.resources]

    @strawberry.field(description="Resource history of a service (1 h / 24 h / 7 d views)")
    async def resource_history(
        self,
        info: Info,
        service: str,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket: t.HistoryBucket | None = None,
    ) -> t.ResourceHistory:
        info.context.require()
        request = probes_pb2.GetResourceHistoryRequest(service=service, bucket=_bucket(bucket))  # type: ignore[arg-type]
        _range(request, since, until)
        clients = info.context.state.clients
        return resource_history_to_gql(
            await clients.call(clients.probes, clients.probes.stub.GetResourceHistory, request)
        )

    @strawberry.field(description="Resource alert history (REQ-001 GET /services/{id}/resources/alerts)")
    async def resource_alerts(
        self,
        info: Info,
        service: str | None = None,
        active_only: bool = False,
        since: datetime | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> t.ResourceAlertPage:
        info.context.require()
        request = probes_pb2.ListResourceAlertsRequest(
            service=service or "", active_only=active_only, page=_page(first, after)
        )
        _range(request, since, None)
        clients = info.context.state.clients
        response = await clients.call(clients.probes, clients.probes.stub.ListResourceAlerts, request)
        return t.ResourceAlertPage(
            alerts=[alert_to_gql(a) for a in response.alerts],
            has_next_page=response.page_info.has_next_page,
            end_cursor=response.page_info.next_page_token or None,
        )

    @strawberry.field(description="Probe agents alive now and the targets they hold leases for (admin)")
    async def probe_agents(self, info: Info) -> list[t.ProbeAgent]:
        info.context.require(Role.ADMIN)
        clients = info.context.state.clients
        response = await clients.call(clients.probes, clients.probes.stub.ListAgents, probes_pb2.ListAgentsRequest())
        return [agent_to_gql(a) for a in response.agents]
