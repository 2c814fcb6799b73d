"""The gateway's Starlette app: lifespan-owned resources, /graphql, /health/*, /metrics, static files."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from gateway.audit import AuditLog
from gateway.auth import KeyStore
from gateway.clients import ServiceClients
from gateway.context import AppState
from gateway.dashboard import routes as dashboard_routes
from gateway.limits import RequestLimiter
from gateway.metrics import HttpMetricsMiddleware
from gateway.revocations import SocketRegistry
from gateway.schema import build_schema
from gateway.security_headers import SecurityHeadersMiddleware
from gateway.settings import GatewaySettings
from gateway.view import STATIC_DIR, GatewayGraphQL
from services.common.db import create_pool, migrate
from services.common.events import EventBus, connect_redis
from services.common.metrics import announce
from services.common.runtime import database_answers
from services.common.tracing import asgi_middleware, tracing_enabled

MIGRATIONS = Path(__file__).parent / "migrations"
LIVE_SUBSCRIBERS = Gauge("b2x_gateway_live_subscribers", "GraphQL subscriptions currently attached to the event bus")


@asynccontextmanager
async def open_state(settings: GatewaySettings) -> AsyncIterator[AppState]:
    """Pool (migrated), Redis, event bus, gRPC clients, key store and audit log; closed on exit."""
    pool = await create_pool(
        settings.database_url,
        application_name="b2x-gateway",
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        connect_timeout=settings.db_connect_timeout_seconds,
        command_timeout=settings.db_command_timeout_seconds,
    )
    try:
        await migrate(pool, "gateway", MIGRATIONS)
        redis = await connect_redis(
            settings.redis_url,
            timeout=settings.db_connect_timeout_seconds,
            command_timeout=settings.redis_timeout_seconds,
        )
        bus = EventBus(redis, settings.namespace)
        clients = ServiceClients(
            settings.jobs_addr,
            settings.health_addr,
            settings.probes_addr,
            settings.grpc_deadline_seconds,
            settings.grpc_tls(),
            settings.grpc_keepalive_seconds,
        )
        keys = KeyStore(pool, settings.api_key_cache_seconds)
        sockets = SocketRegistry(keys, bus, settings.websocket_key_recheck_seconds)
        try:
            await sockets.start()
            yield AppState(
                settings=settings,
                pool=pool,
                redis=redis,
                bus=bus,
                clients=clients,
                keys=keys,
                audit=AuditLog(pool),
                limiter=RequestLimiter(
                    redis,
                    settings.namespace,
                    per_minute=settings.rate_limit_per_minute,
                    auth_failures=settings.auth_failures_per_minute,
                    timeout=min(0.5, settings.redis_timeout_seconds),
                ),
                sockets=sockets,
            )
        finally:
            await sockets.stop()
            await clients.close()
            await bus.close()
            await redis.aclose()
    finally:
        await pool.close()


async def _ready(state: AppState) -> tuple[bool, dict[str, str]]:
    """Ready only when the three services, Redis and PostgreSQL all answer."""

    async def redis_ok() -> bool:
        try:
            return bool(await asyncio.wait_for(state.redis.ping(), 1.5))
        except Exception:
            return False

    async def postgres_ok() -> bool:
        return await database_answers(state.pool)

    names = [c.name for c in state.clients.all()] + ["redis", "postgres"]
    results = await asyncio.gather(*(state.clients.serving(c) for c in state.clients.all()), redis_ok(), postgres_ok())
    checks = {name: ("ok" if ok else "unavailable") for name, ok in zip(names, results, strict=True)}
    return all(results), checks


class GraphQLEndpoint:
    """ASGI endpoint for /graphql (HTTP and WebSocket): dispatches to the view the lifespan built."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        view: GatewayGraphQL = scope["state"]["view"]
        await view(scope, receive, send)


async def live(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    ok, checks = await _ready(request.state.app_state)
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)


async def metrics(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: GatewaySettings) -> Any:
    """The ASGI app; resources are opened by its lifespan, never at import. Wrapped in the HTTP metrics
    middleware and, when tracing is on, OpenTelemetry's ASGI middleware (services/common/tracing.py)."""
    announce("gateway")
    schema = build_schema(
        settings.max_query_depth,
        settings.max_aliases,
        settings.max_query_tokens,
        settings.max_field_repeats,
        traced=tracing_enabled(),
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with open_state(settings) as state:
            # What exists now (modules, the schema, clients) lives as long as the process: keep it out of the
            # collector's full passes, which a burst of live events triggers (docs/adr/0023-gateway-send-path.md).
            gc.collect()
            gc.freeze()
            try:
                # The revocation listener is the gateway's own subscriber, not a client's.
                LIVE_SUBSCRIBERS.set_function(lambda: state.bus.subscriber_count() - state.sockets.bus_subscribers)
                yield {"app_state": state, "view": GatewayGraphQL(schema, state)}
            finally:
                gc.unfreeze()  # collectable again (an app in a test process is not the process's last)

    graphql_endpoint = GraphQLEndpoint()
    routes = [
        Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql_endpoint),
        Route("/health/live", live),
        Route("/health/ready", ready),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        *dashboard_routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeadersMiddleware)])
    return asgi_middleware(HttpMetricsMiddleware(app))
