"""Status queries with 100 000 jobs stored (budget: p99 ≤ 100 ms through GraphQL; `b2c jobs list` ≤ 300 ms).

Starts a jobs service and the gateway as processes on embedded (or B2X_BENCH_*) PostgreSQL and
Redis, stores 100 000 jobs spread over 30 days, 7 types, 30 tenants and every status, then times
filtered, sorted pages of 50 through GraphQL (HTTP keep-alive, like the dashboard) and `b2c jobs list`
as a fresh process (what a person at a terminal waits for).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.support import Process, admin_key, begin, percentile, print_table, save, servers, stack_env

JOBS = int(os.environ.get("B2X_BENCH_JOBS", "100000"))
ROUNDS = int(os.environ.get("B2X_BENCH_ROUNDS", "200"))
SEED = f"""
INSERT INTO jobs.jobs (id, job_type, tenant_id, status, attempt, max_attempts, root_job_id, created_at, started_at,
                       completed_at, updated_at, available_at, total_items, processed_items, succeeded_items,
                       failed_items, progress_percent, items_per_second, error_message, error_category, error_class,
                       worker_id)
SELECT id, (ARRAY['ERP_ARTICLE_SYNC','ERP_PRICE_UPDATE','ERP_STOCK_SYNC','ERP_ORDER_EXPORT','ERP_CUSTOMER_SYNC',
                  'PIM_IMPORT','CRM_EXPORT'])[1 + g % 7],
       'tenant-' || lpad((g % 30)::text, 2, '0'), st, 1, 3, id, created, created + interval '5 seconds',
       CASE WHEN st IN ('COMPLETED','FAILED','CANCELLED') THEN created + interval '10 minutes' END,
       created + interval '10 minutes', created, total,
       CASE WHEN st = 'COMPLETED' THEN total WHEN st = 'QUEUED' THEN 0 ELSE total * (g % 97) / 100 END,
       CASE WHEN st = 'COMPLETED' THEN total ELSE 0 END, 0,
       CASE WHEN st = 'COMPLETED' THEN 100 WHEN st = 'QUEUED' THEN 0 ELSE (g % 97) END, 42.0,
       CASE WHEN st = 'FAILED' THEN (ARRAY['ERP read timeout after 30 s','token expired','validation failed: '
                                           || 'price group unknown'])[1 + g % 3] END,
       CASE WHEN st = 'FAILED' THEN 'ERP_CONNECTION_FAILED' END,
       CASE WHEN st = 'FAILED' THEN 'TRANSIENT' END,
       'worker-' || (g % 8)
FROM (SELECT g, gen_random_uuid() AS id, now() - g * interval '26 seconds' AS created, 500 + g % 9500 AS total,
             CASE WHEN g % 100 < 85 THEN 'COMPLETED' WHEN g % 100 < 93 THEN 'FAILED' WHEN g % 100 < 96 THEN 'RUNNING'
                  WHEN g % 100 < 98 THEN 'QUEUED' ELSE 'CANCELLED' END AS st
      FROM generate_series(1, {JOBS}) g) s
