"""Schema extension that gives every GraphQL error an `extensions.code` and hides internal faults."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.errors import DATABASE_DOWN_MESSAGE, classify_unlabelled
from services.common.logging import get_logger

log = get_logger(__name__)


def label(error: GraphQLError) -> GraphQLError:
    """The error with a code; unexpected exceptions become a generic message (details go to the log)."""
    code = (error.extensions or {}).get("code")
    if code:
        return error
    code = classify_unlabelled(error)
    if code == "SERVICE_UNAVAILABLE":
        log.warning("resolver failed; the gateway's database is unavailable", path=error.path,
                    error=str(error.original_error) or type(error.original_error).__name__)  # fmt: skip
        return GraphQLError(
            DATABASE_DOWN_MESSAGE,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": code},
        )
    if code == "INTERNAL_SERVER_ERROR":
        log.error("resolver failed", path=error.path, exc_info=error.original_error)
        return GraphQLError(
            "internal error; the gateway log has the details",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": code},
        )
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), "code": code},
    )


class ErrorCodes(SchemaExtension):
    """Labels what is left at the end of an operation. Results streamed over a websocket leave before that:
    `GatewaySchema.process_errors` labels every result's errors as Strawberry hands them over (a stream
    hook here would cost each streamed message ~15 µs, errors or not: docs/adr/0023-gateway-send-path.md)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result: Any = self.execution_context.result
        if result is not None and getattr(result, "errors", None):
            result.errors = [label(e) for e in result.errors]
        # Errors found before execution (parse, validation) live on the context, not the result.
        pre = self.execution_context.pre_execution_errors
        if pre:
            self.execution_context.pre_execution_errors = [label(e) for e in pre]
