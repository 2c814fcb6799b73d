"""Fixtures for the Job SDK tests: a real jobs service on a free port and a real stub."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from b2x.monitoring.v1 import jobs_pb2_grpc

from tests.jobs.sdk.helpers import JobsServer, start_jobs_server
from tests.support import ServiceHarness


@pytest.fixture
async def jobs_server(harness: ServiceHarness) -> AsyncIterator[JobsServer]:
    """The jobs service with a short heartbeat timeout (3 s) and a fast reaper, on a free port."""
    async for server in start_jobs_server(harness, jobs_heartbeat_timeout_seconds=3, jobs_reaper_interval_seconds=0.5):
        yield server


@pytest.fixture
def stub(harness: ServiceHarness, jobs_server: JobsServer) -> jobs_pb2_grpc.JobsServiceAsyncStub:
    return jobs_pb2_grpc.JobsServiceStub(harness.channel(jobs_server.address))
