"""The gateway's hop of the live path alone: bursts of job events published to Redis → GraphQL subscribers.

    python -m bench.gateway_fanout [--burst 1000] [--bursts 5] [--subscribers 1] [--watch N] [--rounds 3]

No jobs service and no worker: the benchmark publishes bursts of `jobStatusChanged` progress events (shaped
like the jobs service's, whole job included, one `EventBatch` per burst as `ReportBatch` produces) straight
to the gateway's Redis channel, and `--subscribers` graphql-transport-ws clients (in this process) subscribe
with `bench/live_latency.py`'s document. It measures what `live_latency`'s hop gateway_received →
delivered costs without the rest of the stack's noise: the gateway's CPU per delivered message and the time
from publishing a burst to each subscriber's last message of it (docs/adr/0021-live-path.md, ADR 0023).
With `--watch N` each subscriber asks for N jobs of the burst (`jobIds`), like the dashboard's table.
`--gateway-path DIR` runs the gateway from another checkout (same-minute A/B of two versions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import websockets
from b2x.monitoring.v1 import events_pb2, jobs_pb2

from bench.live_latency import SUBSCRIPTION
from bench.support import (
    Process,
    admin_key,
    begin,
    fmt_spread,
    histogram_table,
    percentile,
    print_table,
    save,
    servers,
    spread,
    stack_env,
)
from services.common.events import EventBus, Topic, connect_redis, new_event

EDGES_MS: list[float] = [1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 5000]


def progress_event(job_id: str, tenant: str, processed: int, total: int) -> events_pb2.Event:
    """A progress event as the jobs service publishes it after a ReportBatch (services/jobs/events.py)."""
    event = new_event("jobs", tenant_id=tenant)
    job = jobs_pb2.SchedulerJob(
        id=job_id, job_type="BENCH_LIVE", tenant_id=tenant, status=jobs_pb2.JOB_STATUS_RUNNING,
        progress_percent=processed * 100 // total, attempt=1, max_attempts=3, root_job_id=job_id,
        worker_id="bench-worker", created_by="bench", log_sequence=0,
    )  # fmt: skip
    job.progress.total_items, job.progress.processed_items = total, processed
    job.progress.succeeded_items, job.progress.percent = processed, processed * 100 / total
    job.progress.items_per_second = 1000.0
    job.progress.eta_seconds = (total - processed) / 1000
    for stamp in (job.created_at, job.started_at, job.updated_at, job.last_heartbeat_at, job.progress.updated_at):
        stamp.GetCurrentTime()
    job.metadata.update({"source": "bench", "batch": 7})
    payload = event.job_status_changed
    payload.job_id, payload.status, payload.previous_status = job_id, job.status, job.status
    payload.progress.CopyFrom(job.progress)
    payload.job.CopyFrom(job)
    payload.change = "progress"
    now = time.time_ns()
    for name in ("sdk_enqueued", "sdk_sent", "jobs_received", "jobs_committed", "published"):
        event.hops.add(name=name, at_unix_nanos=now)
    return event


async def _listen(url: str, key: str, ids: list[str] | None, arrivals: list[float], ready: asyncio.Event) -> None:
    async with websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")], max_size=None, max_queue=None,
        ping_interval=None,
    ) as ws:  # fmt: skip
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}))
        await ws.recv()
        payload = {"query": SUBSCRIPTION, "variables": {"ids": ids}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        ready.set()
        async for message in ws:
            text = message if isinstance(message, str) else message.decode()
            if '"next"' in text:
                arrivals.append(time.time())
            elif '"ping"' in text:
                await ws.send(json.dumps({"type": "pong"}))
            else:
                raise RuntimeError(f"unexpected message: {text[:300]}")


async def _round(port: int, key: str, redis_url: str, gateway: Process, args: argparse.Namespace) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{port}/graphql"
    jobs = [str(uuid.uuid4()) for _ in range(args.burst)]
    pages = [[jobs[(i * args.watch + k) % len(jobs)] for k in range(args.watch)] for i in range(args.subscribers)]
    arrivals: list[list[float]] = [[] for _ in range(args.subscribers)]
    readies = [asyncio.Event() for _ in range(args.subscribers)]
    listeners = [
        asyncio.create_task(_listen(url, key, pages[i] if args.watch else None, arrivals[i], readies[i]))
        for i in range(args.subscribers)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
    await asyncio.sleep(0.5)
    redis = await connect_redis(redis_url)
    bus = EventBus(redis, "b2x")
    per_sub = args.watch if args.watch else args.burst
    latencies: list[float] = []
    lasts: list[float] = []
    cpu_s = 0.0
    try:
        for number in range(args.bursts):
            events = [progress_event(j, "tenant-a", 100 * (number + 1), 100 * (args.bursts + 1)) for j in jobs]
            await asyncio.sleep(0.3)
            cpu = gateway.cpu_seconds()
            published = time.time()
            await bus.publish_many(Topic.JOB_STATUS, events)
            expected = (number + 1) * per_sub
            deadline = time.monotonic() + 60
            while any(len(a) < expected for a in arrivals):
                if time.monotonic() > deadline or any(t.done() for t in listeners):
                    for t in listeners:
                        if t.done():
                            t.result()
                    raise RuntimeError(f"burst {number}: {[len(a) for a in arrivals]} of {expected} messages")
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.2)  # the gateway's last writes and bookkeeping count too
            cpu_s += gateway.cpu_seconds() - cpu
            burst = [(at - published) * 1000 for a in arrivals for at in a[expected - per_sub : expected]]
            latencies += burst
            lasts.append(max(burst))
    finally:
        for t in listeners:
            t.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        await bus.close()
        await redis.aclose()
    messages = args.bursts * per_sub * args.subscribers
    return {
        "messages": messages, "gateway_cpu_s": cpu_s, "gateway_cpu_ms_per_message": 1000 * cpu_s / messages,
        "latency_ms_p50": percentile(latencies, 50), "latency_ms_p99": percentile(latencies, 99),
        "last_of_burst_ms_median": percentile(lasts, 50), "last_of_burst_ms_max": max(lasts),
        "_latencies": latencies,
    }  # fmt: skip


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_fanout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=1000, help="events per burst (one EventBatch)")
    parser.add_argument("--bursts", type=int, default=5, help="bursts per round")
    parser.add_argument("--subscribers", type=int, default=1)
    parser.add_argument("--watch", type=int, default=0, metavar="N", help="each subscriber watches N jobs; 0: all")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gateway-path", default="", help="run the gateway from this checkout (A/B); default: here")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    begin("gateway_fanout")
    rounds: list[dict[str, Any]] = []
    code = Path(args.gateway_path).resolve() if args.gateway_path else Path(__file__).resolve().parent.parent
    with servers() as srv:
        env, ports = stack_env(srv)
        env["PYTHONPATH"] = f"{code / 'protos'}{os.pathsep}{code}"
        gateway = Process("gateway", env, ports["gateway"], cwd=code)
        try:
            key = asyncio.run(admin_key(srv.database_url))
            for number in range(1, args.rounds + 1):
                load = os.getloadavg()[0]
                figures = asyncio.run(_round(ports["gateway"], key, srv.redis_url, gateway, args))
                figures["load_average_before"] = load
                rounds.append(figures)
                print(
                    f"  round {number}: {figures['gateway_cpu_ms_per_message']:.3f} ms gateway CPU per message; "
                    f"p50 {figures['latency_ms_p50']:.0f} ms, p99 {figures['latency_ms_p99']:.0f} ms, last of a "
                    f"burst {figures['last_of_burst_ms_median']:.0f} ms (median); load average before {load:.2f}",
                    flush=True,
                )
        finally:
            gateway.stop()
            if gateway.proc.returncode not in (0, -15, None):
                print(gateway.proc.stderr.read().decode()[-2000:] if gateway.proc.stderr else "", file=sys.stderr)
    watching = f" watching {args.watch} jobs each" if args.watch else " to every job"
    print(f"gateway at {code}: bursts of {args.burst} events, {args.subscribers} subscriber(s){watching}, "
          f"{args.bursts} bursts x {args.rounds} round(s)")  # fmt: skip
    per_message = [r["gateway_cpu_ms_per_message"] for r in rounds]
    print_table([
        ("gateway CPU per message delivered", fmt_spread(per_message, " ms", 3), "CPU time: robust to the load"),
        ("published → subscriber p50", fmt_spread([r["latency_ms_p50"] for r in rounds], " ms"), ""),
        ("published → subscriber p99", fmt_spread([r["latency_ms_p99"] for r in rounds], " ms"), ""),
        ("last message of a burst", fmt_spread([r["last_of_burst_ms_median"] for r in rounds], " ms"), "median"),
    ])  # fmt: skip
    latencies = [v for r in rounds for v in r.pop("_latencies")]
    for line in histogram_table({"published → subscriber": latencies}, EDGES_MS):
        print(f"    {line}")
    path = save("gateway_fanout", {
        "gateway_path": str(code), "burst": args.burst, "bursts": args.bursts, "subscribers": args.subscribers,
        "watch": args.watch, "gateway_cpu_ms_per_message": spread(per_message), "rounds": rounds,
    })  # fmt: skip
    print(f"  → {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
