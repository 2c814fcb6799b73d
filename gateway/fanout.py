"""Live fan-out: one event, many subscribers, one conversion and one execution (docs/adr/0021-live-path.md).

Every local subscriber of a topic receives the same decoded event object from the bus
(services/common/events.py). Converting it to its GraphQL type and executing the subscription's
selection set on it gives the same answer for every subscriber that asked the same document with the
same variables under the same visibility (role and tenant scope), so both are done once per event:

- `shared(event, convert)` memoises a conversion per event object;
- `SharedEventExecutor` memoises the per-event execution of a subscription operation, keyed by the
  event's GraphQL object, the document's text, the variables and the caller's role and tenant.

Results with errors, or resolvers that await something (their answer may depend on the moment), are
never shared. Both caches hold the last few thousand events and keep them alive while they do, so an
object's `id()` cannot be reused for another event while it is a key.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from graphql import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

T = TypeVar("T")
CACHED_EVENTS = 4096  # more than two bursts of a full ReportBatch

_converted: OrderedDict[int, tuple[object, Any]] = OrderedDict()
_executed: OrderedDict[tuple[Any, ...], tuple[object, ExecutionResult]] = OrderedDict()


def shared(event: object, convert: Callable[[Any], T]) -> T:
    """`convert(event)`, once per event object however many subscribers receive it."""
    key = id(event)
    hit = _converted.get(key)
    if hit is not None and hit[0] is event:
        return hit[1]  # type: ignore[no-any-return]
    value = convert(event)
    _converted[key] = (event, value)
    if len(_converted) > CACHED_EVENTS:
        _converted.popitem(last=False)
    return value


def _visibility(context: Any) -> tuple[str, str | None] | None:
    principal = getattr(context, "principal", None)
    if principal is None:
        return None
    return (str(principal.role), principal.tenant_id)


class SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, executing a subscription event once per (event, document, variables, scope)."""

    def execute_operation(self, serially: bool | None = None) -> Any:
        # graphql-core runs each subscription event through `execute_operation(False)` on a per-event copy.
        if serially is not False or self.root_value is None:
            return super().execute_operation(serially)
        scope = _visibility(self.context_value)
        loc = self.operation.loc
        if scope is None or loc is None:
            return super().execute_operation(serially)
        try:
            variables = json.dumps(self.variable_values, sort_keys=True, default=str)
        except (TypeError, ValueError):
            return super().execute_operation(serially)
        root = self.root_value
        key = (id(root), loc.source.body, self.operation.name and self.operation.name.value, variables, scope)
        hit = _executed.get(key)
        if hit is not None and hit[0] is root:
            return hit[1]
        result = super().execute_operation(serially)
        if isinstance(result, ExecutionResult) and not result.errors:
            _executed[key] = (root, result)
            if len(_executed) > CACHED_EVENTS:
                _executed.popitem(last=False)
        return result
