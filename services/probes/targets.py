"""Targets from the health service's registry, over its internal `ListProbeTargets` RPC."""

from __future__ import annotations

import grpc
from b2x.monitoring.v1 import health_pb2, health_pb2_grpc

from services.common.channels import open_channel
from services.common.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError
from services.common.logging import get_logger
from services.common.tls import GrpcTLS
from services.probes.convert import target_from_proto
from services.probes.domain import Target

log = get_logger(__name__)


class HealthTargetSource:
    """TargetSource over gRPC. A channel per lookup: on-demand tests are rare, and nothing is left open."""

    def __init__(self, address: str, deadline_seconds: float, tls: GrpcTLS | None = None) -> None:
        self._address = address
        self._deadline = deadline_seconds
        self._tls = tls

    async def get(self, service: str) -> Target:
        try:
            response = await self._call([service], f"service {service!r}")
        except NotFoundError:
            raise NotFoundError(f"no connected service {service!r}") from None
        if not response.targets:
            raise NotFoundError(f"no connected service {service!r}")
        return target_from_proto(response.targets[0])

    async def list_enabled(self) -> list[Target]:
        """Every enabled service; one whose definition cannot be probed is skipped with a warning."""
        return await self.list_named([])

    async def list_named(self, services: list[str]) -> list[Target]:
        """The named services (even disabled ones), or every enabled one when none is named."""
        response = await self._call(services, "the connected services")
        found: list[Target] = []
        for target in response.targets:
            try:
                found.append(target_from_proto(target))
            except FailedPreconditionError as error:
                log.warning("service skipped by the agents", service=target.definition.slug, reason=error.message)
        return found

    async def _call(self, services: list[str], what: str) -> health_pb2.ListProbeTargetsResponse:
        request = health_pb2.ListProbeTargetsRequest(services=services)
        try:
            async with open_channel(self._address, self._tls, target="health") as channel:
                stub = health_pb2_grpc.HealthServiceStub(channel)
                response = await stub.ListProbeTargets(request, timeout=self._deadline)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code == grpc.StatusCode.NOT_FOUND:
                raise NotFoundError(error.details() or f"no connected service among {services}") from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgumentError(error.details() or f"invalid service reference in {services}") from None
            raise UnavailableError(
                f"cannot look up {what}: the health service at {self._address} is unavailable "
                f"({code.name}: {error.details() or 'no details'})"
            ) from None
        return response
