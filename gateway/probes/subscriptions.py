"""Live connection tests: follow any test's phases, or run one and stream it."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import grpc
import strawberry
from b2x.monitoring.v1 import probes_pb2

from gateway.auth import Role
from gateway.context import Info
from gateway.errors import from_rpc_error
from gateway.probes import types as t
from gateway.probes.convert import phase_to_gql, result_to_gql
from services.common.events import Resync, Topic


@strawberry.type
class ProbeSubscriptions:
    @strawberry.subscription(
        description="Phases and results of connection tests as they happen, optionally for one service or test"
    )
    async def connection_test_progress(
        self, info: Info, service_id: strawberry.ID | None = None, test_id: strawberry.ID | None = None
    ) -> AsyncGenerator[t.ConnectionTestUpdate, None]:
        ctx = info.context
        ctx.require()
        subscription = await ctx.state.bus.subscribe(Topic.CONNECTION_TESTS)
        try:
            async for item in subscription:
                if isinstance(item, Resync) or not item.HasField("connection_test_progress"):
                    continue
                progress = item.connection_test_progress
                if service_id and progress.service_id != str(service_id):
                    continue
                if test_id and progress.test_id != str(test_id):
                    continue
                yield t.ConnectionTestUpdate(
                    test_id=progress.test_id,  # type: ignore[arg-type]
                    service_id=progress.service_id or None,  # type: ignore[arg-type]
                    phase=phase_to_gql(progress.phase) if progress.HasField("phase") else None,
                    result=result_to_gql(progress.result) if progress.HasField("result") else None,
                )
        finally:
            await subscription.close()

    @strawberry.subscription(
        description="Run a connection test now (operator) and stream each phase as it completes, then the result"
    )
    async def run_connection_test(self, info: Info, service: str) -> AsyncGenerator[t.ConnectionTestUpdate, None]:
        ctx = info.context
        principal = ctx.require(Role.OPERATOR)
        clients = ctx.state.clients
        await ctx.state.audit.record(
            principal,
            action="runConnectionTest",
            target=service,
            arguments={},
            outcome="ok",
            client_ip=ctx.client_ip,
            request_id=ctx.request_id,
        )
        stream = clients.probes.stub.StreamConnectionTest(
            probes_pb2.StreamConnectionTestRequest(service=service), timeout=120
        )
        try:
            async for update in stream:
                kind = update.WhichOneof("update")
                yield t.ConnectionTestUpdate(
                    test_id=update.test_id,
                    service_id=update.result.service_id or None if kind == "result" else None,
                    phase=phase_to_gql(update.phase) if kind == "phase" else None,
                    result=result_to_gql(update.result) if kind == "result" else None,
                )
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error, "probes") from None
        finally:
            stream.cancel()
