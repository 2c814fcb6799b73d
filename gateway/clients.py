"""gRPC clients of the three services, with deadlines and error translation in one place."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import structlog
from b2x.monitoring.v1 import health_pb2_grpc, jobs_pb2_grpc, probes_pb2_grpc
from grpc_health.v1 import health_pb2 as grpc_health_pb2
from grpc_health.v1 import health_pb2_grpc as grpc_health_pb2_grpc

from gateway.errors import from_rpc_error
from services.common.channels import open_channel
from services.common.grpc_server import CORRELATION_HEADER
from services.common.keepalive import KEEPALIVE_SECONDS
from services.common.tls import GrpcTLS

R = TypeVar("R")

_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 8 * 1024 * 1024)]


@dataclass
class ServiceClient:
    """One service: its channel, stub and name (for messages)."""

    name: str
    address: str
    channel: grpc.aio.Channel
    stub: Any
    health: grpc_health_pb2_grpc.HealthStub = field(repr=False)


def _metadata() -> tuple[tuple[str, str], ...]:
    """The caller's request id travels to the service as its correlation id (a new one when there is none)."""
    correlation = structlog.contextvars.get_contextvars().get("request_id") or str(uuid.uuid4())
    return ((CORRELATION_HEADER, str(correlation)),)


class ServiceClients:
    """Channels to jobs, health and probes; `call` adds the deadline and correlation id."""

    def __init__(
        self,
        jobs_addr: str,
        health_addr: str,
        probes_addr: str,
        deadline: float,
        tls: GrpcTLS | None = None,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ) -> None:
        self.deadline = deadline
        self._tls = tls
        self._keepalive = keepalive_seconds
        self.jobs = self._client("jobs", jobs_addr, jobs_pb2_grpc.JobsServiceStub)
        self.health = self._client("health", health_addr, health_pb2_grpc.HealthServiceStub)
        self.probes = self._client("probes", probes_addr, probes_pb2_grpc.ProbesServiceStub)

    def _client(self, name: str, address: str, stub_cls: Callable[[grpc.aio.Channel], Any]) -> ServiceClient:
        channel = open_channel(
            address, self._tls, target=name, options=_CHANNEL_OPTIONS, keepalive_seconds=self._keepalive
        )
        return ServiceClient(name, address, channel, stub_cls(channel), grpc_health_pb2_grpc.HealthStub(channel))

    def all(self) -> list[ServiceClient]:
        return [self.jobs, self.health, self.probes]

    async def call(
        self, client: ServiceClient, method: Callable[..., Awaitable[R]], request: Any, *, timeout: float | None = None
    ) -> R:
        """Invoke a unary RPC; gRPC failures become GraphQL errors with codes."""
        try:
            return await method(request, timeout=timeout or self.deadline, metadata=_metadata())
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error, client.name) from None

    @asynccontextmanager
    async def stream(
        self, client: ServiceClient, method: Callable[..., Any], request: Any, *, timeout: float
    ) -> AsyncIterator[AsyncIterator[Any]]:
        """A server-streaming RPC, like `call`: a deadline (for the whole stream), the correlation id, gRPC
        failures as GraphQL errors; the call is cancelled when the block ends (the subscriber went away)."""
        rpc = method(request, timeout=timeout, metadata=_metadata())

        async def messages() -> AsyncIterator[Any]:
            try:
                async for message in rpc:
                    yield message
            except grpc.aio.AioRpcError as error:
                raise from_rpc_error(error, client.name) from None

        try:
            yield messages()
        finally:
            rpc.cancel()

    async def serving(self, client: ServiceClient, timeout: float = 1.5) -> bool:
        try:
            response = await client.health.Check(grpc_health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except (TimeoutError, grpc.aio.AioRpcError):
            return False
        return bool(response.status == grpc_health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        for client in self.all():
            await client.channel.close(None)
