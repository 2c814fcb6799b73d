"""PostgreSQL, Redis, gRPC health, Elasticsearch and TCP probes against real servers started by the tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.probes.domain import ErrorType, PhaseName, PhaseStatus, ProbeKind
from services.probes.probing.engine import ProbeEngine
from tests.probes.conftest import SECRET_PASSWORD, assert_no_secrets, target
from tests.probes.servers import HttpTestServer, Route, closed_port

E = ErrorType


def _with(url: str, *, user: str | None = None, password: str | None = None, path: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if user is not None:
        netloc = netloc.rsplit("@", 1)[-1]
        netloc = f"{user}{':' + password if password else ''}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path if path is None else path, parts.query, ""))


def _statuses(result: object) -> dict[PhaseName, PhaseStatus]:
    return {p.name: p.status for p in result.phases}  # type: ignore[attr-defined]


async def test_postgres_answers_select_one(engine: ProbeEngine, pg_admin_url: str) -> None:
    """A reachable PostgreSQL passes: DNS, connect+auth and the SELECT 1 round trip are timed; the password is masked."""
    endpoint = _with(pg_admin_url, user="postgres", password="${ERP_PASSWORD}")
    result = await engine.test(target(endpoint, ProbeKind.POSTGRES))
    assert result.success, result.summary
    statuses = _statuses(result)
    assert statuses[PhaseName.TCP_CONNECT] is PhaseStatus.PASSED
    assert statuses[PhaseName.TIME_TO_FIRST_BYTE] is PhaseStatus.PASSED
    assert statuses[PhaseName.PROTOCOL_CHECK] is PhaseStatus.PASSED
    assert "PostgreSQL" in result.summary and "****masked****" in result.evidence.endpoint_url
    assert_no_secrets(repr(result))


async def test_postgres_with_an_unknown_database_or_role_fails_clearly(engine: ProbeEngine, pg_admin_url: str) -> None:
    """A missing database is SCHEMA_MISMATCH and an unknown role INVALID_CREDENTIALS, neither retried."""
    no_db = await engine.test(target(_with(pg_admin_url, path="/no_such_db_x"), ProbeKind.POSTGRES))
    assert no_db.error is not None and no_db.error.error_type is E.SCHEMA_MISMATCH, no_db.summary
    assert "no_such_db_x" in no_db.error.message and no_db.error.code == "SQLSTATE_3D000"
    no_role = await engine.test(target(_with(pg_admin_url, user="nobody_here"), ProbeKind.POSTGRES))
    assert no_role.error is not None and no_role.error.error_type is E.INVALID_CREDENTIALS, no_role.summary
    assert len(no_role.evidence.retry_history) == 1
    assert _statuses(no_role)[PhaseName.TCP_CONNECT] is PhaseStatus.FAILED


async def test_postgres_on_a_closed_port_is_refused(engine: ProbeEngine) -> None:
    """Nothing on the PostgreSQL port is CONNECTION_REFUSED, with retries."""
    result = await engine.test(target(f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres", ProbeKind.POSTGRES))
    assert result.error is not None and result.error.error_type is E.CONNECTION_REFUSED
    assert len(result.evidence.retry_history) == 3


@pytest.fixture
async def redis_user(redis_server_url: str) -> AsyncIterator[str]:
    """A Redis ACL user whose password is the test secret; removed afterwards."""
    name = f"probe_{uuid.uuid4().hex[:8]}"
    client = aioredis.from_url(redis_server_url)
    await client.execute_command("ACL", "SETUSER", name, "on", f">{SECRET_PASSWORD}", "~*", "+@all")
    try:
        yield name
    finally:
        await client.execute_command("ACL", "DELUSER", name)
        await client.aclose()


async def test_redis_answers_ping_and_rejects_a_wrong_password(
    engine: ProbeEngine, redis_server_url: str, redis_user: str
) -> None:
    """PING passes with the right credentials (expanded from ${ERP_PASSWORD}); a wrong password is INVALID_CREDENTIALS."""
    good = await engine.test(
        target(_with(redis_server_url, user=redis_user, password="${ERP_PASSWORD}"), ProbeKind.REDIS)
    )
    assert good.success, good.summary
    assert _statuses(good)[PhaseName.TIME_TO_FIRST_BYTE] is PhaseStatus.PASSED
    bad = await engine.test(target(_with(redis_server_url, user=redis_user, password="wrong-pass"), ProbeKind.REDIS))
    assert bad.error is not None and bad.error.error_type is E.INVALID_CREDENTIALS, bad.summary
    assert "wrong-pass" not in repr(bad) and len(bad.evidence.retry_history) == 1
    assert_no_secrets(repr(good) + repr(bad))


async def test_redis_on_a_closed_port_is_refused(engine: ProbeEngine) -> None:
    """Nothing on the Redis port is CONNECTION_REFUSED in the connect phase."""
    result = await engine.test(target(f"redis://127.0.0.1:{closed_port()}/0", ProbeKind.REDIS))
    assert result.error is not None and result.error.error_type is E.CONNECTION_REFUSED, result.summary


@pytest.fixture
async def grpc_health_server() -> AsyncIterator[int]:
    """A real gRPC server with grpc.health.v1: the server and "erp" SERVING, "pim" NOT_SERVING."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set("erp", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set("pim", health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        yield port
    finally:
        await server.stop(0)


