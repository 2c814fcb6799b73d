"""Schema extension that gives every GraphQL error an `extensions.code` and hides internal faults."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import StreamResultContextManager
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext
from strawberry.utils.await_maybe import await_maybe

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


class _NoHooks:
    """What `on_stream_result` returns when no extension has that hook: enters and leaves, nothing else."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


_NO_HOOKS = _NoHooks()


class LeanExtensionsRunner(SchemaExtensionsRunner):
    """Strawberry's runner without the per-result work no extension asks for.

    For every result of a subscription Strawberry collects each extension's `get_results()` (awaiting each)
    and wraps the result in a context manager built from each extension's `on_stream_result` hook. The
    extensions that keep the base class's methods contribute `{}` and nothing: they are left out, with the
    same answer (~10 µs per streamed message with five extensions; docs/adr/0023-gateway-send-path.md).
    """

    def __init__(self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None) -> None:
        super().__init__(execution_context, extensions)
        self._reporting = [e for e in self.extensions if type(e).get_results is not SchemaExtension.get_results]
        self._streaming = any(type(e).on_stream_result is not SchemaExtension.on_stream_result for e in self.extensions)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self._reporting:
            data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data

    def on_stream_result(self, result: Any) -> StreamResultContextManager:
        if self._streaming:
            return super().on_stream_result(result)
        return _NO_HOOKS  # type: ignore[return-value]


def plain_stream_results(schema: Any) -> bool:
    """Whether none of `schema`'s extensions reports results or hooks streamed results: then a streamed
    result's message is its data alone, and may be sent without going through the extensions runner."""
    known: bool | None = getattr(schema, "_b2x_plain_stream_results", None)
    if known is None:
        known = not any(
            type(e).get_results is not SchemaExtension.get_results
            or type(e).on_stream_result is not SchemaExtension.on_stream_result
            for e in schema.get_extensions()
        )
        schema._b2x_plain_stream_results = known
    return known
