"""Literal secrets in endpoints and headers never leave the health service, not even to probe agents; `${NAME}`
references do, for the agents to expand from their own environment."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from b2x.monitoring.v1 import health_pb2
from google.protobuf import text_format
from google.protobuf.message import Message
from structlog.testing import capture_logs

from services.common.masking import MASK
from tests.health.helpers import TIMEOUT, definition, register, start_health
from tests.support import ServiceHarness

SECRETS = ("S3cretPass", "LiteralKey123", "LiteralToken456", "CookieSecret789", "MetricsToken42", "FilePass99")
API_ENDPOINT = "https://svc-user:S3cretPass@erp.example.test/api?api_key=LiteralKey123&tenant=a"
HEADERS = {
    "Authorization": "Bearer LiteralToken456",
    "Cookie": "sid=CookieSecret789",
    "X-Api-Key": "${ERP_API_KEY}",
    "X-Tenant": "b2x",
}
FILE = """
services:
  - slug: db
    type: DATABASE
    endpoint: postgresql://monitor:FilePass99@db.example.test:5432/app
  - slug: pim
    type: PIM
    endpoint: https://pim.example.test/health
    http:
      headers: {Authorization: "Bearer ${PIM_TOKEN}"}
"""


def _leaks(*messages: Message) -> list[str]:
    """Secrets found in the text or binary form of the messages."""
    dump = "".join(text_format.MessageToString(m) + m.SerializeToString().decode("latin-1") for m in messages)
    return [secret for secret in SECRETS if secret in dump]


async def test_no_read_returns_a_literal_secret_but_references_stay_readable(
    harness: ServiceHarness, tmp_path: Path
) -> None:
    """Register, Get and List mask URL passwords, secret query values and secret headers; ${NAME} stays visible."""
    config = tmp_path / "services.yaml"
    config.write_text(FILE)
    stub = await start_health(harness, config)
    probe = health_pb2.ProbeOptions(
        headers=HEADERS, metrics_url="https://erp.example.test/metrics?token=MetricsToken42"
    )
    registered = await register(stub, definition("erp", API_ENDPOINT, probe=probe))
    got = await stub.GetService(health_pb2.GetServiceRequest(service="erp"), timeout=TIMEOUT)
    got_db = await stub.GetService(health_pb2.GetServiceRequest(service="db"), timeout=TIMEOUT)
    listed = await stub.ListServices(health_pb2.ListServicesRequest(), timeout=TIMEOUT)

    assert _leaks(registered, got, got_db, listed) == []
    erp = got.service
    assert erp.endpoint.startswith(f"https://svc-user:{MASK}@erp.example.test/api?")
    assert "tenant=a" in erp.endpoint
    assert dict(erp.probe.headers) == {
        "Authorization": MASK,
        "Cookie": MASK,
        "X-Api-Key": "${ERP_API_KEY}",
        "X-Tenant": "b2x",
    }
    assert "MetricsToken42" not in erp.probe.metrics_url
    assert got_db.service.endpoint == f"postgresql://monitor:{MASK}@db.example.test:5432/app"
    pim = next(s for s in listed.services if s.slug == "pim")
    assert pim.probe.headers["Authorization"] == "Bearer ${PIM_TOKEN}"


async def test_probe_agents_get_references_and_never_a_literal_secret(harness: ServiceHarness) -> None:
    """ListProbeTargets (unauthenticated, internal) hands out `${NAME}` references as written, for the agent to
    expand from its own environment; literal secrets in the endpoint, headers or metrics URL come back masked."""
    stub = await start_health(harness)
    probe = health_pb2.ProbeOptions(headers=HEADERS, metrics_url="https://m.example.test/metrics?token=MetricsToken42")
    await register(stub, definition("erp", API_ENDPOINT, probe=probe))
    (target,) = (await stub.ListProbeTargets(health_pb2.ListProbeTargetsRequest(), timeout=TIMEOUT)).targets
    assert _leaks(target) == []
    assert target.definition.endpoint.startswith(f"https://svc-user:{MASK}@erp.example.test/api?")
    assert dict(target.definition.probe.headers) == {
        "Authorization": MASK,
        "Cookie": MASK,
        "X-Api-Key": "${ERP_API_KEY}",
        "X-Tenant": "b2x",
    }
    referenced = "postgresql://monitor:${PG_PASSWORD}@db.example.test:5432/app?sslmode=require&password=${PG_PW2}"
    await register(stub, definition("db", referenced))
    targets = (
        await stub.ListProbeTargets(health_pb2.ListProbeTargetsRequest(services=["db"]), timeout=TIMEOUT)
    ).targets
    assert targets[0].definition.endpoint == referenced


async def test_logs_and_errors_never_carry_a_secret(harness: ServiceHarness, tmp_path: Path) -> None:
    """Neither the log lines of sync, register, update and remove nor a rejection message contain a secret."""
    config = tmp_path / "services.yaml"
    config.write_text(FILE)
    with capture_logs() as logs:
        stub = await start_health(harness, config)
        await register(stub, definition("erp", API_ENDPOINT, probe=health_pb2.ProbeOptions(headers=HEADERS)))
        await register(stub, definition("erp", API_ENDPOINT.replace("tenant=a", "tenant=b")))
        await stub.RemoveService(health_pb2.RemoveServiceRequest(service="erp"), timeout=TIMEOUT)
        with pytest.raises(grpc.aio.AioRpcError) as rejected:
            await register(stub, definition("bad", "ftp://svc-user:S3cretPass@erp.example.test/"))
    assert rejected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "S3cretPass" not in (rejected.value.details() or "")
    events = [entry["event"] for entry in logs]
    assert {"config file synced", "service registered", "service updated", "service removed"} <= set(events)
    assert [secret for secret in SECRETS if secret in repr(logs)] == []
