"""Health summary with 200 services (budget: p99 ≤ 50 ms), history views, and the check-state consumer's pace.

Starts the health service as a process on embedded (or B2X_BENCH_*) PostgreSQL and Redis, registers
200 services, fills a year's worth of hourly rollups (400 days x 24 h x 200 services, the default
retention full) and a resource sample per service, then times GetHealthSummary and GetHealthHistory
over gRPC while check states keep arriving on the stream at the rate of 200 services checked every
30 s. Last, it appends a backlog of 20 000 check states and times how fast the consumer stores them.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import redis.asyncio as aioredis
from b2x.monitoring.v1 import common_pb2, health_pb2, health_pb2_grpc, probes_pb2

from bench.support import Process, begin, percentile, print_table, save, servers, stack_env

SERVICES = int(os.environ.get("B2X_BENCH_SERVICES", "200"))
DAYS = int(os.environ.get("B2X_BENCH_ROLLUP_DAYS", "400"))
ROUNDS = int(os.environ.get("B2X_BENCH_ROUNDS", "500"))
BACKLOG = int(os.environ.get("B2X_BENCH_BACKLOG", "20000"))
NAMESPACE = "bench"
STREAM = f"{NAMESPACE}:probes:check-states"
STARTED = datetime.now(UTC)
BACKLOG_DEADLINE = 300.0

SEED_SERVICES = """
INSERT INTO health.services (id, slug, name, type, endpoint, probe_kind, source, status, status_reason, check_status,
    check_reason, last_checked, last_successful, average_latency_ms, uptime_percent, created_at, updated_at)
SELECT gen_random_uuid(), 'svc-' || g, 'Service ' || lpad(g::text, 3, '0'),
    (ARRAY['ERP','PIM','CRM','DATABASE','MESSAGE_QUEUE','CACHE','OTHER'])[1 + g % 7],
    'https://svc-' || g || '.example.test/health', 'http', 'api', st, 'HTTP 200 OK in 45 ms', st,
    'HTTP 200 OK in 45 ms', now(), now(), 20 + g % 300, 99.5, now() - interval '401 days', now() - interval '401 days'
FROM (SELECT g, CASE WHEN g % 50 = 0 THEN 'OFFLINE' WHEN g % 10 = 0 THEN 'DEGRADED' ELSE 'ONLINE' END AS st
      FROM generate_series(1, $1::int) g) s
"""
SEED_ROLLUPS = """
INSERT INTO health.check_rollups_hourly (service_id, bucket_start, checks, failures, latency_sum_ms, latency_count,
    latency_max_ms)
SELECT s.id, h, 120, f, (120 - f) * (20 + abs(hashtext(s.slug)) % 300), 120 - f, 900
FROM health.services s,
     generate_series(date_trunc('hour', now()) - make_interval(days => $1::int), date_trunc('hour', now()),
                     interval '1 hour') h,
     LATERAL (SELECT CASE WHEN random() < 0.02 THEN (random() * 120)::int ELSE 0 END AS f) x
"""
SEED_RESOURCES = """
INSERT INTO health.resource_latest
SELECT id, now(), 45, 40, 80, 734003200, 2147483648, 34.2, 800000000, 8, 10, 42, 23, 120 FROM health.services
"""

HISTORY: dict[str, dict[str, Any]] = {
    "one service, 24 h by hour": {"service": "svc-7", "hours": 24},
    "one service, 7 d by hour": {"service": "svc-7", "hours": 24 * 7},
    "one service, 400 d by day": {"service": "svc-7", "hours": 24 * 400, "bucket": 2},
    "all services, 24 h by hour": {"service": "", "hours": 24},
    "all services, 7 d by hour": {"service": "", "hours": 24 * 7},
    "all services, 30 d by day": {"service": "", "hours": 24 * 30, "bucket": 2},
}


async def _seed(database_url: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(database_url)
    try:
        if await conn.fetchval("SELECT count(*) FROM health.services") == 0:
            started = time.monotonic()
            await conn.execute(SEED_SERVICES, SERVICES)
            await conn.execute(SEED_ROLLUPS, DAYS)
            await conn.execute(SEED_RESOURCES)
            await conn.execute("VACUUM ANALYZE health.check_rollups_hourly")
            await conn.execute("VACUUM ANALYZE health.services")
            print(f"  seeded in {time.monotonic() - started:.0f} s", flush=True)
        rows = await conn.fetch("SELECT id, slug FROM health.services ORDER BY slug")
        rollups = await conn.fetchval("SELECT count(*) FROM health.check_rollups_hourly")
        print(f"  {len(rows)} services, {rollups} hourly rollup rows", flush=True)
        return [(str(r["id"]), r["slug"]) for r in rows]
    finally:
        await conn.close()


_SEQUENCE = iter(range(10**12))


def _state(service_id: str, slug: str, ok: bool) -> bytes:
    msg = probes_pb2.ServiceCheckState(
        service_id=service_id, service_slug=slug, success=ok, total_latency_ms=45.0,
        summary="HTTP 200 OK in 45 ms" if ok else "HTTP 503 Service Unavailable", consecutive_failures=0 if ok else 1,
        speed_rating=probes_pb2.SPEED_RATING_FAST, circuit_breaker=probes_pb2.CIRCUIT_BREAKER_STATE_CLOSED,
    )  # fmt: skip
    # A distinct instant per state: a probe never checks one service twice in the same microsecond, and the
    # receipts (which the backlog timing counts) take (checked_at, service) as the identity of a check.
    msg.checked_at.FromDatetime(STARTED + timedelta(microseconds=next(_SEQUENCE)))
    if not ok:
        msg.error_type = probes_pb2.COMMUNICATION_ERROR_TYPE_SERVICE_UNAVAILABLE
    return msg.SerializeToString()


async def _feed(redis: aioredis.Redis, services: list[tuple[str, str]], stop: asyncio.Event) -> int:
    """Check states at the pace of every service checked every 30 s, in the agents' 0.2 s flushes."""
    sent, i = 0, 0
    per_flush = max(1, round(len(services) / 30 * 0.2))
    while not stop.is_set():
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(per_flush):
                service_id, slug = services[i % len(services)]
                pipe.xadd(STREAM, {"state": _state(service_id, slug, i % 40 != 0)})
                i += 1
            await pipe.execute()
        sent += per_flush
        await asyncio.sleep(0.2)
    return sent


