"""The registry RPCs over real gRPC, against real PostgreSQL."""

from __future__ import annotations

import grpc
import pytest
from b2x.monitoring.v1 import common_pb2, health_pb2

from tests.health.helpers import TIMEOUT, definition, register, slugs, start_health
from tests.support import ServiceHarness


async def _set_status(harness: ServiceHarness, slug: str, status: str) -> None:
    """Write a status the way the aggregation will, straight into health.services."""
    pool = (await harness.resources("health")).pool
    await pool.execute("UPDATE health.services SET status = $2 WHERE slug = $1", slug, status)


async def _rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_a_registered_service_is_stored_with_defaults_and_read_by_id_or_slug(harness: ServiceHarness) -> None:
    """RegisterService creates an API-owned UNKNOWN service with defaults; GetService finds it by id and by slug."""
    stub = await start_health(harness)
    response = await register(stub, definition("erp", "https://erp.example.test/api/health"))
    created = response.service
    assert response.created
    assert (created.slug, created.name, created.type) == ("erp", "ERP system", common_pb2.SERVICE_TYPE_ERP)
    assert created.probe_kind == health_pb2.PROBE_KIND_HTTP
    assert created.status == common_pb2.SERVICE_STATUS_UNKNOWN
    assert created.source == health_pb2.SERVICE_SOURCE_API
    assert created.enabled and created.check_interval_seconds == 30
    assert (created.thresholds.cpu_percent, created.thresholds.queue_depth) == (80, 1000)
    assert (created.probe.http_method, created.probe.timeout_seconds, created.probe.max_retries) == ("GET", 10, 2)

    by_id = (await stub.GetService(health_pb2.GetServiceRequest(service=created.id), timeout=TIMEOUT)).service
    by_slug = (await stub.GetService(health_pb2.GetServiceRequest(service="ERP"), timeout=TIMEOUT)).service
    assert by_id == by_slug == created


async def test_registering_an_existing_slug_updates_it_and_an_identical_one_changes_nothing(
    harness: ServiceHarness,
) -> None:
    """A second RegisterService of a slug updates the same row (created=false); a repeat leaves updated_at alone."""
    stub = await start_health(harness)
    first = (await register(stub, definition("pim", type=common_pb2.SERVICE_TYPE_PIM))).service
    changed = await register(stub, definition("pim", type=common_pb2.SERVICE_TYPE_PIM, name="PIM (Akeneo)"))
    again = await register(stub, definition("pim", type=common_pb2.SERVICE_TYPE_PIM, name="PIM (Akeneo)"))
    assert not changed.created and not again.created
    assert changed.service.id == first.id and changed.service.name == "PIM (Akeneo)"
    assert changed.service.updated_at.ToDatetime() > first.updated_at.ToDatetime()
    assert again.service.updated_at == changed.service.updated_at


async def test_explicit_off_values_survive_the_wire(harness: ServiceHarness) -> None:
    """enabled=false and max_retries=0 are kept, while leaving them unset means enabled and 2 retries."""
    stub = await start_health(harness)
    probe = health_pb2.ProbeOptions(max_retries=0, expected_statuses=[204, 200], timeout_seconds=2.5)
    stored = (await register(stub, definition("crm", enabled=False, probe=probe))).service
    assert not stored.enabled
    assert (stored.probe.max_retries, list(stored.probe.expected_statuses), stored.probe.timeout_seconds) == (
        0,
        [200, 204],
        2.5,
    )


async def test_a_new_endpoint_resets_the_status_and_other_edits_keep_it(harness: ServiceHarness) -> None:
    """The status describes the endpoint that was checked: moving the endpoint makes it UNKNOWN again."""
    stub = await start_health(harness)
    await register(stub, definition("erp"))
    await _set_status(harness, "erp", "ONLINE")
    renamed = (await register(stub, definition("erp", name="ERP prod"))).service
    assert renamed.status == common_pb2.SERVICE_STATUS_ONLINE
    moved = (await register(stub, definition("erp", "https://erp2.example.test/health", name="ERP prod"))).service
    assert moved.status == common_pb2.SERVICE_STATUS_UNKNOWN
    assert "endpoint" in moved.status_reason


async def test_services_are_listed_by_name_and_filtered_by_status_and_type(harness: ServiceHarness) -> None:
    """ListServices returns live services ordered by name; statuses and types narrow the list."""
    stub = await start_health(harness)
    await register(stub, definition("erp", name="enventa ERP"))
    await register(stub, definition("crm", name="CRM", type=common_pb2.SERVICE_TYPE_CRM))
    await register(
        stub, definition("db", "postgresql://db.test/app", name="PostgreSQL", type=common_pb2.SERVICE_TYPE_DATABASE)
    )
    await _set_status(harness, "crm", "DEGRADED")
    await _set_status(harness, "db", "OFFLINE")

    assert await slugs(stub) == ["crm", "erp", "db"]
    degraded_or_offline = [common_pb2.SERVICE_STATUS_DEGRADED, common_pb2.SERVICE_STATUS_OFFLINE]
    assert await slugs(stub, statuses=degraded_or_offline) == ["crm", "db"]
    assert await slugs(stub, types=[common_pb2.SERVICE_TYPE_ERP, common_pb2.SERVICE_TYPE_DATABASE]) == ["erp", "db"]
    assert await slugs(stub, statuses=[common_pb2.SERVICE_STATUS_OFFLINE], types=[common_pb2.SERVICE_TYPE_CRM]) == []


