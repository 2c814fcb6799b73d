"""Prometheus metrics: the per-process HTTP endpoint and the gRPC request metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

from services.common.errors import StartupError
from services.common.logging import get_logger

log = get_logger(__name__)

GRPC_REQUESTS = Counter("b2x_grpc_requests_total", "gRPC requests handled", ["service", "method", "code"])
GRPC_LATENCY = Histogram(
    "b2x_grpc_request_duration_seconds",
    "gRPC request latency",
    ["service", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def start_metrics_server(port: int, host: str) -> None:
    """Serve /metrics on `host:port` (the service's own listen address) from a daemon thread; 0 leaves it off
    (tests, embedded replicas)."""
    if port == 0:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as error:
        raise StartupError(f"cannot serve metrics on {host}:{port}: {error.strerror or error}") from None
    log.info("metrics endpoint listening", host=host, port=port)
