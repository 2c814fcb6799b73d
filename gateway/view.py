"""The /graphql endpoint: authentication, body-size and rate limits in front of Strawberry.

HTTP: the API key comes from `Authorization: Bearer <key>` (or `X-API-Key`). A GET that asks for
HTML gets GraphiQL (served from local files) without a key; everything else needs one.
WebSocket: only `graphql-transport-ws`; the key travels in the `connection_init` payload
(`{"Authorization": "Bearer <key>"}`) or the upgrade request's header. A bad key closes the socket
with 4403.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from cross_web import HTTPException
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
from gateway.errors import DATABASE_DOWN, DATABASE_DOWN_MESSAGE
from gateway.fanout import PreEncoded, encoded_next
from gateway.payloads import check_operation_payload, has_lone_surrogate
from gateway.websocket import GatewayTransportWS, GatewayUnavailableError
from services.common.logging import get_logger

log = get_logger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
PRINCIPAL_KEY = "b2x.principal"


def error_response(status: int, message: str, code: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """A GraphQL-shaped error body for failures that happen before GraphQL runs."""
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status, headers=headers)


def database_unavailable(error: BaseException) -> JSONResponse:
    """503 with SERVICE_UNAVAILABLE when the gateway's own database (API keys) is down or hung."""
    log.warning("request refused; the gateway's database is unavailable", error=str(error) or type(error).__name__)
    return error_response(503, DATABASE_DOWN_MESSAGE, "SERVICE_UNAVAILABLE", {"Retry-After": "5"})


def _key_from(headers: Mapping[str, str]) -> str | None:
    return parse_bearer(headers.get("authorization")) or headers.get("x-api-key")


_HTTP_CODES = {401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND", 413: "PAYLOAD_TOO_LARGE",
               429: "RATE_LIMITED"}  # fmt: skip


def _with_header(send: Send, name: bytes, value: bytes) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (name, value)]}
        await send(message)

    return wrapped


class GatewayGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = GatewayTransportWS

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
        request_id = uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(request_id=request_id)
        send = _with_header(send, b"x-request-id", request_id.encode())
        try:
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                # A browser asking for the page (shared links carry ?query=...): GraphiQL, no key needed.
                page = await self.render_graphql_ide(request)
                await page(scope, receive, send)
                return
            try:
                async with asyncio.timeout(self.state.settings.db_command_timeout_seconds):
                    response, receive = await self._admit(request, receive)
            except DATABASE_DOWN as error:
                response = database_unavailable(error)
            if response is None:
                try:
                    response = await self.run(Request(scope, receive))
                except HTTPException as error:
                    # Strawberry's own refusals (unsupported content type, batching...) in our JSON shape.
                    code = _HTTP_CODES.get(error.status_code, "BAD_USER_INPUT")
                    response = error_response(error.status_code, error.reason, code)
            await response(scope, receive, send)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")

    async def _admit(self, request: Request, receive: Receive) -> tuple[Response | None, Receive]:
        """Check size, body, key and rate; returns an error response or None plus the receive to use."""
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
            if problem := _body_problem(bytes(body), request.headers.get("content-type", "")):
                return error_response(400, problem, "BAD_USER_INPUT"), receive
        elif variables := request.query_params.get("variables"):
            try:
                if has_lone_surrogate(json.loads(variables)):
                    return error_response(400, "'variables' is not valid Unicode", "BAD_USER_INPUT"), receive
            except ValueError:
                return error_response(400, "'variables' is not valid JSON", "BAD_USER_INPUT"), receive
        principal, refusal = await self.authenticate(_key_from(request.headers), self.client_address(request))
        if refusal is not None:
            return refusal, receive
        assert principal is not None
        if not await self.state.limiter.within_rate(principal.key_id):
            return self._rate_limited(principal), receive
        request.scope[PRINCIPAL_KEY] = principal
        return None, receive

    @staticmethod
    def client_address(request: Request | WebSocket) -> str | None:
        return request.client.host if request.client else None

    async def authenticate(self, key: str | None, address: str | None) -> tuple[Principal | None, Response | None]:
        """The key's principal, or a 401/429 response. Failures are throttled per address before any lookup."""
        principal = self.state.keys.peek(key)
        if principal is not None:
            return principal, None
        limiter = self.state.limiter
        if not self.state.keys.recently_valid(key) and await limiter.auth_blocked(address):
            wait = limiter.retry_after()
            message = f"too many failed authentications from {address}; retry in {wait} s"
            return None, error_response(429, message, "RATE_LIMITED", {"Retry-After": str(wait)})
        principal = await self.state.keys.verify(key)
        if principal is None:
            await limiter.auth_failed(address)
            message = (
                "the API key is invalid, revoked or expired" if key
                else "an API key is required: send 'Authorization: Bearer <key>'"
            )  # fmt: skip
            return None, error_response(401, message, "UNAUTHENTICATED", {"WWW-Authenticate": "Bearer"})
        return principal, None

    def _rate_limited(self, principal: Principal) -> Response:
        limiter = self.state.limiter
        wait = limiter.retry_after()
        return error_response(
            429,
            f"rate limit of {limiter.per_minute} requests per minute exceeded for key '{principal.name}'; "
            f"retry in {wait} s",
            "RATE_LIMITED",
            {"Retry-After": str(wait)},
        )

    def _too_large(self) -> Response:
        limit = self.state.settings.max_body_bytes
        return error_response(413, f"request body is larger than {limit} bytes", "PAYLOAD_TOO_LARGE")

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None) -> Context:
        principal = request.scope.get(PRINCIPAL_KEY)
        return Context(state=self.state, request=request, response=response, principal=principal)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        lowered = {str(k).lower(): v for k, v in params.items() if isinstance(v, str)}
        key = parse_bearer(lowered.get("authorization")) or lowered.get("x-api-key") or lowered.get("apikey")
        if not key and isinstance(context.request, WebSocket):
            key = _key_from(context.request.headers)
        try:
            async with asyncio.timeout(self.state.settings.db_command_timeout_seconds):
                principal, refusal = await self.authenticate(key, self.client_address(context.request))
        except DATABASE_DOWN as error:
            raise GatewayUnavailableError(str(error) or type(error).__name__) from None
        if principal is None:
            reason = "a valid API key is required" if refusal is None or refusal.status_code == 401 else (
                "too many failed authentications from this address; retry in a minute")  # fmt: skip
            raise ConnectionRejectionError({"message": reason, "code": "UNAUTHENTICATED"})
        context.principal = principal
        context.api_key = key
        return {"role": principal.role.value, "tenantId": principal.tenant_id}

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        static = str(request.url_for("static", path="")).rstrip("/")
        return HTMLResponse(self._ide_html.replace("{{STATIC}}", static))

    def encode_json(self, data: object) -> str:
        # A subscription's `next` message: its data encoded once however many subscribers it goes to.
        if isinstance(data, PreEncoded):
            return str(data)
        return encoded_next(data) or json.dumps(data, default=str)


def _body_problem(body: bytes, content_type: str) -> str | None:
    """Why a POST body is bad input (not UTF-8, not JSON, not one operation), or None."""
    if "application/json" not in content_type.lower():
        return None  # strawberry refuses other content types; the caller turns that into JSON
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"the body is not valid UTF-8 (byte {error.start})"
    try:
        data = json.loads(text)
    except ValueError as error:
        return f"the body is not valid JSON: {error}"
    return check_operation_payload(data)


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
