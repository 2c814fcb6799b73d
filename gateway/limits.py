"""Limits that guard the gateway, shared by HTTP requests and websocket messages.

- `DocumentLimits` (a schema extension, so every transport gets it): the parser stops after
  `max_query_tokens` tokens; before validation, a field selected more than `max_field_repeats` times in
  one selection set (directly, or through fragments) is refused — graphql-core's overlapping-fields rule
  compares such fields pairwise, so a few hundred repeats would keep the event loop busy for a second;
  and a document with several operations needs an `operationName`.
- `RequestLimiter` (Redis): the per-key rate limit, and the per-address throttle of failed
  authentications, applied before a key is looked up. Both fail open when Redis is down or hangs:
  locking operators out during an incident would be worse than a burst.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator

import redis.asyncio as aioredis
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from redis.exceptions import RedisError
from strawberry.extensions import SchemaExtension

from services.common.logging import get_logger

log = get_logger(__name__)
WINDOW_SECONDS = 60


def _validation_error(message: str, code: str = "GRAPHQL_VALIDATION_FAILED") -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def _selection_sets(document: DocumentNode) -> Iterator[SelectionSetNode]:
    stack: list[SelectionSetNode] = [
        d.selection_set for d in document.definitions if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while stack:
        selection_set = stack.pop()
        yield selection_set
        for selection in selection_set.selections:
            nested = getattr(selection, "selection_set", None)
            if nested is not None:
                stack.append(nested)


def most_repeated_field(document: DocumentNode) -> tuple[str, int]:
    """The response name selected most often within one selection set (fragments expanded), and how often."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    memo: dict[str, Counter[str]] = {}

    def names(selection_set: SelectionSetNode, visiting: frozenset[str]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                counts[(selection.alias or selection.name).value] += 1
            elif isinstance(selection, InlineFragmentNode):
                counts.update(names(selection.selection_set, visiting))
            elif isinstance(selection, FragmentSpreadNode):
                counts.update(fragment(selection.name.value, visiting))
        return counts

    def fragment(name: str, visiting: frozenset[str]) -> Counter[str]:
        if name not in memo:
            if name in visiting or name not in fragments:
                return Counter()  # cycles and unknown fragments are the validator's to report
            memo[name] = names(fragments[name].selection_set, visiting | {name})
        return memo[name]

    worst = ("", 0)
    for selection_set in _selection_sets(document):
        counts = names(selection_set, frozenset())
        if counts:
            name, times = counts.most_common(1)[0]
            if times > worst[1]:
                worst = (name, times)
    return worst


class DocumentLimits(SchemaExtension):
    """Token limit for the parser; repeated fields and unnamed multi-operation documents refused before
    validation, with codes."""

    def __init__(self, *, max_tokens: int, max_field_repeats: int) -> None:
        self.max_tokens = max_tokens
        self.max_field_repeats = max_field_repeats

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.max_tokens
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            error = self._check(document)
            if error is not None:
                # Set before validation runs, so strawberry skips the (expensive) validation rules.
                context.pre_execution_errors = [error]
        yield

    def _check(self, document: DocumentNode) -> GraphQLError | None:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        # Strawberry falls back to the first operation when no name was sent; the spec says to refuse.
        provided = getattr(self.execution_context, "_provided_operation_name", None)
        if len(operations) > 1 and not provided:
            return _validation_error(
                f"the document has {len(operations)} operations; send operationName to say which one to run",
                "BAD_USER_INPUT",
            )
        name, times = most_repeated_field(document)
        if times > self.max_field_repeats:
            return _validation_error(
                f"field '{name}' is selected {times} times in one selection set; the limit is {self.max_field_repeats}"
            )
        return None


class RequestLimiter:
    """Per-key request rate and per-address authentication failures, counted in one-minute windows in Redis.

    A Redis that errs or does not answer within `timeout` lets requests through (fail open), and is left
    alone for `pause` seconds so that, while it hangs, each request does not wait for it again.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        namespace: str,
        *,
        per_minute: int,
        auth_failures: int,
        timeout: float = 0.5,
        pause: float = 5.0,
    ) -> None:
        self._redis = redis
        self._namespace = namespace
        self.per_minute = per_minute
        self.auth_failures = auth_failures
        self._timeout = timeout
        self._pause = pause
        self._paused_until = 0.0

    def _unavailable(self, what: str, error: BaseException) -> None:
        self._paused_until = time.monotonic() + self._pause
        log.warning(f"{what} not enforced; Redis unavailable", error=str(error) or type(error).__name__)

    def _skipping(self) -> bool:
        return time.monotonic() < self._paused_until

    @staticmethod
    def retry_after() -> int:
        """Seconds until the current window ends."""
        return max(1, WINDOW_SECONDS - int(time.time()) % WINDOW_SECONDS)

    def _key(self, kind: str, who: str) -> str:
        return f"{self._namespace}:{kind}:{who}:{int(time.time() // WINDOW_SECONDS)}"

    async def within_rate(self, key_id: str) -> bool:
        """Count one request of this key; False once the key is over its limit this minute."""
        if self.per_minute <= 0:
            return True
        count = await self._incr(self._key("ratelimit", key_id))
        return count is None or count <= self.per_minute

    async def auth_blocked(self, address: str | None) -> bool:
        """True when this address failed to authenticate too often this minute (checked before any lookup)."""
        if self.auth_failures <= 0 or not address or self._skipping():
            return False
        try:
            async with asyncio.timeout(self._timeout):
                value = await self._redis.get(self._key("authfail", address))
        except (RedisError, OSError, TimeoutError) as error:
            self._unavailable("authentication throttle", error)
            return False
        return value is not None and int(value) >= self.auth_failures

    async def auth_failed(self, address: str | None) -> None:
        if self.auth_failures > 0 and address:
            await self._incr(self._key("authfail", address))

    async def _incr(self, key: str) -> int | None:
        if self._skipping():
            return None
        try:
            async with asyncio.timeout(self._timeout), self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, 2 * WINDOW_SECONDS)
                count, _ = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as error:
            self._unavailable("limit", error)
            return None
        return int(count)
