"""gRPC channels between B2X processes: TLS when configured, and client-side request metrics.

Every client of a B2X service (the gateway, probes → health) opens its channel here, so TLS and the
`b2x_grpc_client_*` metrics apply to all of them the same way. Tracing needs nothing here: when
OpenTelemetry is on, its gRPC instrumentation wraps every channel (services/common/tracing.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

from services.common.keepalive import KEEPALIVE_SECONDS, client_options
from services.common.metrics import LATENCY_BUCKETS
from services.common.tls import GrpcTLS

CLIENT_REQUESTS = Counter(
    "b2x_grpc_client_requests_total", "gRPC calls this process made to a B2X service", ["target", "method", "code"]
)
CLIENT_LATENCY = Histogram(
    "b2x_grpc_client_request_duration_seconds",
    "Latency of gRPC calls to a B2X service, as the caller saw it",
    ["target", "method"],
    buckets=LATENCY_BUCKETS,
)


class ClientMetricsInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Counts and times unary calls by target service, method and status code."""

    def __init__(self, target: str) -> None:
        self._target = target

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        raw = client_call_details.method
        method = (raw.decode() if isinstance(raw, bytes) else str(raw)).rsplit("/", 1)[-1]
        started = time.perf_counter()
        call = await continuation(client_call_details, request)
        try:
            await call
        except grpc.aio.AioRpcError as error:
            code = error.code().name
        except BaseException:
            code = "CANCELLED"
            raise
        else:
            code = "OK"
        finally:
            CLIENT_LATENCY.labels(self._target, method).observe(time.perf_counter() - started)
        CLIENT_REQUESTS.labels(self._target, method, code).inc()
        return call


def open_channel(
    address: str,
    tls: GrpcTLS | None = None,
    *,
    target: str = "",
    options: Sequence[tuple[str, Any]] = (),
    keepalive_seconds: float = KEEPALIVE_SECONDS,
) -> grpc.aio.Channel:
    """A channel to a B2X service: TLS when `tls` has a CA file, metrics when `target` names the service,
    keepalive pings the servers accept (services/common/keepalive.py)."""
    interceptors: Any = [ClientMetricsInterceptor(target)] if target else None
    options = [*client_options(keepalive_seconds), *options]
    if tls is not None and tls.dials_tls:
        return grpc.aio.secure_channel(
            address, tls.channel_credentials(), options=[*options, *tls.channel_options()], interceptors=interceptors
        )
    return grpc.aio.insecure_channel(address, options=list(options), interceptors=interceptors)
