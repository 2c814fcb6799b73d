"""gRPC transport of the health service: protobuf ⇄ domain, nothing else.

Domain errors raised below are mapped to status codes by the server's interceptor.
"""

from __future__ import annotations

from b2x.monitoring.v1 import health_pb2, health_pb2_grpc

from services.common.grpc_server import ServicerContext
from services.common.protoconv import from_timestamp
from services.health.overview.convert import HISTORY_BUCKET, history_to_proto, summary_to_proto
from services.health.overview.service import HealthOverview
from services.health.registry.convert import (
    definition_from_proto,
    definition_to_proto,
    service_to_proto,
    statuses_from_proto,
    types_from_proto,
)
from services.health.registry.service import RegistryService

SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["HealthService"].full_name


class HealthServicer(health_pb2_grpc.HealthServiceServicer):
    """The registry of connected services and their aggregated view over gRPC."""

    def __init__(self, registry: RegistryService, overview: HealthOverview) -> None:
        self._registry = registry
        self._overview = overview

    async def RegisterService(
        self, request: health_pb2.RegisterServiceRequest, context: ServicerContext
    ) -> health_pb2.RegisterServiceResponse:
        """Create, update or revive an API-owned service by slug."""
        service, created = await self._registry.register(definition_from_proto(request.definition))
        return health_pb2.RegisterServiceResponse(service=service_to_proto(service), created=created)

    async def GetService(
        self, request: health_pb2.GetServiceRequest, context: ServicerContext
    ) -> health_pb2.GetServiceResponse:
        """One service by id or slug, secrets masked."""
        service = await self._registry.get(request.service)
        return health_pb2.GetServiceResponse(service=service_to_proto(service))

    async def ListServices(
        self, request: health_pb2.ListServicesRequest, context: ServicerContext
    ) -> health_pb2.ListServicesResponse:
        """Every live service, optionally filtered by statuses and types, secrets masked."""
        services = await self._registry.list_services(
            statuses_from_proto(request.statuses), types_from_proto(request.types)
        )
        return health_pb2.ListServicesResponse(services=[service_to_proto(s) for s in services])

    async def RemoveService(
        self, request: health_pb2.RemoveServiceRequest, context: ServicerContext
    ) -> health_pb2.RemoveServiceResponse:
        """Soft-remove an API-owned service; returns it as it was at removal."""
        service = await self._registry.remove(request.service)
        return health_pb2.RemoveServiceResponse(service=service_to_proto(service))

    async def ListProbeTargets(
        self, request: health_pb2.ListProbeTargetsRequest, context: ServicerContext
    ) -> health_pb2.ListProbeTargetsResponse:
        """INTERNAL, for probe agents only: definitions exactly as configured, UNMASKED.

        Agents need the real endpoint and headers to connect (placeholders such as ${ERP_TOKEN}
        are expanded by the agent from its own environment). The gateway must never expose this
        RPC; everything public goes through GetService/ListServices, which mask secrets.
        """
        services = await self._registry.probe_targets(list(request.services))
        return health_pb2.ListProbeTargetsResponse(
            targets=[
                health_pb2.ProbeTarget(service_id=s.id, definition=definition_to_proto(s.definition)) for s in services
            ]
        )

    async def GetHealthSummary(
        self, request: health_pb2.GetHealthSummaryRequest, context: ServicerContext
    ) -> health_pb2.GetHealthSummaryResponse:
        """Overall status, counts per status and one row per live service."""
        return summary_to_proto(await self._overview.summary())

    async def GetHealthHistory(
        self, request: health_pb2.GetHealthHistoryRequest, context: ServicerContext
    ) -> health_pb2.GetHealthHistoryResponse:
        """Checks, failures, availability and latency per hour or day, of one service or all."""
        history = await self._overview.history(
            request.service,
            from_timestamp(request.range.start) if request.HasField("range") else None,
            from_timestamp(request.range.end) if request.HasField("range") else None,
            HISTORY_BUCKET.from_proto(request.bucket, "bucket"),
            request.time_zone,
        )
        return history_to_proto(history)