"""

QUERIES: dict[str, tuple[str, dict[str, Any]]] = {
    "newest page of 50": ("query { jobs(first: 50) { totalCount nodes { id status progress { percent } } } }", {}),
    "failed+running of a tenant, by start": (
        "query($f: JobFilter) { jobs(filter: $f, sort: {field: STARTED_AT, direction: DESC}, first: 50) "
        "{ totalCount nodes { id status jobType progress { percent etaSeconds } startedAt } } }",
        {"f": {"status": ["FAILED", "RUNNING"], "tenantId": ["tenant-07"]}},
    ),
    "one type by progress, page 3": (
        "query($f: JobFilter, $a: String) { jobs(filter: $f, sort: {field: PROGRESS}, first: 50, after: $a) "
        "{ totalCount pageInfo { endCursor } nodes { id progress { percent } } } }",
        {"f": {"jobType": ["ERP_ARTICLE_SYNC"]}},
    ),
    "error text search, last 7 days": (
        "query($f: JobFilter) { jobs(filter: $f, first: 50) { totalCount nodes { id errorMessage } } }",
        {"f": {"search": "timeout", "createdAfter": "CREATED_AFTER"}},
    ),
    "status counts": ("query { jobStatusCounts { status count } }", {}),
}


async def _seed_and_key(database_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        if await conn.fetchval("SELECT count(*) FROM jobs.jobs") < JOBS:
            await conn.execute(SEED)
            await conn.execute("VACUUM ANALYZE jobs.jobs")  # what autovacuum does in steady state
    finally:
        await conn.close()
    return await admin_key(database_url)


def _time_queries(api: str, key: str) -> dict[str, dict[str, float]]:
    figures = {}
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        created_after = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 7 * 86400))
        for name, (query, template) in QUERIES.items():
            variables = dict(template)
            if "f" in variables and variables["f"].get("createdAfter") == "CREATED_AFTER":
                variables["f"] = {**variables["f"], "createdAfter": created_after}
            if "page 3" in name:
                cursor = None
                for _ in range(2):
                    data = http.post("/graphql", json={"query": query, "variables": {**variables, "a": cursor}}).json()
                    cursor = data["data"]["jobs"]["pageInfo"]["endCursor"]
                variables["a"] = cursor
            samples = []
            for i in range(ROUNDS + 20):
                started = time.perf_counter()
                response = http.post("/graphql", json={"query": query, "variables": variables})
                elapsed = (time.perf_counter() - started) * 1000
                body = response.json()
                if "errors" in body:
                    raise RuntimeError(f"{name}: {body['errors']}")
                if i >= 20:
                    samples.append(elapsed)
            figures[name] = {"p50_ms": percentile(samples, 50), "p95_ms": percentile(samples, 95),
                             "p99_ms": percentile(samples, 99), "n": len(samples)}  # fmt: skip
    return figures


def _time_cli(api: str, key: str, runs: int = 15) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
    env.update({"B2C_API_URL": api, "B2C_API_KEY": key, "B2C_CONFIG": "/nonexistent/b2c.json", "COLUMNS": "120"})
    b2c = str(Path(sys.executable).parent / "b2c")
    samples = []
    for i in range(runs + 1):
        started = time.perf_counter()
        subprocess.run([b2c, "jobs", "list"], env=env, check=True, capture_output=True)
        if i:  # the first run warms the OS page cache; "warm" is what the budget names
            samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99), "n": len(samples)}


def main(argv: list[str]) -> int:
    begin("jobs_queries")  # the machine and its load before the run
    with servers() as srv:
        env, ports = stack_env(srv)
        jobs = Process("services.jobs", env, ports["jobs"])
        gateway = Process("gateway", env, ports["gateway"])
        try:
            key = asyncio.run(_seed_and_key(srv.database_url))
            api = f"http://127.0.0.1:{ports['gateway']}"
            queries = _time_queries(api, key)
            cli = _time_cli(api, key)
        finally:
            gateway.stop()
            jobs.stop()
    rows = [(f"GraphQL: {name}", f"p99 {f['p99_ms']:.1f} ms", f"p50 {f['p50_ms']:.1f} ms; budget p99 ≤ 100 ms")
            for name, f in queries.items()]  # fmt: skip
    rows.append(
        ("b2c jobs list (wall, warm)", f"p99 {cli['p99_ms']:.0f} ms", f"p50 {cli['p50_ms']:.0f} ms; budget ≤ 300 ms")
    )
    print(f"{JOBS} jobs stored, {ROUNDS} requests per query")
    print_table(rows)
    path = save("jobs_queries", {"jobs": JOBS, "queries": queries, "cli": cli})
    print(f"  → {path}")
    worst = max(f["p99_ms"] for f in queries.values())
    return 0 if worst <= 100 and cli["p99_ms"] <= 300 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