async def test_a_removed_service_disappears_and_registering_it_again_revives_the_same_id(
    harness: ServiceHarness,
) -> None:
    """RemoveService soft-deletes: reads say it was removed; a new RegisterService brings back the same row."""
    stub = await start_health(harness)
    original = (await register(stub, definition("erp"))).service
    removed = (await stub.RemoveService(health_pb2.RemoveServiceRequest(service="erp"), timeout=TIMEOUT)).service
    assert removed.id == original.id
    assert await slugs(stub) == []
    gone = await _rpc_error(stub.GetService(health_pb2.GetServiceRequest(service=original.id), timeout=TIMEOUT))
    assert gone.code() == grpc.StatusCode.NOT_FOUND and "was removed" in (gone.details() or "")

    revived = await register(stub, definition("erp"))
    assert revived.created and revived.service.id == original.id
    assert await slugs(stub) == ["erp"]


async def test_unknown_services_are_not_found_with_their_name(harness: ServiceHarness) -> None:
    """GetService, RemoveService and ListProbeTargets answer NOT_FOUND naming the id or slug asked for."""
    stub = await start_health(harness)
    missing_id = "7d1f2a3e-0000-4000-8000-000000000000"
    calls = [
        stub.GetService(health_pb2.GetServiceRequest(service="wms"), timeout=TIMEOUT),
        stub.GetService(health_pb2.GetServiceRequest(service=missing_id), timeout=TIMEOUT),
        stub.RemoveService(health_pb2.RemoveServiceRequest(service="wms"), timeout=TIMEOUT),
        stub.ListProbeTargets(health_pb2.ListProbeTargetsRequest(services=["wms"]), timeout=TIMEOUT),
    ]
    for call, name in zip(calls, ["'wms'", missing_id, "'wms'", "'wms'"], strict=True):
        error = await _rpc_error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error.details() == f"service {name} not found"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"slug": "Bad Slug"}, "slug: must be 1-63 lowercase letters"),
        ({"type": common_pb2.SERVICE_TYPE_UNSPECIFIED}, "type: is required: one of ERP"),
        ({"endpoint": "erp.example.test"}, "endpoint: must be a URL"),
        ({"endpoint": "https://erp.test", "probe_kind": health_pb2.PROBE_KIND_POSTGRES}, "endpoint: scheme 'https://'"),
        ({"check_interval_seconds": 3}, "check_interval_seconds: must be between 5 and 86400"),
        ({"probe": health_pb2.ProbeOptions(headers={"X-Key": "a\nb"})}, "probe.headers: header 'X-Key'"),
    ],
)
async def test_invalid_definitions_are_invalid_argument_naming_the_field(
    harness: ServiceHarness, fields: dict[str, object], message: str
) -> None:
    """A bad slug, type, endpoint, interval or header is INVALID_ARGUMENT with the field's name first."""
    stub = await start_health(harness)
    msg = definition("erp")
    for name, value in fields.items():
        if isinstance(value, health_pb2.ProbeOptions):
            msg.probe.CopyFrom(value)
        else:
            setattr(msg, name, value)
    error = await _rpc_error(register(stub, msg))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith(message)
    assert await slugs(stub) == []


async def test_malformed_references_and_filters_are_invalid_argument(harness: ServiceHarness) -> None:
    """An empty or malformed reference, or an UNSPECIFIED filter value, is refused rather than matching nothing."""
    stub = await start_health(harness)
    for call in (
        stub.GetService(health_pb2.GetServiceRequest(service=""), timeout=TIMEOUT),
        stub.GetService(health_pb2.GetServiceRequest(service="erp/../db"), timeout=TIMEOUT),
        stub.ListServices(
            health_pb2.ListServicesRequest(statuses=[common_pb2.SERVICE_STATUS_UNSPECIFIED]), timeout=TIMEOUT
        ),
    ):
        error = await _rpc_error(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (error.details() or "").startswith(("service:", "statuses:"))


async def test_probe_targets_are_the_enabled_services_or_exactly_the_named_ones(harness: ServiceHarness) -> None:
    """Without names, ListProbeTargets returns enabled services; named services come back even when disabled."""
    stub = await start_health(harness)
    erp = (await register(stub, definition("erp"))).service
    await register(stub, definition("pim", enabled=False))
    everything = await stub.ListProbeTargets(health_pb2.ListProbeTargetsRequest(), timeout=TIMEOUT)
    assert [(t.service_id, t.definition.slug) for t in everything.targets] == [(erp.id, "erp")]
    named = await stub.ListProbeTargets(
        health_pb2.ListProbeTargetsRequest(services=["pim", erp.id, "erp"]), timeout=TIMEOUT
    )
    assert [t.definition.slug for t in named.targets] == ["pim", "erp"]
    assert named.targets[0].definition.enabled is False and named.targets[0].definition.HasField("enabled")
