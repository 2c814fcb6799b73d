"""The GraphQL schema: assembles each domain's queries, mutations and subscriptions."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from gateway.admin.resolvers import AdminMutations, AdminQueries
from gateway.alerts.mutations import AlertMutations
from gateway.alerts.queries import AlertQueries
from gateway.alerts.subscriptions import AlertSubscriptions
from gateway.errors import EXPECTED_CODES, classify_unlabelled
from gateway.extensions import ErrorCodes, LeanExtensionsRunner, label
from gateway.fanout import SharedEventExecutor
from gateway.health.queries import HealthQueries
from gateway.health.subscriptions import HealthSubscriptions
from gateway.jobs.mutations import JobMutations
from gateway.jobs.queries import JobQueries
from gateway.jobs.subscriptions import JobSubscriptions
from gateway.limits import DocumentLimits
from gateway.metrics import GraphQLMetrics
from gateway.probes.mutations import ProbeMutations
from gateway.probes.queries import ProbeQueries
from gateway.probes.subscriptions import ProbeSubscriptions
from gateway.registry.queries import RegistryQueries
from gateway.scalars import SCALARS
from services.common.logging import get_logger

log = get_logger(__name__)

Query = merge_types("Query", (JobQueries, HealthQueries, RegistryQueries, ProbeQueries, AlertQueries, AdminQueries))
Mutation = merge_types("Mutation", (JobMutations, ProbeMutations, AlertMutations, AdminMutations))
Subscription = merge_types(
    "Subscription", (JobSubscriptions, HealthSubscriptions, ProbeSubscriptions, AlertSubscriptions)
)


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Log faults with their stack; expected answers (NOT_FOUND, FORBIDDEN...) stay quiet. Then give each
        error its code (`gateway.extensions.label`), in place: Strawberry hands every result's errors here, in
        the list the result carries, before the result is sent; results streamed over a websocket included."""
        for error in errors:
            code = (error.extensions or {}).get("code") or classify_unlabelled(error)
            if code not in EXPECTED_CODES:
                log.error("graphql error", message=error.message, code=code, path=error.path)
        if isinstance(errors, list):
            errors[:] = [label(error) for error in errors]

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return LeanExtensionsRunner(execution_context, extensions)


def build_schema(
    max_depth: int = 12,
    max_aliases: int = 30,
    max_tokens: int = 2000,
    max_field_repeats: int = 10,
    *,
    traced: bool = False,
) -> strawberry.Schema:
    """The schema with its limits; `GraphQLMetrics` wraps `ErrorCodes` so it counts labelled errors.
    With `traced`, each operation and resolver is a span (Strawberry's OpenTelemetry extension)."""
    extensions: list[Any] = [
        lambda: DocumentLimits(max_tokens=max_tokens, max_field_repeats=max_field_repeats),
        lambda: QueryDepthLimiter(max_depth=max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
        GraphQLMetrics,
        ErrorCodes,
    ]
    if traced:
        from strawberry.extensions.tracing import OpenTelemetryExtension  # noqa: PLC0415

        extensions.insert(0, OpenTelemetryExtension)
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=extensions,
        execution_context_class=SharedEventExecutor,
    )
