"""One probe agent checking 1 000 HTTP targets on loopback every 30 s (budget: at most 25 % of one core).

The benchmark starts PostgreSQL and Redis (embedded unless B2X_BENCH_DATABASE_URL / _REDIS_URL are
set), an HTTP server in its own process answering /t/0 ... /t/999, and the agent in its own process,
exactly as the probes service runs it (leases, slot scheduling, breakers, batched writes of results,
latest states and rollups, the check-state stream), only with its target list given instead of read
from the registry. After one interval of warm-up (leases taken, first slots reached) it measures the
agent process's CPU time (user + system, all threads) over a few intervals, and counts the checks
stored in that window: every target should be checked exactly once per interval.

    .venv/bin/python -m bench.probe_load        # B2X_BENCH_TARGETS, B2X_BENCH_INTERVAL, B2X_BENCH_ROUNDS
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import asyncpg
import psutil

from bench.support import begin, percentile, print_table, save, servers
from services.common.embedded import free_port

TARGETS = int(os.environ.get("B2X_BENCH_TARGETS", "1000"))
INTERVAL = int(os.environ.get("B2X_BENCH_INTERVAL", "30"))
ROUNDS = int(os.environ.get("B2X_BENCH_ROUNDS", "3"))
BUDGET_PERCENT = 25.0
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n"
    b'{"status":"UP"}'
)


def serve(port: int) -> None:
    """The targets (child process): every path answers 200 with a small JSON body."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def run() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    asyncio.run(run())


def agent(port: int) -> None:
    """The agent (child process), with the probes service's own composition, until SIGTERM."""
    from services.common.logging import configure_logging  # noqa: PLC0415 - the parent needs none of it
    from services.common.runtime import open_resources, wait_for_shutdown  # noqa: PLC0415
    from services.common.settings import load_settings  # noqa: PLC0415
    from services.probes.domain import ProbeKind, ProbeOptions, Target  # noqa: PLC0415
    from services.probes.main import MIGRATIONS, build_agent  # noqa: PLC0415
    from services.probes.settings import ProbesSettings  # noqa: PLC0415

    class Fixed:
        def __init__(self, targets: list[Target]) -> None:
            self.targets = targets

        async def list_enabled(self) -> list[Target]:
            return self.targets

    targets = [
        Target(f"00000000-0000-4000-8000-{n:012d}", f"t{n}", f"target {n}", ProbeKind.HTTP,
               f"http://127.0.0.1:{port}/t/{n}", ProbeOptions(), interval_seconds=INTERVAL)
        for n in range(TARGETS)
    ]  # fmt: skip

    async def run() -> None:
        settings = load_settings(ProbesSettings)
        configure_logging("bench-agent", settings.log_level, settings.log_format)
        async with open_resources(settings, service="probes", schema="probes", migrations=MIGRATIONS) as resources:
            runtime = build_agent(resources, settings, Fixed(targets))
            await runtime.start()
            print("ready", flush=True)
            await wait_for_shutdown()
            await runtime.stop()

    asyncio.run(run())


async def stored_checks(database_url: str, start: datetime, end: datetime) -> tuple[list[int], list[float], int]:
    conn = await asyncpg.connect(database_url)
    try:
        counts = await conn.fetch(
            "SELECT service_id, count(*) AS n FROM probes.probe_results WHERE checked_at >= $1 AND checked_at < $2 "
            "GROUP BY service_id",
            start,
            end,
        )
        latencies = await conn.fetch(
            "SELECT total_ms FROM probes.probe_results WHERE checked_at >= $1 AND checked_at < $2", start, end
        )
        failed = await conn.fetchval(
            "SELECT count(*) FROM probes.probe_results WHERE NOT success AND checked_at >= $1 AND checked_at < $2",
            start,
            end,
        )
    finally:
        await conn.close()
    per_target = [r["n"] for r in counts] + [0] * (TARGETS - len(counts))
    return per_target, [r["total_ms"] for r in latencies], int(failed)


