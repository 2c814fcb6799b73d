"""Queries of connection tests and communication errors (REQ-001 /services/{id}/…)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from b2x.monitoring.v1 import common_pb2, probes_pb2

from gateway.context import Info
from gateway.enums import to_proto
from gateway.errors import gql_error
from gateway.probes import types as t
from gateway.probes.convert import error_to_gql, result_to_gql
from services.common.protoconv import set_timestamp

MAX_FIRST = 500


def _page(first: int, after: str | None) -> common_pb2.PageRequest:
    if not 1 <= first <= MAX_FIRST:
        raise gql_error(f"first must be between 1 and {MAX_FIRST} (got {first})", "BAD_USER_INPUT")
    return common_pb2.PageRequest(page_size=first, page_token=after or "")


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
    ) -> t.CommunicationErrorPage:
        info.context.require()
        request = probes_pb2.ListCommunicationErrorsRequest(
            service=service or "",
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
        info.context.require()
        clients = info.context.state.clients
        response = await clients.call(
            clients.probes,
            clients.probes.stub.GetCommunicationError,
            probes_pb2.GetCommunicationErrorRequest(error_id=str(id)),
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
