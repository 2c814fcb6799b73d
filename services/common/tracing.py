"""OpenTelemetry traces, exported over OTLP only when the standard variables ask for it.

Off (the default) nothing is installed: the API's no-op tracer answers, no span is recorded, nothing is
patched. On — `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set and
`OTEL_SDK_DISABLED` not true — `configure_tracing` installs the SDK with a batching OTLP exporter
(`OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, the default, or `grpc`) and instruments, for the whole
process:

- gRPC servers (`grpc.aio.server`) and clients (aio and blocking channels, so the Job SDK's sender thread
  too), which carry the W3C `traceparent` between processes;
- asyncpg (every query is a span with its statement) and Redis (PUBLISH of events, streams, leases).

The gateway adds the ASGI middleware itself (`asgi_middleware`). Every other OTEL_* variable (headers,
timeout, sampler, resource attributes, batch delays) is read by the SDK as documented by OpenTelemetry.
Log lines carry `trace_id`/`span_id` whenever a span is current (`add_trace_ids`).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.logging import get_logger, use_trace_ids

log = get_logger(__name__)
_configured: str | None = None


class TracingSettings(BaseSettings):
    """The OTEL_* variables that decide whether tracing is on; the SDK reads the others itself."""

    model_config = SettingsConfigDict(env_prefix="OTEL_", extra="ignore", frozen=True)

    exporter_otlp_endpoint: str = ""
    exporter_otlp_traces_endpoint: str = ""
    exporter_otlp_protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"
    exporter_otlp_traces_protocol: Literal["", "http/protobuf", "grpc"] = ""
    sdk_disabled: bool = False
    service_name: str = ""
    traces_exporter: str = "otlp"

    @property
    def enabled(self) -> bool:
        wanted = bool(self.exporter_otlp_endpoint or self.exporter_otlp_traces_endpoint)
        return wanted and not self.sdk_disabled and self.traces_exporter != "none"

    @property
    def protocol(self) -> str:
        return self.exporter_otlp_traces_protocol or self.exporter_otlp_protocol


def tracing_enabled() -> bool:
    return _configured is not None


def configure_tracing(component: str, settings: TracingSettings | None = None) -> bool:
    """Install the SDK, the OTLP exporter and the instrumentations when the settings ask for it.

    Returns whether tracing is on. Idempotent per process; `component` names the service
    (`b2x-<component>` unless OTEL_SERVICE_NAME says otherwise).
    """
    global _configured  # noqa: PLW0603 - one tracer provider per process, like the SDK's own global
    settings = settings or TracingSettings()
    if _configured is not None or not settings.enabled:
        return _configured is not None
    # Imported here so that a process with tracing off never loads the SDK (~100 ms of imports).
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.grpc import (  # noqa: PLC0415
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
        GrpcInstrumentorClient,
    )
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_VERSION, Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter  # noqa: PLC0415

    from services.common.metrics import version  # noqa: PLC0415

    exporter: SpanExporter
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter  # noqa: PLC0415

        exporter = GrpcExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter  # noqa: PLC0415

        exporter = HttpExporter()
    attributes: dict[str, str] = {SERVICE_NAMESPACE: "b2x", SERVICE_VERSION: version()}
    if not settings.service_name:
        attributes[SERVICE_NAME] = f"b2x-{component}"
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    # The exporter's own HTTP/gRPC calls are not instrumented (no httpx/requests instrumentation here),
    # and its gRPC channel is created above, before the client instrumentation patches grpc.
    GrpcAioInstrumentorServer().instrument(skip_dep_check=True)  # type: ignore[no-untyped-call]
    GrpcAioInstrumentorClient().instrument(skip_dep_check=True)  # type: ignore[no-untyped-call]
    GrpcInstrumentorClient().instrument(skip_dep_check=True)  # type: ignore[no-untyped-call]
    AsyncPGInstrumentor().instrument(skip_dep_check=True)  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument(skip_dep_check=True)
    _configured = component
    use_trace_ids(current_ids)
    log.info("tracing on", protocol=settings.protocol, service=settings.service_name or f"b2x-{component}")
    return True


def asgi_middleware(app: Any) -> Any:
    """`app` wrapped in OpenTelemetry's ASGI middleware for HTTP requests when tracing is on.

    WebSockets pass by untouched: a subscription lives for hours, and one span per message would bury
    the traces people look for. Each GraphQL operation still gets its spans from Strawberry's extension.
    """
    if not tracing_enabled():
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware  # noqa: PLC0415

    traced = OpenTelemetryMiddleware(
        app, excluded_urls="/metrics,/health/live,/health/ready", exclude_spans=["receive", "send"]
    )

    async def route(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await traced(scope, receive, send)
        else:
            await app(scope, receive, send)

    return route


def current_ids() -> tuple[str, str]:
    """(trace id, span id) of the current span as 32 and 16 hex digits, or ("", "") outside a trace."""
    if _configured is None:
        return "", ""
    from opentelemetry import trace  # noqa: PLC0415 - loaded already by configure_tracing

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return "", ""
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
