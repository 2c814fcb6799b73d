"""The services screens' budgets, measured in Debian's chromium (issue 11).

1. Connected services panel with 200 services fully rendered ≤ 1 s after navigation: a fresh load of
   `/services` until all 200 cards, with their gauges, are on screen.
2. Service error log with 100 000 stored communication errors rendered ≤ 1 s: a fresh load of `/errors`
   until its first page (50 rows) is on screen.
3. Live resource figures for 200 services (the probe agent samples all of them every 5 s, its default):
   no main-thread task over 50 ms (PerformanceObserver 'longtask') while the panel applies them, and how
   many gauge and sparkline changes reached the screen.

Services, gateway and stores run as processes on embedded (or B2X_BENCH_*) PostgreSQL and Redis. The 200
services point at a closed port with a one-hour check interval, and have their resources sampled from the
local PostgreSQL processes by the real probe agent. The errors are inserted with SQL (the probes' own
table and partitions). The machine is shared with other work: figures vary with its load.

    .venv/bin/python -m bench.dashboard_services   # B2X_BENCH_SERVICES, B2X_BENCH_LOADS, B2X_BENCH_LIVE_SECONDS
    B2X_BENCH_TRACE=/tmp/live.json …                 # also a performance trace of the live phase, summarised
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

import asyncpg

from bench.dashboard import ARGS, CHROMIUM, WEBAPP
from bench.support import Process, admin_key, percentile, print_table, save, servers, stack_env

SERVICES = int(os.environ.get("B2X_BENCH_SERVICES", "200"))
ERRORS = 100_000
LOADS = int(os.environ.get("B2X_BENCH_LOADS", "10"))
LIVE_SECONDS = int(os.environ.get("B2X_BENCH_LIVE_SECONDS", "30"))
TRACE = os.environ.get("B2X_BENCH_TRACE")  # a path: record a Chromium performance trace of the live phase there
TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "v8.execute"]

INSTRUMENT = """
window.__longTasks = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); })
  .observe({ type: 'longtask', buffered: true });
window.__gaugeChanges = 0;
window.__watchGauges = () => {
  new MutationObserver((records) => { window.__gaugeChanges += records.length; })
    .observe(document.querySelector('.service-grid'),
             { attributes: true, attributeFilter: ['aria-valuenow', 'points'], subtree: true });
};
"""
PANEL_READY = (
    f"() => document.querySelector('section[data-ready=true]') !== null"
    f" && document.querySelectorAll('.service-card').length === {SERVICES}"
    f" && document.querySelectorAll('.service-card [role=meter]').length === {2 * SERVICES}"
)
LOG_READY = (
    "() => document.querySelector('section[data-ready=true]') !== null"
    " && document.querySelectorAll('tr.error-row').length === 50"
)

SEED = f"""
SELECT probes.ensure_communication_errors_partition(now() - make_interval(days => d)) FROM generate_series(0, 25) d;
INSERT INTO probes.communication_errors (id, occurred_at, service_id, service_slug, error_type, error_group, severity,
    error_code, message, correlation_id, recommendations, details)
SELECT gen_random_uuid(), now() - i * interval '20 seconds', s.id::text, s.slug,
    (ARRAY['READ_TIMEOUT', 'CONNECTION_REFUSED', 'TOKEN_EXPIRED', 'SERVICE_UNAVAILABLE'])[1 + i % 4],
    (ARRAY['TIMEOUT', 'NETWORK', 'AUTHENTICATION', 'SERVICE'])[1 + i % 4],
    (ARRAY['ERROR', 'WARNING', 'CRITICAL'])[1 + i % 3], 'BENCH', 'benchmark error ' || i, gen_random_uuid(), '[]',
    jsonb_build_object('http_method', 'GET', 'endpoint_url', 'http://127.0.0.1:9/health', 'timing',
        jsonb_build_object('dns_ms', 1.0, 'tcp_ms', 2.0, 'total_ms', 30000.0))