def main(argv: list[str]) -> int:
    begin("probe_load")  # the machine and its load before the run
    if argv[:1] == ["--serve"]:
        serve(int(argv[1]))
        return 0
    if argv[:1] == ["--agent"]:
        agent(int(argv[1]))
        return 0
    with servers() as found:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("B2X_")}
        env.update({
            "B2X_DATABASE_URL": found.database_url, "B2X_REDIS_URL": found.redis_url, "B2X_NAMESPACE": "bench",
            "B2X_LOG_LEVEL": "WARNING", "B2X_BENCH_TARGETS": str(TARGETS), "B2X_BENCH_INTERVAL": str(INTERVAL),
        })  # fmt: skip
        web = subprocess.Popen([sys.executable, "-m", "bench.probe_load", "--serve", str(port)], env=env)
        runner = subprocess.Popen(
            [sys.executable, "-m", "bench.probe_load", "--agent", str(port)], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert runner.stdout is not None
            if runner.stdout.readline().strip() != "ready":
                raise RuntimeError("the agent did not start")
            print(f"  {TARGETS} targets every {INTERVAL} s; warming up for one interval", flush=True)
            time.sleep(INTERVAL)
            agent_ps, web_ps = psutil.Process(runner.pid), psutil.Process(web.pid)
            cpu0, web0, wall0 = sum(agent_ps.cpu_times()[:2]), sum(web_ps.cpu_times()[:2]), time.monotonic()
            start = datetime.now(UTC)
            print(f"  measuring {ROUNDS} intervals ({ROUNDS * INTERVAL} s)", flush=True)
            time.sleep(ROUNDS * INTERVAL)
            cpu1, web1, wall1 = sum(agent_ps.cpu_times()[:2]), sum(web_ps.cpu_times()[:2]), time.monotonic()
            end = datetime.now(UTC)
            rss = agent_ps.memory_info().rss
            time.sleep(2)  # the last batch reaches PostgreSQL
            per_target, latencies, failed = asyncio.run(stored_checks(found.database_url, start, end))
        finally:
            for child in (runner, web):
                child.send_signal(signal.SIGTERM)
                child.wait(30)
    return report(cpu1 - cpu0, wall1 - wall0, web1 - web0, rss, per_target, latencies, failed)


def report(
    cpu: float, wall: float, web_cpu: float, rss: int, per_target: list[int], latencies: list[float], failed: int
) -> int:
    percent = cpu / wall * 100
    exact = sum(1 for n in per_target if n == ROUNDS)
    rows = [
        ("agent CPU, % of one core", f"{percent:.1f} %", f"budget: <= {BUDGET_PERCENT:g} %"),
        ("agent CPU per check", f"{cpu / max(1, sum(per_target)) * 1000:.2f} ms", ""),
        ("checks stored in the window", f"{sum(per_target)}", f"expected {TARGETS * ROUNDS}"),
        ("targets checked once per interval", f"{exact} / {TARGETS}", "every one"),
        ("checks per target, min-max", f"{min(per_target)}-{max(per_target)}", f"{ROUNDS}"),
        ("failed checks", str(failed), "0"),
        ("check latency p50 / p95", f"{percentile(latencies, 50):.2f} / {percentile(latencies, 95):.2f} ms", ""),
        ("agent memory (RSS)", f"{rss / 2**20:.0f} MiB", ""),
        ("target server CPU (not counted)", f"{web_cpu / wall * 100:.1f} %", ""),
    ]
    print_table(rows)
    path = save(
        "probe_load",
        {"targets": TARGETS, "interval_seconds": INTERVAL, "rounds": ROUNDS, "wall_seconds": round(wall, 1),
         "agent_cpu_seconds": round(cpu, 2), "agent_cpu_percent_of_one_core": round(percent, 2),
         "budget_percent": BUDGET_PERCENT, "checks": sum(per_target), "targets_checked_once_per_interval": exact,
         "failed_checks": failed, "latency_ms_p50": percentile(latencies, 50),
         "latency_ms_p95": percentile(latencies, 95), "agent_rss_mib": round(rss / 2**20)},
    )  # fmt: skip
    print(f"  saved {path}")
    return 0 if percent <= BUDGET_PERCENT and exact == TARGETS and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