async def test_grpc_health_serving_not_serving_and_unknown(engine: ProbeEngine, grpc_health_server: int) -> None:
    """SERVING passes; NOT_SERVING is SERVICE_UNAVAILABLE; an unregistered service name is reported as unknown."""
    endpoint = f"grpc://127.0.0.1:{grpc_health_server}"
    serving = await engine.test(target(endpoint, ProbeKind.GRPC_HEALTH, grpc_service="erp"))
    assert serving.success and "SERVING" in serving.summary
    assert _statuses(serving)[PhaseName.TCP_CONNECT] is PhaseStatus.PASSED
    down = await engine.test(target(endpoint, ProbeKind.GRPC_HEALTH, grpc_service="pim", max_retries=0))
    assert down.error is not None and down.error.error_type is E.SERVICE_UNAVAILABLE
    assert "NOT_SERVING" in down.error.message
    unknown = await engine.test(target(endpoint, ProbeKind.GRPC_HEALTH, grpc_service="crm"))
    assert unknown.error is not None and unknown.error.error_type in (E.UNKNOWN, E.SERVICE_UNAVAILABLE)


async def test_grpc_health_on_a_closed_port_is_refused_not_just_unavailable(engine: ProbeEngine) -> None:
    """The TCP pre-check tells a refused connection apart from a gRPC UNAVAILABLE."""
    result = await engine.test(target(f"127.0.0.1:{closed_port()}", ProbeKind.GRPC_HEALTH, max_retries=0))
    assert result.error is not None and result.error.error_type is E.CONNECTION_REFUSED


def _cluster(status: str) -> Route:
    document = {"cluster_name": "b2x", "status": status, "number_of_nodes": 3, "unassigned_shards": 2}
    return Route(body=json.dumps(document).encode())


async def test_elasticsearch_green_yellow_red(engine: ProbeEngine) -> None:
    """/_cluster/health green passes, yellow passes degraded with advice, red fails as SERVICE_UNAVAILABLE."""
    for colour in ("green", "yellow", "red"):
        async with HttpTestServer({"/es/_cluster/health": _cluster(colour)}) as server:
            result = await engine.test(target(server.url("/es"), ProbeKind.ELASTICSEARCH))
            assert server.requests[-1].target == "/es/_cluster/health"
        if colour == "green":
            assert result.success and not result.degraded and "green" in result.summary
        elif colour == "yellow":
            assert result.success and result.degraded and "replica" in result.recommendations[0]
        else:
            assert result.error is not None and result.error.error_type is E.SERVICE_UNAVAILABLE
            assert len(result.evidence.retry_history) == 1


async def test_tcp_connect_passes_on_a_listener_and_is_refused_on_a_closed_port(engine: ProbeEngine) -> None:
    """A TCP probe times DNS and connect; a closed port is CONNECTION_REFUSED."""
    async with HttpTestServer({}) as server:
        open_result = await engine.test(target(f"tcp://127.0.0.1:{server.port}", ProbeKind.TCP))
    assert open_result.success and _statuses(open_result)[PhaseName.TLS_HANDSHAKE] is PhaseStatus.SKIPPED
    closed = await engine.test(target(f"tcp://127.0.0.1:{closed_port()}", ProbeKind.TCP, max_retries=0))
    assert closed.error is not None and closed.error.error_type is E.CONNECTION_REFUSED
