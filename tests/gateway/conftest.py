"""A running gateway (real uvicorn) in front of a real jobs service, with keys of every role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import grpc
import httpx
import pytest
from b2x.monitoring.v1 import jobs_pb2_grpc

from gateway.auth import KeyStore, Role
from tests.support import ServiceHarness


@dataclass
class Gateway:
    url: str
    admin: str
    operator: str
    viewer: str
    tenant_viewer: str  # viewer limited to tenant-a
    tenant_operator: str  # operator limited to tenant-a
    tenant_admin: str  # admin limited to tenant-a
    jobs: jobs_pb2_grpc.JobsServiceStub
    http: httpx.AsyncClient

    async def query(self, key: str | None, query: str, variables: dict[str, object] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return await self.http.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )


@pytest.fixture
async def gw(harness: ServiceHarness, database_url: str) -> AsyncIterator[Gateway]:
    jobs_addr = await harness.jobs()
    url = await harness.gateway(jobs_addr=jobs_addr, health_addr="127.0.0.1:1", probes_addr="127.0.0.1:1")
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    keys = KeyStore(pool)
    made = {}
    for name, role, tenant in (
        ("admin", Role.ADMIN, None),
        ("operator", Role.OPERATOR, None),
        ("viewer", Role.VIEWER, None),
        ("tenant_viewer", Role.VIEWER, "tenant-a"),
        ("tenant_operator", Role.OPERATOR, "tenant-a"),
        ("tenant_admin", Role.ADMIN, "tenant-a"),
    ):
        made[name], _ = await keys.create(name, role, tenant)
    await pool.close()
    async with httpx.AsyncClient(timeout=10) as http:
        yield Gateway(url=url, jobs=jobs_pb2_grpc.JobsServiceStub(harness.channel(jobs_addr)), http=http, **made)


@pytest.fixture
def grpc_timeout() -> float:
    return 10.0


__all__ = ["Gateway", "grpc"]
