"""Resource threshold breach → alert event on a GraphQL subscription (budget: ≤ 10 s; the seed says 30 s).

The benchmark starts PostgreSQL and Redis (embedded unless B2X_BENCH_DATABASE_URL / _REDIS_URL are set),
the health service with a configuration file naming one connected service whose resources come from a
Prometheus endpoint, the probes service with its agent (sampling every 5 s, the default), and the
gateway. The endpoint is served by this process. Each round switches the service's queue depth from 10 to
5000 (threshold 1000) at a random moment of the sampling cycle and measures the time until the dashboard's
`resourceAlertTriggered` subscription receives QUEUE_BACKLOG, then switches back and waits for the
resolution. Figures include the agent's sampling period, the scrape, PostgreSQL, Redis and the gateway.

    .venv/bin/python -m bench.resource_alerts        # B2X_BENCH_ALERT_ROUNDS (default 8)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websockets

from bench.support import Process, admin_key, begin, percentile, print_table, save, servers, stack_env
from services.common.embedded import free_port

ROUNDS = int(os.environ.get("B2X_BENCH_ALERT_ROUNDS", "8"))
BUDGET_SECONDS = 10.0
SUBSCRIPTION = "subscription { resourceAlertTriggered { serviceId alert { alertType resolvedAt } } }"


class Endpoint:
    """The connected service: answers its health check and a Prometheus text page with its queue depth."""

    def __init__(self) -> None:
        self.queue_depth = 10
        self.port = free_port()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            if request.startswith(b"GET /metrics"):
                body = f"process_resident_memory_bytes 100000000\nb2x_queue_depth {self.queue_depth}\n".encode()
                kind = b"text/plain; version=0.0.4"
            else:
                body, kind = b'{"status":"UP"}', b"application/json"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n" + body
            )  # fmt: skip
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def _config(endpoint: Endpoint) -> str:
    url = f"http://127.0.0.1:{endpoint.port}"
    return (
        "services:\n"
        "  - slug: erp\n    name: ERP (bench)\n    type: ERP\n"
        f"    endpoint: {url}/health\n    interval_seconds: 30\n"
        f"    resources:\n      metrics_url: {url}/metrics\n"
        "    thresholds:\n      queue_depth: 1000\n"
    )


@dataclass(frozen=True)
class Watch:
    """What a round waits for on the subscription: `classify` maps an event's payload to "open",
    "resolved" or None (an event of something else)."""

    subscription: str
    field: str
    classify: Callable[[dict[str, Any]], str | None]


def _resource_alert(event: dict[str, Any]) -> str | None:
    if event["alert"]["alertType"] != "QUEUE_BACKLOG":
        return None
    return "open" if event["alert"]["resolvedAt"] is None else "resolved"


RESOURCE_ALERTS = Watch(SUBSCRIPTION, "resourceAlertTriggered", _resource_alert)


async def _events(url: str, key: str, watch: Watch, queue: asyncio.Queue[tuple[float, str]]) -> None:
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}))
        await ws.recv()
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": watch.subscription}}))
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            event = ((message.get("payload") or {}).get("data") or {}).get(watch.field)
            state = watch.classify(event) if event else None
            if state is not None:
                await queue.put((time.monotonic(), state))


async def _wait(queue: asyncio.Queue[tuple[float, str]], state: str) -> float:
    while True:
        at, seen = await asyncio.wait_for(queue.get(), 60)
        if seen == state:
            return at


async def _run(endpoint: Endpoint, gateway_port: int, key: str, watch: Watch) -> dict[str, Any]:
    server = await asyncio.start_server(endpoint.handle, "127.0.0.1", endpoint.port)
    queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
    listener = asyncio.create_task(_events(f"ws://127.0.0.1:{gateway_port}/graphql", key, watch, queue))
    await asyncio.sleep(12)  # the agent takes its resource lease and samples the calm figures first
    opened, resolved = [], []
    try:
        for n in range(ROUNDS):
            await asyncio.sleep(random.uniform(0, 5))  # a random moment of the 5 s sampling cycle
            endpoint.queue_depth, started = 5000, time.monotonic()
            opened.append(await _wait(queue, "open") - started)
            await asyncio.sleep(random.uniform(0, 5))  # a random moment of the 5 s sampling cycle
            endpoint.queue_depth, started = 10, time.monotonic()
            resolved.append(await _wait(queue, "resolved") - started)
            print(f"  round {n + 1}: alert after {opened[-1]:.2f} s, resolved after {resolved[-1]:.2f} s", flush=True)
    finally:
        listener.cancel()
        server.close()
    return {
        "rounds": ROUNDS,
        "alert_s_p50": percentile(opened, 50), "alert_s_p95": percentile(opened, 95), "alert_s_max": max(opened),
        "resolve_s_p50": percentile(resolved, 50), "resolve_s_max": max(resolved),
    }  # fmt: skip


def measure(name: str, watch: Watch) -> dict[str, Any]:
    """Start the stack (health, probes, gateway on PostgreSQL and Redis) and run the rounds against `watch`."""
    begin(name)  # the machine and its load before the run
    endpoint = Endpoint()
    with servers() as srv, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "services.yaml"
        config.write_text(_config(endpoint), encoding="utf-8")
        env, ports = stack_env(srv, B2X_CONFIG_FILE=str(config))
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
        started = []
        try:
            for module, port in (("services.health", "health"), ("services.probes", "probes"), ("gateway", "gateway")):
                started.append(Process(module, env, ports[port]))
            key = asyncio.run(admin_key(srv.database_url))
            return asyncio.run(_run(endpoint, ports["gateway"], key, watch))
        finally:
            for process in reversed(started):
                process.stop()


def main(argv: list[str]) -> int:
    figures = measure("resource_alerts", RESOURCE_ALERTS)
    print_table([
        ("breach → alert on the subscription", f"max {figures['alert_s_max']:.2f} s",
         f"p50 {figures['alert_s_p50']:.2f} s, p95 {figures['alert_s_p95']:.2f} s; budget ≤ {BUDGET_SECONDS:.0f} s"),
        ("recovery → resolution", f"max {figures['resolve_s_max']:.2f} s", f"p50 {figures['resolve_s_p50']:.2f} s"),
    ])  # fmt: skip
    print(f"  → {save('resource_alerts', figures)}")
    return 0 if figures["alert_s_max"] <= BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
