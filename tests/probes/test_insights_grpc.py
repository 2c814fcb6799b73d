"""The insight RPCs over real gRPC, with the real health registry, PostgreSQL, Redis and HTTP servers."""

from __future__ import annotations

import json
import re
import uuid
import zlib
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from b2x.monitoring.v1 import health_pb2, health_pb2_grpc, probes_pb2, probes_pb2_grpc

from services.health.main import build_server as build_health
from services.health.settings import HealthSettings
from services.probes.agent.store import CheckStore
from services.probes.domain import CommunicationError, ErrorDetails, ErrorType, Timing
from services.probes.main import build_agent, build_server
from services.probes.partitions import Partitions
from services.probes.probing.classify import make
from services.probes.repository import insert_errors
from tests.health.helpers import definition, register
from tests.probes.agents import StaticTargets, check_record, eventually, fast_settings, http_target
from tests.probes.conftest import ENVIRON, SECRET_QUERY, assert_no_secrets
from tests.probes.servers import HttpTestServer, Route
from tests.support import ServiceHarness

TIMEOUT = 20


@pytest.fixture(autouse=True)
def _agent_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)


async def _stack(
    harness: ServiceHarness,
) -> tuple[probes_pb2_grpc.ProbesServiceStub, health_pb2_grpc.HealthServiceStub]:
    health_addr = await harness.serve("health", build_health, harness.settings_for(HealthSettings))
    address = await harness.serve("probes", build_server, fast_settings(harness, health_addr=health_addr))
    health = health_pb2_grpc.HealthServiceStub(harness.channel(health_addr))
    return probes_pb2_grpc.ProbesServiceStub(harness.channel(address)), health


def _error(service_id: str, at: datetime, error_type: ErrorType = ErrorType.READ_TIMEOUT) -> CommunicationError:
    details = ErrorDetails(
        http_method="POST", endpoint_url=f"https://erp.example.test/api/v2/articles/{at.hour}/sync",
        request_headers={"Authorization": "****masked****", "X-Tenant-Id": "tenant-123"},
        request_payload_summary='{"articles": [...], "count": 1500}', request_payload_size_bytes=2_400_000,
        timing=Timing(dns_ms=12, tcp_ms=18, tls_ms=25, ttfb_ms=30_000, total_ms=30_055),
        correlation_id=str(uuid.uuid4()), trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id="00f067aa0ba902b7",
    )  # fmt: skip
    return CommunicationError(
        str(uuid.uuid4()), service_id, "erp", at, make(error_type, "TIMEOUT", "no answer within 30 s"), details,
        recommendations=["the service hangs; check its worker pool"],
    )  # fmt: skip