async def _time(call: Any, request: Any, rounds: int) -> dict[str, float]:
    samples = []
    for i in range(rounds + 30):
        started = time.perf_counter()
        await call(request, timeout=10)
        if i >= 30:
            samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": percentile(samples, 50), "p95_ms": percentile(samples, 95), "p99_ms": percentile(samples, 99),
            "n": len(samples)}  # fmt: skip


def _history_request(spec: dict[str, Any]) -> health_pb2.GetHealthHistoryRequest:
    now = datetime.now(UTC)
    request = health_pb2.GetHealthHistoryRequest(service=spec["service"], bucket=spec.get("bucket", 1))
    request.range.CopyFrom(common_pb2.TimeRange())
    request.range.start.FromDatetime(now - timedelta(hours=spec["hours"]))
    request.range.end.FromDatetime(now)
    return request


async def _backlog(redis: aioredis.Redis, database_url: str, services: list[tuple[str, str]]) -> dict[str, float]:
    """Append BACKLOG states at once; how long until the consumer has counted them all."""
    conn = await asyncpg.connect(database_url)
    try:
        before = await conn.fetchval("SELECT count(*) FROM health.check_receipts")
        started = time.perf_counter()
        for offset in range(0, BACKLOG, 1000):
            async with redis.pipeline(transaction=False) as pipe:
                for i in range(offset, min(offset + 1000, BACKLOG)):
                    service_id, slug = services[i % len(services)]
                    pipe.xadd(STREAM, {"state": _state(service_id, slug, True)})
                await pipe.execute()
        while True:
            if await conn.fetchval("SELECT count(*) FROM health.check_receipts") >= before + BACKLOG:
                break
            if time.perf_counter() - started > BACKLOG_DEADLINE:
                raise RuntimeError(f"the consumer did not store {BACKLOG} states within {BACKLOG_DEADLINE:.0f} s")
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return {"states": BACKLOG, "seconds": seconds, "states_per_second": BACKLOG / seconds}


async def _measure(address: str, redis_url: str, database_url: str) -> dict[str, Any]:
    services = await _seed(database_url)
    redis = aioredis.from_url(redis_url)
    stop = asyncio.Event()
    feeder = asyncio.create_task(_feed(redis, services, stop))
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthServiceStub(channel)
            summary = await stub.GetHealthSummary(health_pb2.GetHealthSummaryRequest(), timeout=10)
            assert len(summary.components) == len(services), len(summary.components)
            figures: dict[str, Any] = {
                "summary": await _time(stub.GetHealthSummary, health_pb2.GetHealthSummaryRequest(), ROUNDS)
            }
            figures["history"] = {
                name: await _time(stub.GetHealthHistory, _history_request(spec), max(50, ROUNDS // 5))
                for name, spec in HISTORY.items()
            }
    finally:
        stop.set()
        figures["states_fed_while_timing"] = await feeder
    figures["backlog"] = await _backlog(redis, database_url, services)
    await redis.aclose()
    return figures


def main(argv: list[str]) -> int:
    begin("health_summary")  # the machine and its load before the run
    with servers() as srv:
        env, ports = stack_env(srv, B2X_NAMESPACE=NAMESPACE, B2X_HEALTH_CONSUMER_NAME="bench-health")
        health = Process("services.health", env, ports["health"])
        try:
            figures = asyncio.run(_measure(f"127.0.0.1:{ports['health']}", srv.redis_url, srv.database_url))
            cpu = health.cpu_seconds()
        finally:
            health.stop()
    summary = figures["summary"]
    rows = [
        ("GetHealthSummary", f"p99 {summary['p99_ms']:.1f} ms", f"p50 {summary['p50_ms']:.1f} ms; budget p99 ≤ 50 ms")
    ]
    rows += [(f"GetHealthHistory: {name}", f"p99 {f['p99_ms']:.1f} ms", f"p50 {f['p50_ms']:.1f} ms")
             for name, f in figures["history"].items()]  # fmt: skip
    backlog = figures["backlog"]
    rows.append(("consumer backlog", f"{backlog['states_per_second']:.0f} states/s",
                 f"{backlog['states']} states in {backlog['seconds']:.1f} s"))  # fmt: skip
    print(f"{SERVICES} services, {DAYS} days of hourly rollups, {ROUNDS} summary requests")
    print_table(rows)
    path = save("health_summary", {"services": SERVICES, "rollup_days": DAYS, "health_cpu_seconds": cpu, **figures})
    print(f"  → {path}")
    return 0 if summary["p99_ms"] <= 50 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
