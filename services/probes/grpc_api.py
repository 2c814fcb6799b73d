"""gRPC transport of the probes service: protobuf ⇄ domain, nothing else.

Domain errors raised below are mapped to status codes by the server's interceptor.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from b2x.monitoring.v1 import probes_pb2, probes_pb2_grpc

from services.common.errors import UnavailableError
from services.common.grpc_server import ServicerContext
from services.common.protoconv import from_timestamp
from services.common.tasks import stop_tasks
from services.probes.convert import (
    ERROR_GROUP,
    ERROR_TYPE,
    SEVERITY,
    call_failure_from_proto,
    error_to_proto,
    phase_to_proto,
    result_to_proto,
)
from services.probes.domain import ErrorFilter, Page, Phase
from services.probes.insights.convert import (
    HISTORY_BUCKET,
    agent_to_proto,
    check_state_to_proto,
    format_from_proto,
    latency_point_to_proto,
    patterns_to_proto,
    resource_alert_to_proto,
    resource_point_to_proto,
    service_resources_to_proto,
)
from services.probes.insights.service import InsightsService
from services.probes.job_calls import JobCallReports
from services.probes.service import ConnectionTestRequest, ProbesService

SERVICE_NAME = probes_pb2.DESCRIPTOR.services_by_name["ProbesService"].full_name


def _range(request: Any) -> tuple[datetime | None, datetime | None]:
    if not request.HasField("time_range"):
        return None, None
    return from_timestamp(request.time_range.start), from_timestamp(request.time_range.end)


def _page_info(msg: Any, page: Page[Any]) -> None:
    msg.page_info.total_count = page.total_count
    msg.page_info.has_next_page = page.next_cursor is not None
    msg.page_info.next_page_token = page.next_cursor or ""


class ProbesServicer(probes_pb2_grpc.ProbesServiceServicer):
    def __init__(self, service: ProbesService, insights: InsightsService, calls: JobCallReports | None = None) -> None:
        self._service = service
        self._insights = insights
        self._calls = calls

    async def ReportCallFailures(
        self, request: probes_pb2.ReportCallFailuresRequest, context: ServicerContext
    ) -> probes_pb2.ReportCallFailuresResponse:
        if self._calls is None:
            raise UnavailableError("this probes service does not accept job call failures (no jobs service configured)")
        failures = [call_failure_from_proto(f, n) for n, f in enumerate(request.failures)]
        errors = await self._calls.report(request.worker_id, failures)
        return probes_pb2.ReportCallFailuresResponse(error_ids=[e.id for e in errors])

    async def TestConnection(
        self, request: probes_pb2.TestConnectionRequest, context: ServicerContext
    ) -> probes_pb2.TestConnectionResponse:
        result = await self._service.test_connection(ConnectionTestRequest(request.service, request.timeout_seconds))
        return probes_pb2.TestConnectionResponse(result=result_to_proto(result))

    async def StreamConnectionTest(
        self, request: probes_pb2.StreamConnectionTestRequest, context: ServicerContext
    ) -> AsyncIterator[probes_pb2.StreamConnectionTestResponse]:
        test_id = str(uuid.uuid4())
        phases: asyncio.Queue[Phase] = asyncio.Queue()
        running = asyncio.create_task(
            self._service.test_connection(
                ConnectionTestRequest(request.service, request.timeout_seconds, test_id), on_phase=phases.put_nowait
            )
        )
        try:
            while not running.done() or not phases.empty():
                if phases.empty():
                    waiter = asyncio.create_task(phases.get())
                    await asyncio.wait({waiter, running}, return_when=asyncio.FIRST_COMPLETED)
                    if not waiter.done():
                        waiter.cancel()
                        continue
                    phase = waiter.result()
                else:
                    phase = phases.get_nowait()
                yield probes_pb2.StreamConnectionTestResponse(test_id=test_id, phase=phase_to_proto(phase))
            result = await running
            yield probes_pb2.StreamConnectionTestResponse(test_id=test_id, result=result_to_proto(result))
        finally:
            if not running.done():
                await stop_tasks([running])

    async def ListConnectionTests(
        self, request: probes_pb2.ListConnectionTestsRequest, context: ServicerContext
    ) -> probes_pb2.ListConnectionTestsResponse:
        page = await self._service.list_tests(request.service, request.page.page_size, request.page.page_token or None)
        response = probes_pb2.ListConnectionTestsResponse(results=[result_to_proto(r) for r in page.items])
        _page_info(response, page)
        return response

    async def GetConnectionTest(
        self, request: probes_pb2.GetConnectionTestRequest, context: ServicerContext
    ) -> probes_pb2.GetConnectionTestResponse:
        result = await self._service.get_test(request.test_id)
        return probes_pb2.GetConnectionTestResponse(result=result_to_proto(result))

    async def ListCommunicationErrors(
        self, request: probes_pb2.ListCommunicationErrorsRequest, context: ServicerContext
    ) -> probes_pb2.ListCommunicationErrorsResponse:
        flt = _error_filter(request)
        page = await self._service.list_errors(flt, request.page.page_size, request.page.page_token or None)
        response = probes_pb2.ListCommunicationErrorsResponse(errors=[error_to_proto(e) for e in page.items])
        _page_info(response, page)
        return response

    async def GetCommunicationError(
        self, request: probes_pb2.GetCommunicationErrorRequest, context: ServicerContext
    ) -> probes_pb2.GetCommunicationErrorResponse:
        error = await self._service.get_error(request.error_id, request.tenant_id.strip())
        return probes_pb2.GetCommunicationErrorResponse(error=error_to_proto(error))

    async def TestAllConnections(
        self, request: probes_pb2.TestAllConnectionsRequest, context: ServicerContext
    ) -> AsyncIterator[probes_pb2.TestAllConnectionsResponse]:
        total, results = await self._service.test_all(list(request.services), request.timeout_seconds)
        completed = 0
        async for result in results:
            completed += 1
            yield probes_pb2.TestAllConnectionsResponse(
                result=result_to_proto(result), completed=completed, total=total
            )

    async def ListCheckStates(
        self, request: probes_pb2.ListCheckStatesRequest, context: ServicerContext
    ) -> probes_pb2.ListCheckStatesResponse:
        states = await self._insights.check_states(list(request.services))
        return probes_pb2.ListCheckStatesResponse(states=[check_state_to_proto(s) for s in states])

    async def GetErrorPatterns(
        self, request: probes_pb2.GetErrorPatternsRequest, context: ServicerContext
    ) -> probes_pb2.GetErrorPatternsResponse:
        start, end = _range(request)
        report = await self._insights.error_patterns(
            request.service, start, end, request.timezone, request.max_fingerprints
        )
        return patterns_to_proto(report)

    async def ExportCommunicationErrors(
        self, request: probes_pb2.ExportCommunicationErrorsRequest, context: ServicerContext
    ) -> probes_pb2.ExportCommunicationErrorsResponse:
        flt = _error_filter(request)
        export = await self._insights.export_errors(
            [i.strip() for i in request.error_ids if i.strip()], flt, format_from_proto(request.format), request.limit
        )
        return probes_pb2.ExportCommunicationErrorsResponse(
            content=export.content.decode(), filename=export.filename, content_type=export.content_type,
            error_count=export.count, truncated=export.truncated,
        )  # fmt: skip

    async def ExportConnectionTest(
        self, request: probes_pb2.ExportConnectionTestRequest, context: ServicerContext
    ) -> probes_pb2.ExportConnectionTestResponse:
        export = await self._insights.export_test(request.test_id, format_from_proto(request.format))
        return probes_pb2.ExportConnectionTestResponse(
            content=export.content, filename=export.filename, content_type=export.content_type
        )

    async def GetLatencyHistory(
        self, request: probes_pb2.GetLatencyHistoryRequest, context: ServicerContext
    ) -> probes_pb2.GetLatencyHistoryResponse:
        start, end = _range(request)
        service_id, bucket, points, summary = await self._insights.latency_history(
            request.service, start, end, HISTORY_BUCKET.from_proto(request.bucket, "bucket")
        )
        return probes_pb2.GetLatencyHistoryResponse(
            service_id=service_id, bucket=HISTORY_BUCKET.to_proto(bucket),
            points=[latency_point_to_proto(p) for p in points],
            summary=latency_point_to_proto(summary),
        )  # fmt: skip

    async def GetResourceMetrics(
        self, request: probes_pb2.GetResourceMetricsRequest, context: ServicerContext
    ) -> probes_pb2.GetResourceMetricsResponse:
        resources = await self._insights.resources(request.service)
        return probes_pb2.GetResourceMetricsResponse(resources=service_resources_to_proto(resources))

    async def ListResourceMetrics(
        self, request: probes_pb2.ListResourceMetricsRequest, context: ServicerContext
    ) -> probes_pb2.ListResourceMetricsResponse:
        found = await self._insights.list_resources(list(request.services))
        return probes_pb2.ListResourceMetricsResponse(resources=[service_resources_to_proto(r) for r in found])

    async def GetResourceHistory(
        self, request: probes_pb2.GetResourceHistoryRequest, context: ServicerContext
    ) -> probes_pb2.GetResourceHistoryResponse:
        start, end = _range(request)
        service_id, bucket, points = await self._insights.resource_history(
            request.service, start, end, HISTORY_BUCKET.from_proto(request.bucket, "bucket")
        )
        return probes_pb2.GetResourceHistoryResponse(
            service_id=service_id,
            bucket=HISTORY_BUCKET.to_proto(bucket),
            points=[resource_point_to_proto(p) for p in points],
        )

    async def ListResourceAlerts(
        self, request: probes_pb2.ListResourceAlertsRequest, context: ServicerContext
    ) -> probes_pb2.ListResourceAlertsResponse:
        since, until = _range(request)
        page = await self._insights.alerts(
            request.service, request.active_only, since, until, request.page.page_size, request.page.page_token or None
        )
        response = probes_pb2.ListResourceAlertsResponse(alerts=[resource_alert_to_proto(a) for a in page.items])
        _page_info(response, page)
        return response

    async def ListAgents(
        self, request: probes_pb2.ListAgentsRequest, context: ServicerContext
    ) -> probes_pb2.ListAgentsResponse:
        return probes_pb2.ListAgentsResponse(agents=[agent_to_proto(a) for a in await self._insights.agents()])


def _error_filter(
    request: probes_pb2.ListCommunicationErrorsRequest | probes_pb2.ExportCommunicationErrorsRequest,
) -> ErrorFilter:
    since, until = _range(request)
    return ErrorFilter(
        service=request.service.strip(),
        types=tuple(ERROR_TYPE.require(t, "types") for t in request.types),
        groups=tuple(ERROR_GROUP.require(g, "groups") for g in request.groups),
        since=since,
        until=until,
        severities=tuple(SEVERITY.require(s, "severities") for s in request.severities),
        tenant_id=request.tenant_id.strip(),
        correlated_job_id=(
            request.correlated_job_id.strip() if isinstance(request, probes_pb2.ListCommunicationErrorsRequest) else ""
        ),
    )
