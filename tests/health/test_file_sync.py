"""Start-up sync of the declarative file into the registry, against real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from b2x.monitoring.v1 import health_pb2, health_pb2_grpc

from services.health.main import build_server
from services.health.settings import HealthSettings
from tests.health.helpers import TIMEOUT, definition, register, slugs, start_health
from tests.support import ServiceHarness

TWO_SERVICES = """
services:
  - slug: erp
    name: enventa Trade ERP
    type: ERP
    endpoint: https://erp.example.test/api/health
    interval_seconds: 15
    labels: {team: erp}
    http:
      expect_status: [200]
      headers: {Authorization: "Bearer ${ERP_TOKEN}"}
  - slug: mq
    name: Message broker
    type: MESSAGE_QUEUE
    endpoint: tcp://mq.example.test:5672
    thresholds: {queue_depth: 5000}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(text)
    return path


async def _services(stub: object) -> dict[str, health_pb2.ConnectedService]:
    response = await stub.ListServices(health_pb2.ListServicesRequest(), timeout=TIMEOUT)
    return {s.slug: s for s in response.services}


async def test_services_in_the_file_are_registered_at_start_up(harness: ServiceHarness, tmp_path: Path) -> None:
    """Every file entry is in the registry, owned by the file, before the server answers its first call."""
    stub = await start_health(harness, _write(tmp_path, TWO_SERVICES))
    services = await _services(stub)
    assert sorted(services) == ["erp", "mq"]
    erp, mq = services["erp"], services["mq"]
    assert erp.source == mq.source == health_pb2.SERVICE_SOURCE_FILE
    assert (erp.check_interval_seconds, dict(erp.labels), list(erp.probe.expected_statuses)) == (
        15,
        {"team": "erp"},
        [200],
    )
    assert erp.probe.headers["Authorization"] == "Bearer ${ERP_TOKEN}"
    assert (mq.probe_kind, mq.thresholds.queue_depth) == (health_pb2.PROBE_KIND_TCP, 5000)


async def test_starting_again_with_the_same_file_changes_nothing(harness: ServiceHarness, tmp_path: Path) -> None:
    """A second start with an unchanged file keeps ids and updated_at: the sync is idempotent."""
    path = _write(tmp_path, TWO_SERVICES)
    before = await _services(await start_health(harness, path))
    after = await _services(await start_health(harness, path))
    assert after == before


async def test_a_changed_entry_is_updated_and_a_deleted_one_is_removed(harness: ServiceHarness, tmp_path: Path) -> None:
    """Editing the file updates that service in place; an entry deleted from the file is removed from the registry."""
    path = _write(tmp_path, TWO_SERVICES)
    before = await _services(await start_health(harness, path))
    path.write_text(
        TWO_SERVICES.split("  - slug: mq", maxsplit=1)[0].replace("interval_seconds: 15", "interval_seconds: 60")
    )
    stub = await start_health(harness, path)
    after = await _services(stub)
    assert sorted(after) == ["erp"]
    assert after["erp"].id == before["erp"].id and after["erp"].check_interval_seconds == 60
    assert after["erp"].updated_at.ToDatetime() > before["erp"].updated_at.ToDatetime()
    with pytest.raises(grpc.aio.AioRpcError) as removed:
        await stub.GetService(health_pb2.GetServiceRequest(service=before["mq"].id), timeout=TIMEOUT)
    assert removed.value.code() == grpc.StatusCode.NOT_FOUND

    # Put back in the file, it returns with its old id and history.
    path.write_text(TWO_SERVICES)
    restored = await _services(await start_health(harness, path))
    assert restored["mq"].id == before["mq"].id


async def test_services_registered_over_the_api_are_left_alone(harness: ServiceHarness, tmp_path: Path) -> None:
    """The sync never removes or edits API-owned services that the file does not mention."""
    stub = await start_health(harness)
    api_owned = (await register(stub, definition("crm"))).service
    services = await _services(await start_health(harness, _write(tmp_path, TWO_SERVICES)))
    assert sorted(services) == ["crm", "erp", "mq"]
    assert services["crm"] == api_owned