FROM generate_series(1, {ERRORS}) i
JOIN (SELECT id, slug, (row_number() OVER (ORDER BY slug)) - 1 AS n FROM health.services) s ON s.n = i % {SERVICES};
ANALYZE probes.communication_errors;
"""


def _config(path: Path) -> Path:
    kinds = ("ERP", "PIM", "CRM", "DATABASE", "CACHE", "OTHER")
    lines = ["services:"]
    for i in range(SERVICES):
        lines.append(
            f"  - {{slug: svc-{i:03d}, name: 'Service {i:03d}', type: {kinds[i % len(kinds)]},"
            f" endpoint: 'http://127.0.0.1:9/health/{i}', interval_seconds: 3600,"
            " resources: {process_name: postgres}}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


async def _seed(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(120):  # the health service registers the file's services as it starts
            if await conn.fetchval("SELECT count(*) FROM health.services") >= SERVICES:
                break
            await asyncio.sleep(0.5)
        if await conn.fetchval("SELECT count(*) FROM probes.communication_errors") < ERRORS:
            await conn.execute(SEED)
        for _ in range(120):  # every service sampled once, so every card has its gauges
            if await conn.fetchval("SELECT count(*) FROM probes.resource_latest") >= SERVICES:
                break
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def _loads(page: Any, url: str, ready: str) -> dict[str, float]:
    times = []
    for _ in range(LOADS):
        await page.goto(url, wait_until="commit")
        await page.wait_for_function(ready, polling="raf", timeout=30_000)
        times.append(await page.evaluate("performance.now()"))
    return {"p50": percentile(times, 50), "max": max(times), "n": len(times)}


async def _query_times(base: str, key: str) -> dict[str, Any]:
    """What the two screens ask the gateway for, timed alone: the server's share of a render."""
    import json  # noqa: PLC0415

    import httpx  # noqa: PLC0415

    text = (WEBAPP.parent.parent / "frontend" / "src" / "generated" / "graphql.ts").read_text(encoding="utf-8")

    def document(name: str) -> str:
        line = next(x for x in text.splitlines() if x.startswith(f"export const {name}Document = "))
        return str(json.loads(line.split(" = ", 1)[1].split(" as unknown", 1)[0]))

    today = time.strftime("%Y-%m-%dT00:00:00+00:00", time.gmtime())
    asks = {
        f"ServicesPanel ({SERVICES} services + checks + errors today)": (document("ServicesPanel"), {"today": today}),
        "ErrorLog (page of 50 + total)": (document("ErrorLog"), {"first": 50}),
    }
    figures = {}
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        for name, (query, variables) in asks.items():
            samples = []
            for i in range(15):
                started = time.perf_counter()
                body = (await http.post("/graphql", json={"query": query, "variables": variables})).json()
                if "errors" in body:
                    raise RuntimeError(f"{name}: {body['errors']}")
                if i >= 3:
                    samples.append((time.perf_counter() - started) * 1000)
            figures[name] = {"p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99)}
    return figures


def _trace_summary(path: Path) -> dict[str, Any]:
    """Where the main thread's tasks over 50 ms of the live phase went: the renderer main thread's top-level
    tasks, and within them the time of each kind of work (script by function, style, layout, paint)."""
    events = json.loads(path.read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    main = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"
    }
    on_main = sorted(
        (e for e in events if (e.get("pid"), e.get("tid")) in main and e.get("ph") == "X" and "dur" in e),
        key=lambda e: e["ts"],
    )
    long = [e for e in on_main if e["name"] == "RunTask" and e["dur"] > 50_000]
    kinds: dict[str, float] = {}
    for task in long:
        end = task["ts"] + task["dur"]
        for e in on_main:
            if e["ts"] < task["ts"] or e["ts"] >= end or e is task:
                continue
            name = e["name"]
            if name == "FunctionCall":
                data = e.get("args", {}).get("data", {})
                name = f"script {data.get('functionName') or '(anonymous)'} {Path(data.get('url', '')).name}"
            elif name not in {"UpdateLayoutTree", "Layout", "Paint", "PrePaint", "Layerize", "HitTest", "ParseHTML",
                              "MajorGC", "MinorGC", "V8.GC_SCAVENGER", "EventDispatch", "TimerFire",
                              "FireAnimationFrame", "v8.compile", "CompileScript"}:  # fmt: skip
                continue
            kinds[name] = kinds.get(name, 0.0) + e["dur"] / 1000
    top = sorted(kinds.items(), key=lambda kv: -kv[1])[:12]
    return {
        "long_tasks": [round(t["dur"] / 1000, 1) for t in long],
        "time_ms_by_kind": dict((k, round(v, 1)) for k, v in top),
    }


async def _measure(base: str, key: str) -> dict[str, Any]:
    from playwright.async_api import async_playwright  # noqa: PLC0415

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        await context.add_init_script(INSTRUMENT)
        page = await context.new_page()
        await page.goto(f"{base}/#key={key}")
        await page.wait_for_selector("[data-testid=connection-state]", timeout=60_000)
        figures: dict[str, Any] = {
            "queries": await _query_times(base, key),
            "panel_load_ms": await _loads(page, f"{base}/services", PANEL_READY),
            "error_log_load_ms": await _loads(page, f"{base}/errors", LOG_READY),
        }
        await page.goto(f"{base}/services", wait_until="commit")
        await page.wait_for_function(PANEL_READY, timeout=30_000)
        await page.wait_for_timeout(2000)  # the first sparkline fetches of the visible cards
        await page.evaluate("window.__longTasks = []; window.__watchGauges()")
        if TRACE:
            await browser.start_tracing(page=page, path=TRACE, categories=TRACE_CATEGORIES)
        await page.wait_for_timeout(LIVE_SECONDS * 1000)
        long_tasks: list[float] = await page.evaluate("window.__longTasks")
        if TRACE:
            await browser.stop_tracing()
            figures["trace"] = _trace_summary(Path(TRACE))
        figures["live"] = {
            "seconds": LIVE_SECONDS,
            "gauge_changes": await page.evaluate("window.__gaugeChanges"),
            "long_tasks": {"count": len(long_tasks), "max_ms": max(long_tasks, default=0.0)},
        }
        await browser.close()
    return figures


def main(argv: list[str]) -> int:
    if not (WEBAPP / "index.html").exists():
        print("the dashboard is not built: run `make install`", file=sys.stderr)
        return 2
    with servers() as srv, tempfile.TemporaryDirectory(prefix="b2x-bench-svc-") as tmp:
        env, ports = stack_env(srv, B2X_CONFIG_FILE=str(_config(Path(tmp) / "services.yaml")))
        processes = [Process("services.jobs", env, ports["jobs"])]
        try:
            processes += [
                Process("services.health", env, ports["health"]),
                Process("services.probes", env, ports["probes"]),
                Process("gateway", env, ports["gateway"]),
            ]
            asyncio.run(_seed(srv.database_url))
            key = asyncio.run(admin_key(srv.database_url))
            started = time.monotonic()
            figures = asyncio.run(_measure(f"http://127.0.0.1:{ports['gateway']}", key))
            figures["wall_seconds"] = round(time.monotonic() - started, 1)
        finally:
            for process in reversed(processes):
                process.stop()
    panel, log, live = figures["panel_load_ms"], figures["error_log_load_ms"], figures["live"]
    rows = [
        (f"GraphQL {name}", f"p50 {f['p50_ms']:.0f} ms", f"p99 {f['p99_ms']:.0f} ms")
        for name, f in figures["queries"].items()
    ]
    rows += [
        (f"services panel: load → {SERVICES} cards", f"p50 {panel['p50']:.0f} ms",
         f"max {panel['max']:.0f} ms; budget ≤ 1000 ms"),
        (f"error log ({ERRORS:,} stored): load → 50 rows", f"p50 {log['p50']:.0f} ms",
         f"max {log['max']:.0f} ms; budget ≤ 1000 ms"),
        (f"{SERVICES} services sampled every 5 s", f"{live['gauge_changes']} changes",
         f"gauge and sparkline updates on screen in {live['seconds']} s"),
        ("longest main-thread task", f"{live['long_tasks']['max_ms']:.0f} ms",
         f"{live['long_tasks']['count']} tasks over 50 ms; budget none"),
    ]  # fmt: skip
    print(f"{SERVICES} services and {ERRORS:,} communication errors stored; chromium {CHROMIUM}")
    print_table(rows)
    path = save("dashboard_services", {"services": SERVICES, "errors": ERRORS, **figures})
    print(f"  → {path}")
    ok = panel["max"] <= 1000 and log["max"] <= 1000 and live["long_tasks"]["count"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
