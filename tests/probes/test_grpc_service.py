"""The probes service over real gRPC, resolving targets through the real health service, on real PostgreSQL/Redis."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import grpc
import pytest
import structlog
from b2x.monitoring.v1 import events_pb2, health_pb2, health_pb2_grpc, probes_pb2, probes_pb2_grpc

from services.common.events import Resync, Topic
from services.health.main import build_server as build_health
from services.health.settings import HealthSettings
from services.probes.domain import (
    CommunicationError,
    ConnectionTestMetrics,
    ConnectionTestResult,
    ErrorDetails,
    ErrorType,
    ProbeKind,
)
from services.probes.main import build_server
from services.probes.probing.classify import make
from services.probes.repository import PostgresProbeRepository
from services.probes.settings import ProbesSettings
from tests.health.helpers import definition, register
from tests.probes.conftest import ENVIRON, SECRET_QUERY, assert_no_secrets
from tests.probes.servers import HttpTestServer, Pki, Route, closed_port
from tests.support import ServiceHarness

TIMEOUT = 20


async def _stack(harness: ServiceHarness, **probes: object) -> tuple[probes_pb2_grpc.ProbesServiceStub, str]:
    """The health service and a probes service that looks targets up in it; returns the probes stub and health addr."""
    health_addr = await harness.serve("health", build_health, harness.settings_for(HealthSettings))
    settings = harness.settings_for(
        ProbesSettings, health_addr=health_addr, probes_retry_backoff_seconds=0.01, probes_timeout_seconds=2, **probes
    )
    address = await harness.serve("probes", build_server, settings)
    return probes_pb2_grpc.ProbesServiceStub(harness.channel(address)), health_addr


async def _register(harness: ServiceHarness, health_addr: str, slug: str, endpoint: str, **probe: object) -> str:
    stub = health_pb2_grpc.HealthServiceStub(harness.channel(health_addr))
    options = health_pb2.ProbeOptions(**probe)  # type: ignore[arg-type]
    created = await register(stub, definition(slug, endpoint, probe_kind=health_pb2.PROBE_KIND_HTTP, probe=options))
    return created.service.id


@pytest.fixture(autouse=True)
def _agent_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe agent's environment holds the secrets its targets reference as ${NAME}."""
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)


