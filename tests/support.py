"""Helpers for tests: start real services in-process on port 0 and talk to them with real stubs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc

from services.common.grpc_server import GrpcServer
from services.common.runtime import Resources, open_resources
from services.common.settings import CommonSettings

ROOT = Path(__file__).resolve().parent.parent
S = TypeVar("S", bound=CommonSettings)


class ServiceHarness:
    """Owns the resources and servers a test started; stops them all on exit."""

    def __init__(self, settings: CommonSettings) -> None:
        self.settings = settings
        self._stack = contextlib.AsyncExitStack()
        self.channels: list[grpc.aio.Channel] = []

    async def __aenter__(self) -> ServiceHarness:
        await self._stack.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for channel in self.channels:
            await channel.close()
        await self._stack.__aexit__(exc_type, exc, tb)

    async def resources(self, service: str, settings: CommonSettings | None = None) -> Resources:
        """Pool (migrated for `service`), Redis and event bus, closed when the test ends."""
        return await self._stack.enter_async_context(
            open_resources(
                settings or self.settings,
                service=service,
                schema=service,
                migrations=ROOT / "services" / service / "migrations",
            )
        )

    async def serve(
        self,
        service: str,
        build: Callable[[Resources, Any], GrpcServer],
        settings: CommonSettings | None = None,
    ) -> str:
        """Start `service`'s gRPC server on a free port with `settings` (default: the test's); returns its address.

        A service's own settings class (HealthSettings, ProbesSettings...) may be passed to set its options.
        """
        settings = settings or self.settings
        resources = await self.resources(service, settings)
        server = build(resources, settings)
        port = await server.start("127.0.0.1", 0)
        self._stack.push_async_callback(server.stop, 0)
        return f"127.0.0.1:{port}"

    def settings_for(self, cls: type[S], **overrides: Any) -> S:
        """This test's database, Redis and namespace in a service's settings class, plus overrides."""
        base = self.settings.model_dump()
        base.update(overrides)
        return cls(**base)

    def channel(self, address: str) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(address)
        self.channels.append(channel)
        return channel

    async def gateway(self, **overrides: Any) -> str:
        """The gateway on a free port, in front of this harness's services; returns its base URL."""
        from gateway.settings import GatewaySettings

        settings = self.settings_for(GatewaySettings, **overrides)
        return await start_gateway(self._stack, settings)

    async def jobs(self) -> str:
        from services.jobs.main import build_server

        return await self.serve("jobs", build_server)


@contextlib.asynccontextmanager
async def serving(config: Any) -> AsyncIterator[int]:
    """A real uvicorn server for `config` (port 0 picks a free one) while the block runs; yields its port."""
    import asyncio

    import uvicorn

    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def start_gateway(stack: contextlib.AsyncExitStack, settings: Any) -> str:
    """Run the gateway app under a real uvicorn server on a free port; returns its base URL."""
    import asyncio

    import uvicorn

    from gateway.app import create_app
    from gateway.main import server_config

    config = server_config(settings, create_app(settings), host="127.0.0.1", port=0)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(400):
        if server.started or task.done():
            break
        await asyncio.sleep(0.025)
    if task.done():
        task.result()
    assert server.started, "gateway did not start"
    port = server.servers[0].sockets[0].getsockname()[1]

    async def stop() -> None:
        server.should_exit = True
        await task

    stack.push_async_callback(stop)
    return f"http://127.0.0.1:{port}"


class GraphQLWebSocket:
    """A minimal graphql-transport-ws client over a real websocket (the protocol's wire messages)."""

    def __init__(self, url: str, payload: dict[str, Any] | None = None) -> None:
        self.url = url.replace("http://", "ws://") + "/graphql"
        self.payload = payload or {}
        self.ws: Any = None
        self._next_id = 0

    async def __aenter__(self) -> GraphQLWebSocket:
        import websockets

        self.ws = await websockets.connect(self.url, subprotocols=["graphql-transport-ws"])
        await self.send({"type": "connection_init", "payload": self.payload})
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def send(self, message: dict[str, Any]) -> None:
        import json

        await self.ws.send(json.dumps(message))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        import asyncio
        import json

        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message.get("type") not in ("ping", "pong"):
                return message

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._next_id += 1
        op_id = str(self._next_id)
        await self.send({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})
        return op_id
