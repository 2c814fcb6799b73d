"""Start the health service in-process on port 0 and talk to it with a real stub."""

from __future__ import annotations

from pathlib import Path

from b2x.monitoring.v1 import common_pb2, health_pb2, health_pb2_grpc

from services.health.main import build_server
from services.health.settings import HealthSettings
from tests.support import ServiceHarness

TIMEOUT = 10


async def start_health(harness: ServiceHarness, config_file: Path | None = None) -> health_pb2_grpc.HealthServiceStub:
    """A stub of a freshly started health service; with `config_file`, synced to it first."""
    settings = harness.settings_for(HealthSettings, config_file=config_file)
    address = await harness.serve("health", build_server, settings)
    return health_pb2_grpc.HealthServiceStub(harness.channel(address))


def definition(slug: str, endpoint: str = "", **fields: object) -> health_pb2.ServiceDefinition:
    """A minimal valid RegisterService definition; `fields` override or add to it."""
    values: dict[str, object] = {
        "slug": slug,
        "name": f"{slug.upper()} system",
        "type": common_pb2.SERVICE_TYPE_ERP,
        "endpoint": endpoint or f"https://{slug}.example.test/health",
    }
    values.update(fields)
    return health_pb2.ServiceDefinition(**values)


async def register(
    stub: health_pb2_grpc.HealthServiceStub, msg: health_pb2.ServiceDefinition
) -> health_pb2.RegisterServiceResponse:
    return await stub.RegisterService(health_pb2.RegisterServiceRequest(definition=msg), timeout=TIMEOUT)


async def slugs(stub: health_pb2_grpc.HealthServiceStub, **filters: object) -> list[str]:
    """Slugs of ListServices, in the order the service returns them."""
    response = await stub.ListServices(health_pb2.ListServicesRequest(**filters), timeout=TIMEOUT)
    return [s.slug for s in response.services]