async def _rows_text(database_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        tests = await conn.fetch("SELECT * FROM probes.connection_tests")
        errors = await conn.fetch("SELECT * FROM probes.communication_errors")
    finally:
        await conn.close()
    return repr([dict(r) for r in tests]) + repr([dict(r) for r in errors])


async def test_a_failed_test_is_stored_published_and_never_leaks_a_secret(harness: ServiceHarness, pki: Pki) -> None:
    """TestConnection by slug stores the result and the error, publishes each phase, the result and the error,
    and no secret from headers, URL userinfo or query appears in the response, the tables, the events or the logs."""
    stub, health_addr = await _stack(harness)
    echo = Route(401, "Unauthorized", body=f'{{"echo": "{ENVIRON["ERP_TOKEN"]}"}}'.encode())
    bus = (await harness.resources("probes")).bus
    async with HttpTestServer({"/api": echo}, pki.valid()) as server:
        endpoint = server.url(f"/api?token={SECRET_QUERY}").replace("https://", "https://sync:${ERP_PASSWORD}@")
        service_id = await _register(
            harness,
            health_addr,
            "erp",
            endpoint,
            ca_file=str(pki.ca_file),
            headers={"Authorization": "Bearer ${ERP_TOKEN}"},
        )
        async with await bus.subscribe(Topic.CONNECTION_TESTS, Topic.COMMUNICATION_ERRORS) as events:
            with structlog.testing.capture_logs() as logs:
                response = await stub.TestConnection(probes_pb2.TestConnectionRequest(service="erp"), timeout=TIMEOUT)
            seen: list[events_pb2.Event] = []
            while not any(e.HasField("communication_error_recorded") for e in seen):
                item = await events.get(timeout=TIMEOUT)
                assert not isinstance(item, Resync)
                seen.append(item)
    result = response.result
    assert not result.success and result.service_id == service_id and result.service_slug == "erp"
    assert result.error_type == probes_pb2.COMMUNICATION_ERROR_TYPE_AUTHENTICATION_FAILED
    assert result.error_group == probes_pb2.COMMUNICATION_ERROR_GROUP_AUTHENTICATION
    assert (
        result.evidence.http_status_code == 401 and result.evidence.request_headers["Authorization"] == "****masked****"
    )
    assert result.communication_error_id and result.recommendations
    progress = [e.connection_test_progress for e in seen if e.HasField("connection_test_progress")]
    assert [p.phase.name for p in progress[:-1]] == [
        "dns", "tcp_connect", "tls_handshake", "time_to_first_byte", "content_download", "protocol_check"
    ]  # fmt: skip
    assert progress[-1].result.id == result.id and all(p.test_id == result.id for p in progress)
    recorded = next(e for e in seen if e.HasField("communication_error_recorded")).communication_error_recorded
    assert recorded.error.id == result.communication_error_id and recorded.error.connection_test_id == result.id
    stored = await _rows_text(harness.settings.database_url)
    assert "AUTHENTICATION_FAILED" in stored and result.id in stored
    for text in (str(response), stored, repr(seen), repr(logs)):
        assert_no_secrets(text)


async def test_tests_and_errors_can_be_listed_and_read_back(harness: ServiceHarness) -> None:
    """Stored tests and communication errors come back by id and in pages, newest first, filtered by service and type."""
    stub, health_addr = await _stack(harness)
    async with HttpTestServer({"/ok": Route(), "/down": Route(503, "Service Unavailable")}) as server:
        await _register(harness, health_addr, "pim", server.url("/ok"))
        await _register(harness, health_addr, "crm", server.url("/down"), max_retries=0)
        ids = []
        for slug in ("pim", "crm", "pim"):
            reply = await stub.TestConnection(probes_pb2.TestConnectionRequest(service=slug), timeout=TIMEOUT)
            ids.append(reply.result.id)
    first = await stub.ListConnectionTests(
        probes_pb2.ListConnectionTestsRequest(page={"page_size": 2}), timeout=TIMEOUT
    )
    assert [r.id for r in first.results] == [ids[2], ids[1]] and first.page_info.total_count == 3
    rest = await stub.ListConnectionTests(
        probes_pb2.ListConnectionTestsRequest(page={"page_size": 2, "page_token": first.page_info.next_page_token}),
        timeout=TIMEOUT,
    )
    assert [r.id for r in rest.results] == [ids[0]] and not rest.page_info.has_next_page
    only_pim = await stub.ListConnectionTests(probes_pb2.ListConnectionTestsRequest(service="pim"), timeout=TIMEOUT)
    assert {r.service_slug for r in only_pim.results} == {"pim"} and len(only_pim.results) == 2
    fetched = (
        await stub.GetConnectionTest(probes_pb2.GetConnectionTestRequest(test_id=ids[1]), timeout=TIMEOUT)
    ).result
    assert fetched.error_type == probes_pb2.COMMUNICATION_ERROR_TYPE_SERVICE_UNAVAILABLE and fetched.phases
    assert fetched.evidence.timing.HasField("time_to_first_byte_ms")
    errors = await stub.ListCommunicationErrors(
        probes_pb2.ListCommunicationErrorsRequest(
            service="crm", types=[probes_pb2.COMMUNICATION_ERROR_TYPE_SERVICE_UNAVAILABLE]
        ),
        timeout=TIMEOUT,
    )
    assert len(errors.errors) == 1 and errors.errors[0].connection_test_id == ids[1]
    error = (
        await stub.GetCommunicationError(
            probes_pb2.GetCommunicationErrorRequest(error_id=errors.errors[0].id), timeout=TIMEOUT
        )
    ).error
    assert error.details.http_status_code == 503 and error.details.retry_history[0].attempt_number == 1
    none = await stub.ListCommunicationErrors(
        probes_pb2.ListCommunicationErrorsRequest(groups=[probes_pb2.COMMUNICATION_ERROR_GROUP_NETWORK]),
        timeout=TIMEOUT,
    )
    assert list(none.errors) == []


async def test_stream_connection_test_yields_each_phase_then_the_result(harness: ServiceHarness) -> None:
    """StreamConnectionTest sends the phases as they complete and then the stored result."""
    stub, health_addr = await _stack(harness)
    async with HttpTestServer({"/": Route()}) as server:
        await _register(harness, health_addr, "erp", server.url("/"))
        updates = [
            u
            async for u in stub.StreamConnectionTest(
                probes_pb2.StreamConnectionTestRequest(service="erp"), timeout=TIMEOUT
            )
        ]
    assert [u.WhichOneof("update") for u in updates] == ["phase"] * 6 + ["result"]
    assert updates[-1].result.success and len({u.test_id for u in updates}) == 1
    assert updates[-1].result.speed_rating != probes_pb2.SPEED_RATING_UNSPECIFIED
    stored = await stub.GetConnectionTest(
        probes_pb2.GetConnectionTestRequest(test_id=updates[-1].test_id), timeout=TIMEOUT
    )
    assert stored.result.success


async def test_unknown_service_is_not_found_and_an_unreachable_registry_is_unavailable(
    harness: ServiceHarness,
) -> None:
    """A slug the registry does not know is NOT_FOUND; a registry that is down is UNAVAILABLE and says which."""
    stub, _ = await _stack(harness)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.TestConnection(probes_pb2.TestConnectionRequest(service="nope"), timeout=TIMEOUT)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in (missing.value.details() or "")
    lost = f"127.0.0.1:{closed_port()}"
    settings = harness.settings_for(ProbesSettings, health_addr=lost, grpc_deadline_seconds=1)
    orphan = probes_pb2_grpc.ProbesServiceStub(harness.channel(await harness.serve("probes", build_server, settings)))
    with pytest.raises(grpc.aio.AioRpcError) as down:
        await orphan.TestConnection(probes_pb2.TestConnectionRequest(service="erp"), timeout=TIMEOUT)
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "health service" in (down.value.details() or "") and lost in (down.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await stub.TestConnection(probes_pb2.TestConnectionRequest(service=" "), timeout=TIMEOUT)
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_communication_errors_get_a_partition_for_their_month(harness: ServiceHarness) -> None:
    """An error in a month without a partition creates it on the way in; retention can then drop it whole."""
    resources = await harness.resources("probes")
    repository = PostgresProbeRepository(resources.pool)
    when = datetime(2031, 7, 15, tzinfo=UTC)
    error = CommunicationError(
        id="0b7a5f7e-6a0b-4c59-9c1e-4a4a3c8f2b11",
        service_id="svc",
        service_slug="erp",
        timestamp=when,
        classification=make(ErrorType.READ_TIMEOUT, "TIMEOUT", "no answer"),
        details=ErrorDetails(correlation_id="6b0f6d8e-2f1b-4a8e-9d7e-3e2c1b0a9f88"),
    )
    result = ConnectionTestResult(
        id="2d1c5b0e-6f7a-4b8c-9d0e-1f2a3b4c5d6e", service_id="svc", service_slug="erp", executed_at=when,
        success=False, kind=ProbeKind.HTTP, endpoint="https://erp", correlation_id=error.details.correlation_id,
        metrics=ConnectionTestMetrics(), evidence=error.details, error=error.classification, communication_error_id=error.id,
    )  # fmt: skip
    await repository.save(result, error)
    partitions = await resources.pool.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'probes.communication_errors'::regclass"
    )
    assert "communication_errors_2031_07" in {r["relname"] for r in partitions}
    assert (await repository.get_error(error.id)).classification.error_type is ErrorType.READ_TIMEOUT
