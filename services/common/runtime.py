"""Process plumbing shared by the services' composition roots (`services/*/main.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import redis.asyncio as aioredis

from services.common.db import create_pool, migrate
from services.common.errors import EXIT_CONFIG, ConfigurationError, StartupError
from services.common.events import EventBus, connect_redis
from services.common.grpc_server import GrpcServer
from services.common.logging import get_logger
from services.common.metrics import announce, start_metrics_server
from services.common.settings import CommonSettings
from services.common.tasks import STOP_SECONDS
from services.common.tracing import configure_tracing

log = get_logger(__name__)


@dataclass
class Resources:
    """What a service process owns for its lifetime."""

    pool: asyncpg.Pool
    redis: aioredis.Redis
    bus: EventBus

    async def database_ready(self) -> bool:
        return await database_answers(self.pool)


async def database_answers(pool: asyncpg.Pool, timeout: float = 1.5) -> bool:
    """Whether PostgreSQL answers a query now. A second try on a fresh connection: after PostgreSQL
    restarts, the first pooled connection is a dead one, and readiness should follow the recovery at once."""
    for _ in range(2):
        try:
            async with asyncio.timeout(timeout), pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        except Exception:  # noqa: S112 - any failure means "not ready"; the second try decides
            continue
        return True
    return False


@contextlib.asynccontextmanager
async def open_resources(
    settings: CommonSettings, *, service: str, schema: str, migrations: Path
) -> AsyncIterator[Resources]:
    """Pool (migrated), Redis client and event bus; closed in reverse order on exit."""
    pool = await create_pool(
        settings.database_url,
        application_name=f"b2x-{service}",
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        connect_timeout=settings.db_connect_timeout_seconds,
        command_timeout=settings.db_command_timeout_seconds,
    )
    try:
        await migrate(pool, schema, migrations)
        redis = await connect_redis(
            settings.redis_url,
            timeout=settings.db_connect_timeout_seconds,
            command_timeout=settings.redis_timeout_seconds,
        )
        bus = EventBus(redis, settings.namespace)
        try:
            yield Resources(pool=pool, redis=redis, bus=bus)
        finally:
            await bus.close()
            await redis.aclose()
    finally:
        await close_pool(pool)


async def close_pool(pool: asyncpg.Pool, timeout: float = STOP_SECONDS) -> None:
    """Close the pool once its connections are back, or after `timeout` close them anyway: a connection
    still held by a task that did not stop must not keep the process from ending (asyncpg's close()
    waits for every connection, without limit)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await pool.close()
            return
    # Cancelled by the timeout, close() terminated the pool's connections.
    log.error("database connections still in use at shutdown; closed them", waited_seconds=timeout)


async def wait_for_shutdown() -> str:
    """Block until SIGTERM or SIGINT; returns the signal's name."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[str] = loop.create_future()

    def on_signal(sig: signal.Signals) -> None:
        if not received.done():
            received.set_result(sig.name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await received
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def serve_until_signal(
    name: str,
    settings: CommonSettings,
    build: Callable[[Resources], GrpcServer],
    *,
    migrations: Path,
    host: str,
    port: int,
    metrics_port: int,
) -> None:
    """The life of a service process: resources, server, metrics endpoint (on the same `host` as gRPC), then
    wait for SIGTERM and stop
    (NOT_SERVING first, then a grace period for calls in flight)."""
    announce(name)
    configure_tracing(name)
    tls = settings.grpc_tls()
    tls.check()
    async with open_resources(settings, service=name, schema=name, migrations=migrations) as resources:
        server = build(resources)
        await server.start(host, port, tls)
        start_metrics_server(metrics_port, host)
        signal_name = await wait_for_shutdown()
        log.info("shutting down", signal=signal_name)
        await server.stop(settings.grpc_grace_seconds)


def run_process(name: str, main: Callable[[], Coroutine[Any, Any, None]]) -> NoReturn:
    """Run a service's async main; a StartupError becomes one line on stderr and exit status 1
    (EXIT_CONFIG for a ConfigurationError, so a supervisor does not restart into it)."""
    try:
        asyncio.run(main())
    except StartupError as error:
        print(f"b2x-{name}: {error}", file=sys.stderr)
        sys.exit(EXIT_CONFIG if isinstance(error, ConfigurationError) else 1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)