async def test_a_file_entry_takes_over_an_api_registered_slug(harness: ServiceHarness, tmp_path: Path) -> None:
    """When the file names a slug registered over the API, the file's definition wins and the file owns it."""
    stub = await start_health(harness)
    api_owned = (await register(stub, definition("erp", "https://old-erp.example.test"))).service
    services = await _services(await start_health(harness, _write(tmp_path, TWO_SERVICES)))
    assert services["erp"].id == api_owned.id
    assert services["erp"].source == health_pb2.SERVICE_SOURCE_FILE
    assert services["erp"].endpoint == "https://erp.example.test/api/health"


async def test_without_a_file_the_file_owned_services_stay(harness: ServiceHarness, tmp_path: Path) -> None:
    """Starting with B2X_CONFIG_FILE unset syncs nothing, so an unset variable cannot empty the registry."""
    await start_health(harness, _write(tmp_path, TWO_SERVICES))
    assert await slugs(await start_health(harness)) == ["erp", "mq"]


async def test_an_empty_file_removes_every_file_owned_service(harness: ServiceHarness, tmp_path: Path) -> None:
    """A file that declares no services is a declaration too: the file-owned services go, API ones stay."""
    stub = await start_health(harness, _write(tmp_path, TWO_SERVICES))
    await register(stub, definition("crm"))
    assert await slugs(await start_health(harness, _write(tmp_path, "services: []\n"))) == ["crm"]


async def test_file_owned_services_cannot_be_changed_or_removed_over_the_api(
    harness: ServiceHarness, tmp_path: Path
) -> None:
    """RegisterService and RemoveService of a file-owned slug are FAILED_PRECONDITION and change nothing."""
    stub = await start_health(harness, _write(tmp_path, TWO_SERVICES))
    before = await _services(stub)
    for call in (
        register(stub, definition("erp", "https://elsewhere.example.test")),
        stub.RemoveService(health_pb2.RemoveServiceRequest(service="erp"), timeout=TIMEOUT),
        stub.RemoveService(health_pb2.RemoveServiceRequest(service=before["mq"].id), timeout=TIMEOUT),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "managed by the config file" in (refused.value.details() or "")
    assert await _services(stub) == before


async def test_replicas_starting_together_sync_the_file_once(harness: ServiceHarness, tmp_path: Path) -> None:
    """Three servers starting at the same moment with one file end with each service stored exactly once."""
    path = _write(tmp_path, TWO_SERVICES)
    stubs = await asyncio.gather(*(start_health(harness, path) for _ in range(3)))
    views = [await _services(stub) for stub in stubs]
    assert sorted(views[0]) == ["erp", "mq"]
    assert views[0] == views[1] == views[2]


async def test_self_monitoring_services_yield_to_the_file_and_refuse_api_changes(
    harness: ServiceHarness, tmp_path: Path
) -> None:
    """With self-monitoring on, B2X's own services are SELF-owned beside the file's; a slug the file declares
    keeps the file's definition; RemoveService of a SELF service is FAILED_PRECONDITION; turning it off
    removes them at the next start."""
    text = TWO_SERVICES + "  - {slug: b2x-redis, type: CACHE, endpoint: 'redis://cache.example.test:6379'}\n"
    path = _write(tmp_path, text)
    settings = harness.settings_for(HealthSettings, config_file=path, health_self_monitoring=True)
    stub = health_pb2_grpc.HealthServiceStub(harness.channel(await harness.serve("health", build_server, settings)))
    services = await _services(stub)
    assert set(services) == {"erp", "mq", "b2x-redis", "b2x-postgres", "b2x-jobs", "b2x-probes"}
    assert services["b2x-redis"].source == health_pb2.SERVICE_SOURCE_FILE
    assert services["b2x-postgres"].source == health_pb2.SERVICE_SOURCE_SELF
    assert services["b2x-postgres"].endpoint == "${B2X_DATABASE_URL}"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.RemoveService(health_pb2.RemoveServiceRequest(service="b2x-postgres"), timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "B2X_HEALTH_SELF_MONITORING" in (refused.value.details() or "")
    stub = await start_health(harness, path)
    assert set(await _services(stub)) == {"erp", "mq", "b2x-redis"}
