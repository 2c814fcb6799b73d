"""gRPC server bootstrap shared by the services.

`GrpcServer` builds a `grpc.aio` server with:
- `grpc.health.v1` (the "" service and each named service), kept NOT_SERVING while PostgreSQL is
  unreachable, and set NOT_SERVING first on shutdown so load balancers drain before the stop; plus
  `b2x.liveness`, SERVING for as long as the process runs (Kubernetes liveness probes ask it);
- server reflection, so `grpcurl -plaintext host:port list` works without proto files;
- `ErrorMappingInterceptor`: binds request context into logs, counts and times every call, and maps
  domain errors to status codes through the one table in `STATUS_FOR`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from redis.exceptions import RedisError

from services.common import errors
from services.common.db import CONNECTION_ERRORS
from services.common.keepalive import KEEPALIVE_SECONDS, server_options
from services.common.logging import get_logger
from services.common.metrics import GRPC_LATENCY, GRPC_REQUESTS
from services.common.tasks import stop_tasks
from services.common.tls import GrpcTLS

log = get_logger(__name__)

# The one table from domain errors to gRPC status codes.
STATUS_FOR: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    errors.ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.UnavailableError: grpc.StatusCode.UNAVAILABLE,
}

ServicerContext = grpc.aio.ServicerContext[Any, Any]
CORRELATION_HEADER = "x-correlation-id"
# grpc.health.v1 service that stays SERVING while the process runs, even when PostgreSQL is away and
# the others turn NOT_SERVING: what a liveness probe asks (restarting cannot bring a database back).
LIVENESS_SERVICE = "b2x.liveness"
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


# OSErrors about local files (a missing ca_file...) are defects or configuration, not a database outage.
_LOCAL_FILE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and caller-facing message for an exception raised by a handler."""
    if isinstance(error, errors.DomainError):
        for cls in type(error).__mro__:
            if cls in STATUS_FOR:
                return STATUS_FOR[cls], error.message
        return grpc.StatusCode.UNKNOWN, error.message
    if isinstance(error, CONNECTION_ERRORS) and not isinstance(error, _LOCAL_FILE_ERRORS):
        return grpc.StatusCode.UNAVAILABLE, "the database is unavailable; try again shortly"
    if isinstance(error, RedisError):
        return grpc.StatusCode.UNAVAILABLE, "Redis is unavailable; try again shortly"
    return grpc.StatusCode.INTERNAL, "internal error"


