"""A small graphql-transport-ws client for live CLI views (`--watch`, `--follow`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from b2c.config import CliConfig
from b2c.errors import CliError, Exit


class LiveConnection:
    """One websocket, several subscriptions; yields (operation id, payload data)."""

    def __init__(self, config: CliConfig) -> None:
        self.url = config.api_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/graphql"
        self.key = config.api_key
        self.ssl = config.ssl_context() if self.url.startswith("wss://") else None
        self.ws: ClientConnection | None = None
        self._ids = 0

    async def __aenter__(self) -> LiveConnection:
        try:
            self.ws = await websockets.connect(
                self.url,
                subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
                ssl=self.ssl,
            )
        except (TimeoutError, OSError, websockets.InvalidHandshake) as error:
            raise CliError(f"cannot open a live connection to {self.url}: {error}", Exit.UNREACHABLE) from None
        await self._send({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.key}"}})
        while True:
            message = await self._receive()
            if message.get("type") == "connection_ack":
                return self

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    async def _receive(self) -> dict[str, Any]:
        assert self.ws is not None
        try:
            raw = await self.ws.recv()
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else 0
            if code == 4403:
                raise CliError("the API refused the live connection: check your key (`b2c auth whoami`)") from None
            raise CliError(f"the live connection closed ({code})", Exit.UNREACHABLE) from None
        message: dict[str, Any] = json.loads(raw)
        if message.get("type") == "ping":
            await self._send({"type": "pong"})
        return message

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._ids += 1
        op = str(self._ids)
        await self._send({"id": op, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})
        return op

    async def events(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        while True:
            message = await self._receive()
            kind = message.get("type")
            if kind == "next":
                payload = message.get("payload") or {}
                if payload.get("errors"):
                    error = payload["errors"][0]
                    code = (error.get("extensions") or {}).get("code", "ERROR")
                    raise CliError(f"{error.get('message')} [{code}]")
                yield message["id"], payload.get("data") or {}
            elif kind == "error":
                error = (message.get("payload") or [{}])[0]
                code = (error.get("extensions") or {}).get("code", "ERROR")
                raise CliError(f"{error.get('message', 'subscription refused')} [{code}]")
            elif kind == "complete":
                yield message["id"], {}
