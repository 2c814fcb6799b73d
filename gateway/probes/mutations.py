"""testConnection (operator, audited)."""

from __future__ import annotations

import strawberry
from b2x.monitoring.v1 import probes_pb2

from gateway.auth import Role
from gateway.context import Info
from gateway.probes import types as t
from gateway.probes.convert import result_to_gql

TEST_DEADLINE = 120.0  # a test retries slow phases; it may legitimately take a while


@strawberry.type
class ProbeMutations:
    @strawberry.mutation(
        description="Run a connection test now (REQ-001 POST /services/{id}/test) and return its result. "
        "Follow its phases live with the connectionTestProgress subscription (filter by service)."
    )
    async def test_connection(self, info: Info, service: str) -> t.ConnectionTestResult:
        ctx = info.context
        async with ctx.audited("testConnection", service):
            ctx.require(Role.OPERATOR)
            clients = ctx.state.clients
            response = await clients.call(
                clients.probes,
                clients.probes.stub.TestConnection,
                probes_pb2.TestConnectionRequest(service=service),
                timeout=TEST_DEADLINE,
            )
        return result_to_gql(response.result)
