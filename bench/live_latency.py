"""Report → dashboard latency at 1 000 concurrent jobs (budget: p99 ≤ 1 s; jobs service + gateway ≤ 1 core).

A worker process runs 1 000 jobs whose items cost ~100 µs of CPU each and reports progress through
the SDK after every item (bench/live_worker.py). A GraphQL subscriber (the dashboard) listens to
`jobStatusChanged` over graphql-transport-ws. Latency of a report = the time the subscriber receives a
progress event minus the time the job crossed the item count that made the SDK send it (a multiple of
100), so it includes the SDK's batching, the jobs service, PostgreSQL, Redis and the gateway.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets

from bench.support import Process, admin_key, percentile, print_table, save, servers, stack_env

JOBS = int(os.environ.get("B2X_BENCH_LIVE_JOBS", "1000"))
ITEMS = int(os.environ.get("B2X_BENCH_LIVE_ITEMS", "400"))
SUBSCRIPTION = "subscription { jobStatusChanged { jobId change progress { processedItems } } }"


async def _listen(
    url: str, key: str, seen: list[tuple[str, int, float]], ready: asyncio.Event, stop: asyncio.Event
) -> None:
    async with websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")], max_size=None
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}))
        await ws.recv()
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 1)
            except TimeoutError:
                continue
            now = time.time()
            message = json.loads(raw)
            if message.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong"}))
                continue
            event = ((message.get("payload") or {}).get("data") or {}).get("jobStatusChanged")
            if event and event["change"] == "progress":
                seen.append((event["jobId"], event["progress"]["processedItems"], now))


def _latencies(crossings: list[list[Any]], seen: list[tuple[str, int, float]]) -> list[float]:
    crossed = {(job, n): t for job, n, t in crossings}
    latencies = []
    first_seen: dict[tuple[str, int], float] = {}
    for job, processed, at in seen:
        mark = processed - processed % 100
        key = (job, mark)
        if mark and key in crossed and key not in first_seen:
            first_seen[key] = at
            latencies.append((at - crossed[key]) * 1000)
    return latencies


async def _run(ports: dict[str, int], key: str, jobs: Process, gateway: Process, env: dict[str, str]) -> dict[str, Any]:
    seen: list[tuple[str, int, float]] = []
    ready, stop = asyncio.Event(), asyncio.Event()
    listener = asyncio.create_task(_listen(f"ws://127.0.0.1:{ports['gateway']}/graphql", key, seen, ready, stop))
    await asyncio.wait_for(ready.wait(), 30)
    await asyncio.sleep(0.5)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "crossings.json"
        cpu_before = {"jobs": jobs.cpu_seconds(), "gateway": gateway.cpu_seconds()}
        started = time.monotonic()
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.live_worker", f"127.0.0.1:{ports['jobs']}", str(JOBS), str(ITEMS), str(out),
            env=env,
        )  # fmt: skip
        await worker.wait()
        wall = time.monotonic() - started
        cpu = {name: proc.cpu_seconds() - cpu_before[name] for name, proc in (("jobs", jobs), ("gateway", gateway))}
        await asyncio.sleep(2)
        stop.set()
        await listener
        if worker.returncode:
            raise RuntimeError(f"worker exited with {worker.returncode}")
        crossings = json.loads(out.read_text())["crossings"]
    latencies = _latencies(crossings, seen)
    if os.environ.get("B2X_BENCH_DEBUG"):
        from collections import Counter  # noqa: PLC0415

        print("processed values seen:", Counter(p for _, p, _ in seen).most_common(8))
        print("crossings:", Counter(n for _, n, _ in crossings))
        first = min(t for *_, t in crossings)
        print("crossing times (s from first):", sorted({round(t - first) for *_, t in crossings})[:20])
        print("seen times (s from first):", sorted({round(t - first) for *_, t in seen})[:40])
    return {
        "jobs": JOBS, "items_per_job": ITEMS, "wall_s": wall, "events_received": len(seen),
        "reports_matched": len(latencies), "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p95": percentile(latencies, 95), "latency_ms_p99": percentile(latencies, 99),
        "latency_ms_max": max(latencies) if latencies else float("nan"),
        "jobs_service_cores": cpu["jobs"] / wall, "gateway_cores": cpu["gateway"] / wall,
    }  # fmt: skip


def main(argv: list[str]) -> int:
    with servers() as srv:
        env, ports = stack_env(srv)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
        env.update({k: v for k, v in os.environ.items() if k.startswith("B2X_BENCH_")})
        jobs = Process("services.jobs", env, ports["jobs"])
        gateway = Process("gateway", env, ports["gateway"])
        try:
            key = asyncio.run(admin_key(srv.database_url))
            figures = asyncio.run(_run(ports, key, jobs, gateway, env))
        finally:
            gateway.stop()
            jobs.stop()
    both = figures["jobs_service_cores"] + figures["gateway_cores"]
    print(f"{figures['jobs']} jobs x {figures['items_per_job']} items in {figures['wall_s']:.0f} s; "
          f"{figures['reports_matched']} reports matched of {figures['events_received']} events")  # fmt: skip
    print_table([
        ("report → subscriber latency", f"p99 {figures['latency_ms_p99']:.0f} ms",
         f"p50 {figures['latency_ms_p50']:.0f} ms, p95 {figures['latency_ms_p95']:.0f} ms; budget p99 ≤ 1000 ms"),
        ("jobs service + gateway CPU", f"{both:.2f} cores",
         f"jobs {figures['jobs_service_cores']:.2f} + gateway {figures['gateway_cores']:.2f}; budget ≤ 1 core"),
    ])  # fmt: skip
    path = save("live_latency", figures)
    print(f"  → {path}")
    return 0 if figures["latency_ms_p99"] <= 1000 and both <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
