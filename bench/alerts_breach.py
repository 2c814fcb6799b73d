"""Resource threshold breach → `alertTriggered` on a GraphQL subscription, through the alert lifecycle
(budget: ≤ 10 s; the seed says 30 s).

The same stack and rounds as `resource_alerts` (health with one service whose figures come from a
Prometheus endpoint served here, probes with its agent sampling every 5 s, gateway), but the subscriber
follows `alertTriggered`: the probes' breach must become a `resource.queue_backlog` alert in the health
service (stored, checked against silences, handed to the notification sink in its transaction) and
reach the subscription as FIRING, then RESOLVED after the figure drops.

    .venv/bin/python -m bench.alerts_breach        # B2X_BENCH_ALERT_ROUNDS (default 8)
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets

from bench.resource_alerts import BUDGET_SECONDS, ROUNDS, Endpoint, _config
from bench.support import Process, admin_key, percentile, print_table, save, servers, stack_env

SUBSCRIPTION = 'subscription { alertTriggered(service: "erp") { id rule status occurrences } }'


async def _events(url: str, key: str, queue: asyncio.Queue[tuple[float, dict[str, Any]]]) -> None:
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}))
        await ws.recv()
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            event = ((message.get("payload") or {}).get("data") or {}).get("alertTriggered")
            if event and event["rule"] == "resource.queue_backlog":
                await queue.put((time.monotonic(), event))


async def _wait(queue: asyncio.Queue[tuple[float, dict[str, Any]]], status: str) -> float:
    while True:
        at, event = await asyncio.wait_for(queue.get(), 60)
        if event["status"] == status:
            return at


async def _run(endpoint: Endpoint, gateway_port: int, key: str) -> dict[str, Any]:
    server = await asyncio.start_server(endpoint.handle, "127.0.0.1", endpoint.port)
    queue: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
    listener = asyncio.create_task(_events(f"ws://127.0.0.1:{gateway_port}/graphql", key, queue))
    await asyncio.sleep(12)  # the agent takes its resource lease and samples the calm figures first
    opened, resolved = [], []
    try:
        for n in range(ROUNDS):
            await asyncio.sleep(random.uniform(0, 5))  # a random moment of the 5 s sampling cycle
            endpoint.queue_depth, started = 5000, time.monotonic()
            opened.append(await _wait(queue, "FIRING") - started)
            await asyncio.sleep(random.uniform(0, 5))
            endpoint.queue_depth, started = 10, time.monotonic()
            resolved.append(await _wait(queue, "RESOLVED") - started)
            print(f"  round {n + 1}: alert after {opened[-1]:.2f} s, resolved after {resolved[-1]:.2f} s", flush=True)
    finally:
        listener.cancel()
        server.close()
    return {
        "rounds": ROUNDS,
        "alert_s_p50": percentile(opened, 50), "alert_s_p95": percentile(opened, 95), "alert_s_max": max(opened),
        "resolve_s_p50": percentile(resolved, 50), "resolve_s_max": max(resolved),
    }  # fmt: skip


def main(argv: list[str]) -> int:
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
            figures = asyncio.run(_run(endpoint, ports["gateway"], key))
        finally:
            for process in reversed(started):
                process.stop()
    print_table([
        ("breach → alertTriggered FIRING", f"max {figures['alert_s_max']:.2f} s",
         f"p50 {figures['alert_s_p50']:.2f} s, p95 {figures['alert_s_p95']:.2f} s; budget ≤ {BUDGET_SECONDS:.0f} s"),
        ("recovery → alertTriggered RESOLVED", f"max {figures['resolve_s_max']:.2f} s",
         f"p50 {figures['resolve_s_p50']:.2f} s"),
    ])  # fmt: skip
    print(f"  → {save('alerts_breach', figures)}")
    return 0 if figures["alert_s_max"] <= BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