def _metadata(context: ServicerContext) -> dict[str, str]:
    pairs = context.invocation_metadata() or ()
    return {k: v for k, v in pairs if isinstance(v, str)}


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Logs, counts and times every call; turns exceptions into status codes with clear messages."""

    def __init__(self, service_name: str) -> None:
        self._service = service_name

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        full = handler_call_details.method
        if full.startswith(("/grpc.health.", "/grpc.reflection.")):
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method),  # type: ignore[arg-type]
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _bind(self, context: ServicerContext, method: str) -> None:
        meta = _metadata(context)
        correlation = meta.get(CORRELATION_HEADER) or str(uuid.uuid4())
        structlog.contextvars.bind_contextvars(rpc=method, correlation_id=correlation, request_id=str(uuid.uuid4())[:8])

    async def _fail(self, context: ServicerContext, method: str, error: BaseException) -> None:
        code, message = status_for(error)
        GRPC_REQUESTS.labels(self._service, method, code.name).inc()
        if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
            log.exception("rpc failed", code=code.name)
        elif code is grpc.StatusCode.UNAVAILABLE:
            log.warning("rpc failed; dependency unavailable", code=code.name, error=str(error))
        else:
            log.info("rpc rejected", code=code.name, reason=message)
        await context.abort(code, message)

    def _wrap_unary(self, behavior: Callable[..., Awaitable[Any]], method: str) -> Callable[..., Awaitable[Any]]:
        async def wrapper(request: Any, context: ServicerContext) -> Any:
            self._bind(context, method)
            started = time.perf_counter()
            try:
                response = await behavior(request, context)
            except asyncio.CancelledError:
                GRPC_REQUESTS.labels(self._service, method, "CANCELLED").inc()
                raise
            except grpc.aio.AbortError:
                GRPC_REQUESTS.labels(self._service, method, (context.code() or grpc.StatusCode.UNKNOWN).name).inc()
                raise
            except Exception as error:
                await self._fail(context, method, error)
            else:
                GRPC_REQUESTS.labels(self._service, method, "OK").inc()
                return response
            finally:
                GRPC_LATENCY.labels(self._service, method).observe(time.perf_counter() - started)
                structlog.contextvars.unbind_contextvars("rpc", "correlation_id", "request_id")

        return wrapper

    def _wrap_stream(
        self, behavior: Callable[..., AsyncIterator[Any]], method: str
    ) -> Callable[..., AsyncIterator[Any]]:
        async def wrapper(request: Any, context: ServicerContext) -> AsyncIterator[Any]:
            self._bind(context, method)
            started = time.perf_counter()
            try:
                async for item in behavior(request, context):
                    yield item
            except asyncio.CancelledError:
                GRPC_REQUESTS.labels(self._service, method, "CANCELLED").inc()
                raise
            except grpc.aio.AbortError:
                GRPC_REQUESTS.labels(self._service, method, (context.code() or grpc.StatusCode.UNKNOWN).name).inc()
                raise
            except Exception as error:
                await self._fail(context, method, error)
            else:
                GRPC_REQUESTS.labels(self._service, method, "OK").inc()
            finally:
                GRPC_LATENCY.labels(self._service, method).observe(time.perf_counter() - started)

        return wrapper


Registrar = Callable[[grpc.aio.Server], None]
ReadinessCheck = Callable[[], Awaitable[bool]]


class GrpcServer:
    """A started gRPC server with health, reflection and the error-mapping interceptor."""

    def __init__(
        self,
        name: str,
        service_names: Iterable[str],
        registrars: Iterable[Registrar],
        *,
        readiness: ReadinessCheck | None = None,
        readiness_interval: float = 5.0,
        on_start: Callable[[], Awaitable[None]] | None = None,
        on_stop: Callable[[], Awaitable[None]] | None = None,
        on_serving: Callable[[], Awaitable[None]] | None = None,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ) -> None:
        self._on_start = on_start
        self._on_serving = on_serving
        self._on_stop = on_stop
        self.name = name
        self.service_names = list(service_names)
        self._readiness = readiness
        self._readiness_interval = readiness_interval
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self.server = grpc.aio.server(
            interceptors=[ErrorMappingInterceptor(name)],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
                *server_options(keepalive_seconds),
            ],
        )
        for register in registrars:
            register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            self.server,
        )
        self.port = 0
        self._watch: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int, tls: GrpcTLS | None = None) -> int:
        """Bind and start (TLS when `tls` has a certificate); returns the bound port (useful with port 0).
        Raises StartupError if the port is taken."""
        try:
            if tls is not None and tls.serves_tls:
                self.port = self.server.add_secure_port(f"{host}:{port}", tls.server_credentials())
            else:
                self.port = self.server.add_insecure_port(f"{host}:{port}")
        except RuntimeError as error:
            raise errors.StartupError(f"cannot listen on {host}:{port}: {error}") from None
        if self.port == 0:
            raise errors.StartupError(f"cannot listen on {host}:{port}: address in use")
        if self._on_start is not None:
            await self._on_start()
        await self.server.start()
        await self._set_all(health_pb2.HealthCheckResponse.SERVING)
        await self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        if self._readiness is not None:
            self._watch = asyncio.create_task(self._watch_readiness(), name=f"{self.name}-readiness")
        if self._on_serving is not None:
            # Duties that judge what callers did (the jobs reaper) start only once callers can reach us.
            await self._on_serving()
        log.info(
            "grpc server listening",
            host=host,
            port=self.port,
            services=self.service_names,
            tls=bool(tls and tls.serves_tls),
            client_auth=bool(tls and tls.client_auth),
        )
        return self.port

    async def _set_all(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for service in ["", *self.service_names]:
            await self.health.set(service, status)

    async def _watch_readiness(self) -> None:
        assert self._readiness is not None
        serving = True
        while True:
            # While NOT_SERVING, look often: callers should see the database's return within a second.
            await asyncio.sleep(self._readiness_interval if serving else min(0.5, self._readiness_interval))
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can lose the stop's cancellation.
                async with asyncio.timeout(self._readiness_interval):
                    ok = await self._readiness()
            except Exception:
                ok = False
            if ok != serving:
                serving = ok
                log.warning("serving status changed", serving=ok)
                await self._set_all(
                    health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
                )

    async def stop(self, grace: float) -> None:
        """NOT_SERVING first, then stop accepting and give in-flight calls `grace` seconds."""
        await stop_tasks([self._watch])
        self._watch = None
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self._on_stop is not None:
            await self._on_stop()
        log.info("grpc server stopped", grace_seconds=grace)

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()
