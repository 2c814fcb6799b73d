"""A running health + probes + gateway stack over real HTTP targets, shared by gateway and CLI tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from gateway.auth import KeyStore, Role
from services.health.main import build_server as build_health
from services.health.settings import HealthSettings
from services.probes.main import build_server as build_probes
from services.probes.settings import ProbesSettings
from tests.probes.servers import HttpTestServer, Route
from tests.support import ServiceHarness

SECRET = "tok-5ecret-77aa"
METRICS = b"""# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 734003200
# TYPE b2x_pool_active gauge
b2x_pool_active 8
# TYPE b2x_pool_total gauge
b2x_pool_total 10
# TYPE b2x_queue_depth gauge
b2x_queue_depth 23
"""
PASSWORD = "pw-9x"


@dataclass
class ServicesStack:
    url: str
    operator: str
    viewer: str
    health_addr: str
    probes_addr: str


@contextlib.asynccontextmanager
async def services_stack(
    harness: ServiceHarness, tmp_path: Path, *, agent: bool = False, extra: str = ""
) -> AsyncIterator[ServicesStack]:
    """`erp` answers 200 with a bearer token from ${ERP_TOKEN} and serves Prometheus metrics; `crm` answers
    503 and has secrets in its URL.

    The caller sets ERP_TOKEN in the environment (monkeypatch) so the probe agent can expand it. With
    `agent`, the periodic checks (every 5 s) and resource sampling (every second) run too; without, only
    what a test triggers happens, so counts are exact. `extra` is appended to the file's services list
    (`{port}` becomes the test web server's port).
    """
    routes = {
        "/health": Route(200, body=b'{"status": "ok"}'),
        "/down": Route(503, "Service Unavailable", body=b"maintenance"),
        "/metrics": Route(200, body=METRICS, content_type="text/plain; version=0.0.4"),
    }
    async with HttpTestServer(routes) as web:
        config = tmp_path / "services.yaml"
        config.write_text(
            "services:\n"
            f"  - {{slug: erp, name: enventa ERP, type: ERP, endpoint: '{web.url('/health')}', interval_seconds: 5,"
            "      http: {headers: {Authorization: 'Bearer ${ERP_TOKEN}'}},"
            f"      resources: {{metrics_url: '{web.url('/metrics')}'}}}}\n"
            f"  - {{slug: crm, name: CRM Integration, type: CRM,"
            f"      endpoint: 'http://user:{PASSWORD}@127.0.0.1:{web.port}/down?token={SECRET}', max_retries: 0,"
            " interval_seconds: 5}\n" + extra.replace("{port}", str(web.port))
        )
        health_addr = await harness.serve(
            "health", build_health, harness.settings_for(HealthSettings, config_file=config)
        )
        probes_addr = await harness.serve(
            "probes",
            lambda resources, settings: build_probes(resources, settings, with_agent=agent),
            harness.settings_for(
                ProbesSettings, health_addr=health_addr, probes_timeout_seconds=3,
                probes_resource_interval_seconds=1, probes_flush_seconds=0.2,
            ),
        )  # fmt: skip
        url = await harness.gateway(health_addr=health_addr, probes_addr=probes_addr, jobs_addr="127.0.0.1:1")
        pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=1)
        operator, _ = await KeyStore(pool).create("ops", Role.OPERATOR)
        viewer, _ = await KeyStore(pool).create("view", Role.VIEWER)
        await pool.close()
        yield ServicesStack(url, operator, viewer, health_addr, probes_addr)
