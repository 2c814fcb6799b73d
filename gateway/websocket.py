"""graphql-transport-ws with the gateway's rules applied to every message, not only to the handshake.

- `subscribe`: the payload is checked like an HTTP body (one operation, valid Unicode); the key is
  verified again (a revoked key closes the socket with 4403); the operation counts against the key's
  rate limit like an HTTP request (over it: an `error` with RATE_LIMITED); its log lines get a request id.
- every other message counts against a per-connection ceiling, so pings cannot flood the loop either.
- the socket registers with the `SocketRegistry`, which closes it when its key is revoked anywhere.
Message size is bounded by uvicorn (`ws_max_size` = the HTTP body limit; bigger closes with 1009);
token, depth, alias and repeated-field limits are schema extensions and apply to every operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import structlog
from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)

from gateway.context import AppState, Context
from gateway.errors import DATABASE_DOWN, DATABASE_DOWN_MESSAGE
from gateway.extensions import plain_stream_results
from gateway.fanout import LIVE_OPERATION, LiveOperation
from gateway.payloads import check_operation_payload

CLOSE_REVOKED = 4403
CLOSE_TOO_MANY = 4429
CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455: the server cannot serve now (its database is down)


class GatewayUnavailableError(Exception):
    """The handshake could not verify the key because the gateway's database is unavailable."""


MAX_OTHER_MESSAGES_PER_MINUTE = 600


class GatewayTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's graphql-transport-ws handler plus per-message authentication and limits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_key: str | None = None
        self._revoked = False
        self._other_window = (0, 0)  # (minute, messages of other kinds in it)

    @property
    def state(self) -> AppState:
        return self.context.state

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except GatewayUnavailableError:
            await self.websocket.close(CLOSE_TRY_AGAIN_LATER, "SERVICE_UNAVAILABLE: database unavailable")
            return
        if self.connection_acknowledged:
            self.api_key = self.context.api_key
            self.state.sockets.add(self)

    async def handle_message(self, message: Message) -> None:
        if self._revoked:
            return
        if message.get("type") != "subscribe" and not self._within_message_ceiling():
            await self.websocket.close(CLOSE_TOO_MANY, "too many messages")
            return
        await super().handle_message(message)

    def _within_message_ceiling(self) -> bool:
        minute = int(time.monotonic() // 60)
        window, count = self._other_window
        count = count + 1 if window == minute else 1
        self._other_window = (minute, count)
        return count <= MAX_OTHER_MESSAGES_PER_MINUTE

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if not self.connection_acknowledged:
            await super().handle_subscribe(message)  # closes with 4401
            return
        op_id = message["id"]
        if problem := check_operation_payload(message.get("payload")):
            await self._refuse(op_id, problem, "BAD_USER_INPUT")
            return
        state = self.state
        try:
            async with asyncio.timeout(state.settings.db_command_timeout_seconds):
                principal = await state.keys.verify(self.api_key)
        except DATABASE_DOWN:
            await self._refuse(op_id, DATABASE_DOWN_MESSAGE, "SERVICE_UNAVAILABLE")
            return
        if principal is None:
            await self.close_revoked()
            return
        self.context.principal = principal
        if not await state.limiter.within_rate(principal.key_id):
            wait = state.limiter.retry_after()
            await self._refuse(
                op_id,
                f"rate limit of {state.limiter.per_minute} requests per minute exceeded for key "
                f"'{principal.name}'; retry in {wait} s",
                "RATE_LIMITED",
            )
            return
        # The operation's task inherits this binding: its log lines and audit entries carry the id; and which
        # operation it serves, so its resolver may send plain answers itself (gateway/fanout.py: `deliver`).
        structlog.contextvars.bind_contextvars(request_id=uuid.uuid4().hex[:16])
        live = LiveOperation(self, op_id, direct=plain_stream_results(self.schema))
        token = LIVE_OPERATION.set(live)
        try:
            await super().handle_subscribe(message)
            live.operation = self.operations.get(op_id)  # before its task first runs: no await since it was made
        finally:
            LIVE_OPERATION.reset(token)
            structlog.contextvars.unbind_contextvars("request_id")

    async def _refuse(self, op_id: str, text: str, code: str) -> None:
        error = GraphQLError(text, extensions={"code": code})
        await self.send_message({"id": op_id, "type": "error", "payload": [error.formatted]})

    async def close_revoked(self) -> None:
        """Stop every operation of this socket and close it with 4403 (the key is no longer valid)."""
        if self._revoked:
            return
        self._revoked = True
        tasks = [op.task for op in self.operations.values() if op.task]
        for op_id in list(self.operations):
            await self.cleanup_operation(op_id)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 2)
        with contextlib.suppress(Exception):
            await self.websocket.close(CLOSE_REVOKED, "API key revoked")

    async def shutdown(self) -> None:
        self.state.sockets.discard(self)
        await super().shutdown()
