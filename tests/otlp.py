"""A real OTLP/HTTP trace receiver for tests: what a collector or Jaeger does with `POST /v1/traces`.

It decodes the exporters' protobuf (`ExportTraceServiceRequest`, gzip or not) with the official
opentelemetry-proto messages, answers `ExportTraceServiceResponse`, and keeps every span with its
resource's `service.name`, so a test can look at one trace across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import serving

PROTOBUF = "application/x-protobuf"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "int_value", "double_value", "bool_value") else str(value)


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    scope: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any] = field(hash=False)


class OtlpReceiver:
    """Listens on 127.0.0.1 (a free port); `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT takes."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.endpoint = ""
        self._arrived = asyncio.Event()

    async def _traces(self, request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        if request.headers.get("content-type", "").split(";")[0] != PROTOBUF:
            return Response(b"only OTLP/HTTP protobuf", 415)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        self.requests += 1
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            service=str(resource.get("service.name", "")),
                            scope=scope_spans.scope.name,
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        self._arrived.set()
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type=PROTOBUF)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.trace_id == trace_id]

    async def wait_for(self, trace_id: str, services: set[str], timeout: float = 20.0) -> list[ReceivedSpan]:
        """The spans of a trace once every one of `services` has sent some (or AssertionError)."""
        try:
            async with asyncio.timeout(timeout):
                while not services <= {span.service for span in self.trace(trace_id)}:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            seen = sorted({span.service for span in self.trace(trace_id)})
            raise AssertionError(f"trace {trace_id}: spans only from {seen}, wanted {sorted(services)}") from None
        await asyncio.sleep(0.5)  # the last batches of the slower processes
        return self.trace(trace_id)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[OtlpReceiver]:
        app = Starlette(routes=[Route("/v1/traces", self._traces, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
        async with serving(config) as port:
            self.endpoint = f"http://127.0.0.1:{port}"
            yield self
