"""Queries of connected services (REQ-001 GET /services, /services/{id})."""

from __future__ import annotations

import strawberry
from b2x.monitoring.v1 import common_pb2, health_pb2

from gateway.context import Info
from gateway.enums import to_proto
from gateway.registry import types as t
from gateway.registry.convert import service_to_gql


@strawberry.type
class RegistryQueries:
    @strawberry.field(description="Connected services with their current status, filtered by status and type")
    async def services(
        self,
        info: Info,
        status: list[t.ServiceStatus] | None = None,
        type: list[t.ServiceType] | None = None,
    ) -> list[t.ConnectedService]:
        info.context.require()
        request = health_pb2.ListServicesRequest(
            statuses=[to_proto(common_pb2.ServiceStatus, s) for s in status or []],
            types=[to_proto(common_pb2.ServiceType, s) for s in type or []],
        )
        clients = info.context.state.clients
        response = await clients.call(clients.health, clients.health.stub.ListServices, request)
        return [service_to_gql(s) for s in response.services]

    @strawberry.field(description="One connected service by id or slug (REQ-001 GET /services/{id})")
    async def service(self, info: Info, id: str) -> t.ConnectedService:
        info.context.require()
        clients = info.context.state.clients
        response = await clients.call(
            clients.health, clients.health.stub.GetService, health_pb2.GetServiceRequest(service=id)
        )
        return service_to_gql(response.service)
