"""Domain metrics of the gateway (its own `/metrics`): HTTP requests and GraphQL operations.

Labels are bounded by construction: routes are the app's few fixed paths, operation types are three,
root fields come from the schema (operations that fail validation are counted as `invalid`), and
outcomes are the GraphQL error codes of README's list. Live fan-out is `b2x_gateway_live_subscribers`
(gateway/app.py) and the bus's `b2x_events_delivered_total`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from graphql import FieldNode, OperationDefinitionNode
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from services.common.metrics import LATENCY_BUCKETS

HTTP_REQUESTS = Counter(
    "b2x_http_requests_total", "HTTP requests answered by the gateway", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "b2x_http_request_duration_seconds",
    "Time to answer an HTTP request (to the end of the response body)",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
GRAPHQL_OPERATIONS = Counter(
    "b2x_graphql_operations_total",
    "GraphQL operations by type, root field and outcome (ok or the first error's code)",
    ["operation_type", "root_field", "outcome"],
)
GRAPHQL_LATENCY = Histogram(
    "b2x_graphql_operation_duration_seconds",
    "Time to execute a GraphQL query or mutation (subscriptions: until they end)",
    ["operation_type", "root_field"],
    buckets=LATENCY_BUCKETS,
)

UNCHECKED = frozenset({"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_REQUEST"})
ROUTES = ("/graphql", "/health/live", "/health/ready", "/metrics")
_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})


def route_of(path: str) -> str:
    if path in ROUTES:
        return path
    if path.startswith("/static/"):
        return "/static"
    return "other"


class HttpMetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by route, method and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        route = route_of(scope.get("path", ""))
        method = scope.get("method", "GET") if scope.get("method") in _METHODS else "OTHER"
        try:
            await self.app(scope, receive, counting_send)
        finally:
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_LATENCY.labels(route, method).observe(time.perf_counter() - started)


def _root_field(operation: OperationDefinitionNode | None) -> str:
    if operation is None:
        return "invalid"
    fields = [s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)]
    names = sorted({f for f in fields if f != "__typename"})
    if not names:
        return "__typename" if fields else "invalid"
    return names[0] if len(names) == 1 else "multiple"


def _outcome(errors: Any) -> str:
    if not errors:
        return "ok"
    code = (getattr(errors[0], "extensions", None) or {}).get("code")
    return str(code) if code else "INTERNAL_SERVER_ERROR"


class GraphQLMetrics(SchemaExtension):
    """Counts operations by type, root field and outcome; must run after `ErrorCodes` labels the errors."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        result: Any = context.result
        errors = context.pre_execution_errors or (getattr(result, "errors", None) if result is not None else None)
        outcome = _outcome(errors)
        operation: OperationDefinitionNode | None = None
        # A document that did not parse or validate may name anything: never let its words become labels.
        if context.graphql_document is not None and outcome not in UNCHECKED:
            for definition in context.graphql_document.definitions:
                if isinstance(definition, OperationDefinitionNode) and (
                    context.operation_name is None
                    or (definition.name is not None and definition.name.value == context.operation_name)
                ):
                    operation = definition
                    break
        op_type = operation.operation.value if operation is not None else "invalid"
        root = _root_field(operation)
        GRAPHQL_OPERATIONS.labels(op_type, root, outcome).inc()
        GRAPHQL_LATENCY.labels(op_type, root).observe(time.perf_counter() - started)
