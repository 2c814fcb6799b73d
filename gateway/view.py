"""The /graphql endpoint: authentication, body-size and rate limits in front of Strawberry.

HTTP: the API key comes from `Authorization: Bearer <key>` (or `X-API-Key`). A GET that asks for
HTML gets GraphiQL (served from local files) without a key; everything else needs one.
WebSocket: only `graphql-transport-ws`; the key travels in the `connection_init` payload
(`{"Authorization": "Bearer <key>"}`) or the upgrade request's header. A bad key closes the socket
with 4403.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from gateway.auth import Principal, parse_bearer
from gateway.context import AppState, Context
from services.common.logging import get_logger

log = get_logger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
PRINCIPAL_KEY = "b2x.principal"


def error_response(status: int, message: str, code: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """A GraphQL-shaped error body for failures that happen before GraphQL runs."""
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status, headers=headers)


def _key_from(headers: Mapping[str, str]) -> str | None:
    return parse_bearer(headers.get("authorization")) or headers.get("x-api-key")


class GatewayGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: BaseSchema, state: AppState) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=state.settings.max_subscriptions_per_connection,
            keep_alive=True,
            keep_alive_interval=15,
        )
        self.state = state
        self._ide_html = (STATIC_DIR / "graphiql.html").read_text(encoding="utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        structlog.contextvars.bind_contextvars(request_id=uuid.uuid4().hex[:12])
        try:
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                # A browser asking for the page (shared links carry ?query=...): GraphiQL, no key needed.
                page = await self.render_graphql_ide(request)
                await page(scope, receive, send)
                return
            response, receive = await self._admit(request, receive)
            if response is not None:
                await response(scope, receive, send)
                return
            await super().__call__(scope, receive, send)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")

    async def _admit(self, request: Request, receive: Receive) -> tuple[Response | None, Receive]:
        """Check size, key and rate; returns an error response or None plus the receive to use."""
        settings = self.state.settings
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
            return self._too_large(), receive
        if request.method == "POST":
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > settings.max_body_bytes:
                    return self._too_large(), receive
            receive = _replay(bytes(body))
        principal = await self.state.keys.verify(_key_from(request.headers))
        if principal is None:
            message = (
                "the API key is invalid, revoked or expired"
                if _key_from(request.headers)
                else "an API key is required: send 'Authorization: Bearer <key>'"
            )
            return error_response(401, message, "UNAUTHENTICATED", {"WWW-Authenticate": "Bearer"}), receive
        if not await self._within_rate(principal):
            return error_response(
                429,
                f"rate limit of {settings.rate_limit_per_minute} requests per minute exceeded for key "
                f"'{principal.name}'; retry in a minute",
                "RATE_LIMITED",
                {"Retry-After": "60"},
            ), receive
        request.scope[PRINCIPAL_KEY] = principal
        return None, receive

    def _too_large(self) -> Response:
        limit = self.state.settings.max_body_bytes
        return error_response(413, f"request body is larger than {limit} bytes", "PAYLOAD_TOO_LARGE")

    async def _within_rate(self, principal: Principal) -> bool:
        limit = self.state.settings.rate_limit_per_minute
        if limit <= 0:
            return True
        window = int(time.time() // 60)
        key = f"{self.state.settings.namespace}:ratelimit:{principal.key_id}:{window}"
        try:
            async with self.state.redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, 120)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as error:
            # Fail open: losing Redis must not lock operators out of the API.
            log.warning("rate limit not enforced; Redis unavailable", error=str(error))
            return True
        return int(count) <= limit

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None) -> Context:
        principal = request.scope.get(PRINCIPAL_KEY)
        return Context(state=self.state, request=request, response=response, principal=principal)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        lowered = {str(k).lower(): v for k, v in params.items() if isinstance(v, str)}
        key = parse_bearer(lowered.get("authorization")) or lowered.get("x-api-key") or lowered.get("apikey")
        if not key and isinstance(context.request, WebSocket):
            key = _key_from(context.request.headers)
        principal = await self.state.keys.verify(key)
        if principal is None:
            raise ConnectionRejectionError({"message": "a valid API key is required", "code": "UNAUTHENTICATED"})
        context.principal = principal
        return {"role": principal.role.value, "tenantId": principal.tenant_id}

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        static = str(request.url_for("static", path="")).rstrip("/")
        return HTMLResponse(self._ide_html.replace("{{STATIC}}", static))

    def encode_json(self, data: object) -> str:
        return json.dumps(data, default=str)


def _replay(body: bytes) -> Receive:
    """A receive callable that hands the already-read body to the next app once."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def principal_of(scope: Scope) -> Any:
    return scope.get(PRINCIPAL_KEY)