async def test_error_patterns_find_the_daily_spike_in_the_callers_time_zone(harness: ServiceHarness) -> None:
    """A week of timeouts at 13:00-15:00 UTC comes back as fingerprints, a heatmap and "14:00-16:00 daily" in UTC+1;
    a time zone that does not exist is INVALID_ARGUMENT."""
    stub, health = await _stack(harness)
    service_id = (await register(health, definition("erp"))).service.id
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    errors = []
    for day in range(1, 8):
        base = end - timedelta(days=day)
        errors += [_error(service_id, base + timedelta(hours=h, minutes=7 * i)) for h in (13, 14) for i in range(6)]
        errors.append(_error(service_id, base + timedelta(hours=3), ErrorType.TOKEN_EXPIRED))
    pool = (await harness.resources("probes")).pool
    async with pool.acquire() as conn:
        await insert_errors(conn, errors, Partitions())
    request = probes_pb2.GetErrorPatternsRequest(service="erp", timezone="Etc/GMT-1")
    request.time_range.start.FromDatetime(end - timedelta(days=7))
    request.time_range.end.FromDatetime(end)
    report = await stub.GetErrorPatterns(request, timeout=TIMEOUT)
    assert [p.text for p in report.patterns] == [
        "Timeout errors spike during 14:00\u201316:00 on 6 of the last 6 days"
    ] or [p.text for p in report.patterns] == ["Timeout errors spike during 14:00\u201316:00 daily"]
    assert report.patterns[0].service_slug == "erp" and report.timezone == "Etc/GMT-1"
    assert report.total_errors == 7 * 13 and len(report.heatmap) == 168
    assert report.top_groups[0].error_group == probes_pb2.COMMUNICATION_ERROR_GROUP_TIMEOUT
    assert report.top_types[1].error_type == probes_pb2.COMMUNICATION_ERROR_TYPE_TOKEN_EXPIRED
    endpoints = {f.endpoint for f in report.fingerprints}
    assert "https://erp.example.test/api/v2/articles/{id}/sync" in endpoints
    assert report.fingerprints[0].trend == probes_pb2.ERROR_TREND_NEW and len(report.trend) == 8  # local days touched
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.GetErrorPatterns(probes_pb2.GetErrorPatternsRequest(timezone="Mars/Olympus"), timeout=TIMEOUT)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_errors_export_as_json_and_as_a_report_to_the_provider(harness: ServiceHarness) -> None:
    """Chosen errors export as JSON with their full evidence; a filter exports the "Report to Provider" text with
    correlation ids, waterfall and retry history; unknown ids and PDF are refused."""
    stub, _ = await _stack(harness)
    now = datetime.now(UTC)
    errors = [_error("svc", now - timedelta(minutes=m)) for m in range(3)]
    pool = (await harness.resources("probes")).pool
    async with pool.acquire() as conn:
        await insert_errors(conn, errors, Partitions())
    chosen = await stub.ExportCommunicationErrors(
        probes_pb2.ExportCommunicationErrorsRequest(error_ids=[errors[2].id, errors[0].id]), timeout=TIMEOUT
    )
    document = json.loads(chosen.content)
    assert [e["id"] for e in document["errors"]] == [errors[2].id, errors[0].id] and chosen.error_count == 2
    assert chosen.content_type == "application/json" and chosen.filename.endswith(".json")
    first = document["errors"][0]
    assert first["request"]["headers"]["Authorization"] == "****masked****" and first["timing_ms"]["ttfb_ms"] == 30_000
    assert first["correlation_id"] == errors[2].details.correlation_id and first["error_type"] == "READ_TIMEOUT"
    text = await stub.ExportCommunicationErrors(
        probes_pb2.ExportCommunicationErrorsRequest(
            service="erp", types=[probes_pb2.COMMUNICATION_ERROR_TYPE_READ_TIMEOUT], limit=2,
            format=probes_pb2.EXPORT_FORMAT_TEXT,
        ),
        timeout=TIMEOUT,
    )  # fmt: skip
    assert text.truncated and text.error_count == 2 and text.filename.startswith("report-to-provider-")
    body = text.content
    assert body.startswith("Subject: Failing requests from B2X to erp: READ_TIMEOUT") and "Hello," in body
    assert errors[0].details.correlation_id in body and "First byte" in body and "30,000 ms" in body
    assert "Body (truncated)" in body and errors[2].details.correlation_id not in body
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.ExportCommunicationErrors(
            probes_pb2.ExportCommunicationErrorsRequest(error_ids=[str(uuid.uuid4())]), timeout=TIMEOUT
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as pdf:
        await stub.ExportCommunicationErrors(
            probes_pb2.ExportCommunicationErrorsRequest(format=probes_pb2.EXPORT_FORMAT_PDF), timeout=TIMEOUT
        )
    assert pdf.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _pdf_text(data: bytes) -> str:
    """The page content streams of a PDF, inflated."""
    text = ""
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            text += zlib.decompress(stream).decode("latin-1")
        except zlib.error:
            text += stream.decode("latin-1")
    return text


async def test_a_connection_test_exports_as_json_text_and_pdf_without_secrets(harness: ServiceHarness, pki) -> None:  # type: ignore[no-untyped-def]
    """A failed test of a service with a secret query value exports to all three formats; none contains the secret."""
    stub, health = await _stack(harness)
    async with HttpTestServer(
        {"/api": Route(401, "Unauthorized", headers=[("WWW-Authenticate", 'Bearer error="invalid_token"')])},
        pki.valid(),
    ) as web:
        options = health_pb2.ProbeOptions(ca_file=str(pki.ca_file), headers={"Authorization": "Bearer ${ERP_TOKEN}"})
        await register(health, definition("erp", web.url(f"/api?token={SECRET_QUERY}"), probe=options))
        result = (await stub.TestConnection(probes_pb2.TestConnectionRequest(service="erp"), timeout=TIMEOUT)).result
    exports = {}
    for fmt in (probes_pb2.EXPORT_FORMAT_JSON, probes_pb2.EXPORT_FORMAT_TEXT, probes_pb2.EXPORT_FORMAT_PDF):
        exports[fmt] = await stub.ExportConnectionTest(
            probes_pb2.ExportConnectionTestRequest(test_id=result.id, format=fmt), timeout=TIMEOUT
        )
    document = json.loads(exports[probes_pb2.EXPORT_FORMAT_JSON].content)["connection_test"]
    assert document["id"] == result.id and document["status"] == "FAILED" and document["service_name"] == "ERP system"
    assert document["error"]["type"] in ("TOKEN_EXPIRED", "AUTHENTICATION_FAILED") and document["phases"]
    assert document["evidence"]["request"]["headers"]["Authorization"] == "****masked****"
    text = exports[probes_pb2.EXPORT_FORMAT_TEXT].content.decode()
    assert text.startswith("Connection Test Results - ERP system") and "Status: FAILED" in text and "TIMING" in text
    pdf = exports[probes_pb2.EXPORT_FORMAT_PDF]
    assert pdf.content.startswith(b"%PDF-") and pdf.content_type == "application/pdf"
    assert pdf.filename.startswith("connection-test-erp-") and pdf.filename.endswith(".pdf")
    drawn = _pdf_text(pdf.content)
    assert "Connection Test Report" in drawn and "FAILED" in drawn and "Latency breakdown" in drawn
    for content in (exports[probes_pb2.EXPORT_FORMAT_JSON].content.decode(), text, drawn):
        assert_no_secrets(content)
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.ExportConnectionTest(
            probes_pb2.ExportConnectionTestRequest(test_id=str(uuid.uuid4())), timeout=TIMEOUT
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_test_all_connections_streams_each_result_as_it_finishes(harness: ServiceHarness) -> None:
    """Every enabled service is tested once; each message counts completed of total."""
    stub, health = await _stack(harness)
    async with HttpTestServer({"/ok": Route(), "/down": Route(503, "Service Unavailable")}) as web:
        await register(health, definition("pim", web.url("/ok")))
        await register(health, definition("crm", web.url("/down"), probe=health_pb2.ProbeOptions(max_retries=0)))
        updates = [u async for u in stub.TestAllConnections(probes_pb2.TestAllConnectionsRequest(), timeout=TIMEOUT)]
        named = [
            u
            async for u in stub.TestAllConnections(
                probes_pb2.TestAllConnectionsRequest(services=["pim"]), timeout=TIMEOUT
            )
        ]
    assert [(u.completed, u.total) for u in updates] == [(1, 2), (2, 2)]
    assert {u.result.service_slug: u.result.success for u in updates} == {"pim": True, "crm": False}
    assert [u.result.service_slug for u in named] == ["pim"]


async def test_latency_history_and_check_states_come_from_the_stored_checks(harness: ServiceHarness) -> None:
    """Checks over three hours give hour points with availability and latency, minute points on request, a
    summary, and the latest state per service."""
    stub, health = await _stack(harness)
    service_id = (await register(health, definition("erp"))).service.id
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    records = []
    for minute in range(180):
        at = end - timedelta(hours=3) + timedelta(minutes=minute, seconds=10)
        records.append(check_record(service_id, at, 40.0 + minute % 3 * 10, success=minute % 20 != 0, slot=minute))
    await CheckStore((await harness.resources("probes")).pool).write(records, [])
    request = probes_pb2.GetLatencyHistoryRequest(service="erp")
    request.time_range.start.FromDatetime(end - timedelta(hours=12))
    request.time_range.end.FromDatetime(end)
    hours = await stub.GetLatencyHistory(request, timeout=TIMEOUT)
    assert hours.service_id == service_id and hours.bucket == probes_pb2.HISTORY_BUCKET_HOUR
    assert [p.checks for p in hours.points] == [60, 60, 60] and [p.failures for p in hours.points] == [3, 3, 3]
    assert hours.points[0].availability_percent == 95 and hours.points[0].max_latency_ms == 60
    assert hours.points[0].avg_latency_ms == pytest.approx(50, abs=0.5) and 50 <= hours.points[0].p95_latency_ms <= 60
    assert hours.summary.checks == 180 and hours.summary.failures == 9
    request.bucket = probes_pb2.HISTORY_BUCKET_MINUTE
    minutes = await stub.GetLatencyHistory(request, timeout=TIMEOUT)
    assert len(minutes.points) == 180 and minutes.bucket == probes_pb2.HISTORY_BUCKET_MINUTE
    states = await stub.ListCheckStates(probes_pb2.ListCheckStatesRequest(services=["erp"]), timeout=TIMEOUT)
    latest = states.states[0]
    assert latest.service_id == service_id and latest.success and latest.agent_id == "agent-x"
    assert latest.circuit_breaker == probes_pb2.CIRCUIT_BREAKER_STATE_CLOSED and latest.HasField("last_failure_at")


async def test_list_agents_shows_the_live_agents_and_their_leases(harness: ServiceHarness) -> None:
    """A running agent is listed with host, pid, heartbeat and the targets it holds."""
    stub, _ = await _stack(harness)
    resources = await harness.resources("probes")
    async with HttpTestServer({"/": Route()}) as web:
        target = http_target(str(uuid.uuid4()), web.url("/"), interval=60)
        agent = build_agent(resources, fast_settings(harness), StaticTargets([target]))
        await agent.start()
        try:

            async def listed() -> probes_pb2.ProbeAgent | None:
                reply = await stub.ListAgents(probes_pb2.ListAgentsRequest(), timeout=TIMEOUT)
                return next((a for a in reply.agents if a.checks), None)

            found = await eventually(listed, what="the agent and its lease in ListAgents")
        finally:
            await agent.stop()
    assert found.agent_id == agent.agent_id and found.pid == agent.identity.pid and found.HasField("heartbeat_at")
    assert [(t.service_id, t.service_slug) for t in found.checks] == [(target.service_id, target.slug)]
    gone = await stub.ListAgents(probes_pb2.ListAgentsRequest(), timeout=TIMEOUT)
    assert list(gone.agents) == []
