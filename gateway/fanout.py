"""Live fan-out: one event, many subscribers, one conversion, one execution and one encoding
(docs/adr/0021-live-path.md, docs/adr/0023-gateway-send-path.md).

Every local subscriber of a topic receives the same decoded event object from the bus
(services/common/events.py). Converting it to its GraphQL type and executing the subscription's
selection set on it gives the same answer for every subscriber that asked the same document with the
same variables under the same visibility (role and tenant scope), so both are done once per event:

- `shared(event, convert)` memoises a conversion per event object;
- `SharedEventExecutor` executes a subscription event with a compiled plan when the selection is a plain
  projection of the event (gateway/projection.py), once per (event, document, variables): a projection
  involves no resolver, so its answer does not depend on the caller. Other selections are executed by
  graphql-core, once per (event, document, variables, role and tenant of the caller);
- `encoded_next(message)` encodes a graphql-transport-ws `next` message, the payload's JSON once per
  result however many subscribers send it.

Results with errors, or resolvers that await something (their answer may depend on the moment), are
never shared. The caches hold the last few thousand events and keep them alive while they do, so an
object's `id()` cannot be reused for another event while it is a key.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from graphql import ExecutionResult
from prometheus_client import Counter
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.projection import Plan, compile_plan

T = TypeVar("T")
CACHED_EVENTS = 4096  # more than two bursts of a full ReportBatch
CACHED_PLANS = 512

PLANNED = Counter(
    "b2x_gateway_subscription_events_planned_total",
    "Subscription events answered by a compiled projection plan rather than graphql-core's execution",
)
SENT_DIRECTLY = Counter(
    "b2x_gateway_subscription_messages_direct_total",
    "Subscription messages the resolver sent itself (a known plain projection; `deliver`)",
)
PLAN_FALLBACKS = Counter(
    "b2x_gateway_subscription_plan_fallbacks_total",
    "Subscription events a plan could not complete exactly (executed by graphql-core instead)",
)

_converted: OrderedDict[int, tuple[object, Any]] = OrderedDict()
_executed: OrderedDict[tuple[Any, ...], tuple[object, ExecutionResult]] = OrderedDict()
_encoded: OrderedDict[int, tuple[object, str]] = OrderedDict()
_plans: OrderedDict[tuple[str, str | None, str], Plan | None] = OrderedDict()
_heads: dict[str, str] = {}


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any, limit: int = CACHED_EVENTS) -> None:
    cache[key] = value
    if len(cache) > limit:
        cache.popitem(last=False)


def shared(event: object, convert: Callable[[Any], T]) -> T:
    """`convert(event)`, once per event object however many subscribers receive it."""
    key = id(event)
    hit = _converted.get(key)
    if hit is not None and hit[0] is event:
        return hit[1]  # type: ignore[no-any-return]
    value = convert(event)
    _remember(_converted, key, (event, value))
    return value


def _visibility(context: Any) -> tuple[str, str | None] | None:
    principal = getattr(context, "principal", None)
    if principal is None:
        return None
    return (str(principal.role), principal.tenant_id)


def _planned(plan: Plan, root: object) -> ExecutionResult | None:
    """`plan`'s answer for `root`, once per (event object, plan); None when the plan cannot complete it."""
    key = (id(root), plan)
    hit = _executed.get(key)
    if hit is not None and hit[0] is root:
        return hit[1]
    try:
        data = plan(root)
    except Exception:  # NotPlain, or anything graphql-core would turn into a located error
        return None
    PLANNED.inc()
    planned = ExecutionResult(data, None)
    _remember(_executed, key, (root, planned))
    return planned


class _Memo:
    """What a subscription's executor works out once; graphql-core's per-event copies share it."""

    __slots__ = ("document", "plan", "ready")

    def __init__(self) -> None:
        self.ready = False
        self.document: tuple[str, str | None, str] | None = None  # text, operation name, variables
        self.plan: Plan | None = None


class SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, executing a subscription event once per (event, document, variables[, scope]),
    with a compiled plan where the selection is a plain projection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._memo = _Memo()  # copied by reference into every per-event executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        # graphql-core runs each subscription event through `execute_operation(False)` on a per-event copy.
        if serially is not False or self.root_value is None:
            return super().execute_operation(serially)
        memo = self._memo
        if not memo.ready:
            self._prepare(memo)
        if memo.document is None:
            return super().execute_operation(serially)
        root = self.root_value
        if memo.plan is not None:
            planned = _planned(memo.plan, root)
            if planned is not None:
                live = LIVE_OPERATION.get()
                if live is not None and live.direct:
                    live.plan = memo.plan  # the resolver may now send this operation's next answers itself
                return planned
            PLAN_FALLBACKS.inc()
        scope = _visibility(self.context_value)
        if scope is None:
            return super().execute_operation(serially)
        key = (id(root), *memo.document, scope)
        hit = _executed.get(key)
        if hit is not None and hit[0] is root:
            return hit[1]
        result = super().execute_operation(serially)
        if isinstance(result, ExecutionResult) and not result.errors:
            _remember(_executed, key, (root, result))
        return result

    def _prepare(self, memo: _Memo) -> None:
        memo.ready = True
        loc = self.operation.loc
        if loc is None:
            return
        values = getattr(self.variable_values, "coerced", self.variable_values)
        try:
            variables = json.dumps(values, sort_keys=True, default=str)
        except (TypeError, ValueError):
            return
        name = self.operation.name.value if self.operation.name else None
        memo.document = (loc.source.body, name, variables)
        middleware = self.middleware_manager
        if (middleware is not None and middleware.middlewares) or self.hooks is not None or self.abort_signal:
            return  # resolver hooks (tracing) and execution hooks see every field: no plan
        if memo.document in _plans:
            memo.plan = _plans[memo.document]
            return
        memo.plan = compile_plan(self.schema, self.fragments, self.variable_values, self.operation)
        _remember(_plans, memo.document, memo.plan, CACHED_PLANS)


_NEXT_KEYS = ("id", "type", "payload")


def encoded_next(message: Any) -> str | None:
    """The JSON of a graphql-transport-ws `next` message with data only (no errors or extensions), exactly
    as `json.dumps(message, default=str)` writes it, with the data's JSON encoded once per data object;
    None for any other message."""
    if type(message) is not dict or message.get("type") != "next" or tuple(message) != _NEXT_KEYS:
        return None
    payload = message["payload"]
    if type(payload) is not dict or len(payload) != 1 or "data" not in payload:
        return None
    data = payload["data"]
    if type(data) is not dict:
        return None
    hit = _encoded.get(id(data))
    if hit is not None and hit[0] is data:
        text = hit[1]
    else:
        text = json.dumps(data, default=str)
        _remember(_encoded, id(data), (data, text))
    op_id = message["id"]
    head = _heads.get(op_id) if type(op_id) is str else None
    if head is None:
        head = json.dumps({"id": op_id, "type": "next"}, default=str)[:-1] + ', "payload": {"data": '
        if type(op_id) is str and len(_heads) < CACHED_PLANS:
            _heads[op_id] = head  # operation ids are few ("1", "2"...: a client's counter)
    return f"{head}{text}}}}}"


@dataclass(eq=False)
class LiveOperation:
    """The graphql-transport-ws operation a subscription's task serves (gateway/websocket.py sets it in the
    task's context). Once graphql-core's executor found the operation's selection to be a plain projection
    (`plan`), `deliver` lets the resolver send the next answers itself: the same text Strawberry would send,
    without graphql-core's per-event map and executor copy and Strawberry's per-result wrapper."""

    handler: Any  # gateway.websocket.GatewayTransportWS
    op_id: str
    direct: bool  # False when an extension reports results or hooks streamed results: they must see each one
    operation: Any = None  # Strawberry's Operation, to tell it from a later operation with the same id
    plan: Plan | None = None


LIVE_OPERATION: ContextVar[LiveOperation | None] = ContextVar("b2x_live_operation", default=None)


class PreEncoded(str):
    """A message already encoded as JSON text (`GatewayGraphQL.encode_json` passes it through)."""

    __slots__ = ()


async def deliver(value: object) -> bool:
    """Send the `next` message answering `value` on the current operation's websocket, if its answer is a
    plain projection already known to be sent that way (see `LiveOperation`); False: yield `value` instead."""
    live = LIVE_OPERATION.get()
    if live is None or live.plan is None:
        return False
    operation = live.handler.operations.get(live.op_id)
    if operation is None or operation is not live.operation or operation.completed:
        return False  # completed, cancelled or revoked: Strawberry's path decides what (not) to send
    planned = _planned(live.plan, value)
    if planned is None:
        return False  # graphql-core reports what the plan could not complete
    text = encoded_next({"id": live.op_id, "type": "next", "payload": {"data": planned.data}})
    if text is None:
        return False
    await live.handler.send_message(PreEncoded(text))
    SENT_DIRECTLY.inc()
    return True
