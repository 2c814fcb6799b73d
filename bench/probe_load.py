"""One probe agent checking 1 000 HTTP targets on loopback every 30 s (budget: at most 25 % of one core).

The benchmark starts PostgreSQL and Redis (embedded unless B2X_BENCH_DATABASE_URL / _REDIS_URL are
set), an HTTP server in its own process answering /t/0 ... /t/999, and the agent in its own process,
exactly as the probes service runs it (leases, slot scheduling, breakers, batched writes of results,
latest states and rollups, the check-state stream), only with its target list given instead of read
from the registry. After one interval of warm-up (leases taken, first slots reached) it measures the
agent process's CPU time (user + system, all threads) over a few intervals, and counts the checks
stored in that window: every target should be checked exactly once per interval.

    .venv/bin/python -m bench.probe_load [--scheme http|https|both] [--no-blackbox]
    # B2X_BENCH_TARGETS, B2X_BENCH_INTERVAL, B2X_BENCH_ROUNDS

Side by side (issue 13): after the agent, Prometheus blackbox_exporter (Debian's
`prometheus-blackbox-exporter`, on a free loopback port) probes the same targets at the same rate, asked
by this process the way Prometheus asks it (`/probe?target=…&module=…` over keep-alive, spread over the
interval); its process's CPU per probe is reported beside the agent's, with the ratio. The agent also
stores every result (PostgreSQL, rollups, the check-state stream); blackbox_exporter stores nothing.
HTTPS targets use a local CA (trustme) that both are given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
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


def serve(port: int, cert_dir: str = "") -> None:
    """The targets (child process): every path answers 200 with a small JSON body (over TLS with the
    certificate in `cert_dir`)."""
    tls = None
    if cert_dir:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(f"{cert_dir}/server.pem")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def run() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024, ssl=tls)
        await server.serve_forever()

    asyncio.run(run())


def agent(port: int, scheme: str = "http", ca_file: str = "") -> None:
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
               f"{scheme}://127.0.0.1:{port}/t/{n}", ProbeOptions(ca_file=ca_file), interval_seconds=INTERVAL)
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


BLACKBOX_CONFIG = """
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: {ca}
"""


def _certificates(directory: Path) -> str:
    """A local CA and a certificate for 127.0.0.1 (server.pem: key and chain); returns the CA file."""
    import trustme  # noqa: PLC0415 - a dev dependency, only for HTTPS runs

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(directory / "server.pem"))
    return str(directory / "ca.pem")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.probe_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scheme", choices=("http", "https", "both"), default="both")
    parser.add_argument("--no-blackbox", action="store_true", help="only the agent")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        serve(int(argv[1]), *argv[2:3])
        return 0
    if argv[:1] == ["--agent"]:
        agent(int(argv[1]), *argv[2:4])
        return 0
    begin("probe_load")  # the machine and its load before the run
    args = _parse(argv)
    blackbox = None if args.no_blackbox else shutil.which("prometheus-blackbox-exporter")
    if not args.no_blackbox and blackbox is None:
        print("  prometheus-blackbox-exporter not found (apt-get install prometheus-blackbox-exporter); agent only")
    results: dict[str, Any] = {}
    code = 0
    with servers() as found, tempfile.TemporaryDirectory(prefix="b2x-probe-load-") as tmp:
        ca_file = _certificates(Path(tmp))
        for scheme in ("http", "https") if args.scheme == "both" else (args.scheme,):
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("B2X_")}
            env.update({
                "B2X_DATABASE_URL": found.database_url, "B2X_REDIS_URL": found.redis_url, "B2X_NAMESPACE": "bench",
                "B2X_LOG_LEVEL": "WARNING", "B2X_BENCH_TARGETS": str(TARGETS), "B2X_BENCH_INTERVAL": str(INTERVAL),
            })  # fmt: skip
            serve_args = [str(port), tmp] if scheme == "https" else [str(port)]
            web = subprocess.Popen([sys.executable, "-m", "bench.probe_load", "--serve", *serve_args], env=env)
            try:
                figures = _measure_agent(env, port, scheme, ca_file if scheme == "https" else "", found.database_url)
                if blackbox:
                    figures["blackbox"] = _measure_blackbox(blackbox, port, scheme, ca_file, Path(tmp))
                    figures["ratio"] = figures["agent_cpu_ms_per_check"] / figures["blackbox"]["cpu_ms_per_probe"]
            finally:
                web.send_signal(signal.SIGTERM)
                web.wait(30)
            results[scheme] = figures
            code |= report(scheme, figures)
    path = save("probe_load", {"targets": TARGETS, "interval_seconds": INTERVAL, "rounds": ROUNDS, **results})
    print(f"  saved {path}")
    return code


def _measure_agent(env: dict[str, str], port: int, scheme: str, ca_file: str, database_url: str) -> dict[str, Any]:
    runner = subprocess.Popen(
        [sys.executable, "-m", "bench.probe_load", "--agent", str(port), scheme, ca_file],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert runner.stdout is not None
        if runner.stdout.readline().strip() != "ready":
            raise RuntimeError("the agent did not start")
        print(f"  {scheme}: {TARGETS} targets every {INTERVAL} s; warming up for one interval", flush=True)
        time.sleep(INTERVAL)
        agent_ps = psutil.Process(runner.pid)
        cpu0, wall0 = sum(agent_ps.cpu_times()[:2]), time.monotonic()
        start = datetime.now(UTC)
        print(f"  {scheme}: measuring the agent for {ROUNDS} intervals ({ROUNDS * INTERVAL} s)", flush=True)
        time.sleep(ROUNDS * INTERVAL)
        cpu1, wall1 = sum(agent_ps.cpu_times()[:2]), time.monotonic()
        end = datetime.now(UTC)
        rss = agent_ps.memory_info().rss
        time.sleep(2)  # the last batch reaches PostgreSQL
        per_target, latencies, failed = asyncio.run(stored_checks(database_url, start, end))
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.wait(30)
    cpu, wall = cpu1 - cpu0, wall1 - wall0
    return {
        "wall_seconds": round(wall, 1), "agent_cpu_seconds": round(cpu, 2),
        "agent_cpu_percent_of_one_core": round(cpu / wall * 100, 2), "budget_percent": BUDGET_PERCENT,
        "checks": sum(per_target), "agent_cpu_ms_per_check": cpu / max(1, sum(per_target)) * 1000,
        "targets_checked_once_per_interval": sum(1 for n in per_target if n == ROUNDS),
        "checks_per_target_min": min(per_target), "checks_per_target_max": max(per_target),
        "failed_checks": failed, "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p95": percentile(latencies, 95), "agent_rss_mib": round(rss / 2**20),
    }  # fmt: skip


def _measure_blackbox(binary: str, port: int, scheme: str, ca_file: str, tmp: Path) -> dict[str, Any]:
    """blackbox_exporter probing the same targets at the same rate, asked like Prometheus asks it."""
    config = tmp / "blackbox.yml"
    config.write_text(BLACKBOX_CONFIG.format(ca=ca_file))
    listen = free_port()
    exporter = subprocess.Popen(
        [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{listen}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{listen}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/-/healthy", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or exporter.poll() is not None:
                    raise RuntimeError("blackbox_exporter did not start") from None
                time.sleep(0.1)
        ps = psutil.Process(exporter.pid)
        print(f"  {scheme}: blackbox_exporter warming up for one interval, then {ROUNDS} measured", flush=True)
        asyncio.run(_scrape(base, port, scheme, 1))
        cpu0, wall0 = sum(ps.cpu_times()[:2]), time.monotonic()
        ok, probes, latencies = asyncio.run(_scrape(base, port, scheme, ROUNDS))
        cpu1, wall1 = sum(ps.cpu_times()[:2]), time.monotonic()
        rss = ps.memory_info().rss
    finally:
        exporter.send_signal(signal.SIGTERM)
        exporter.wait(30)
    cpu, wall = cpu1 - cpu0, wall1 - wall0
    return {
        "probes": probes, "successful": ok, "cpu_seconds": round(cpu, 2),
        "cpu_percent_of_one_core": round(cpu / wall * 100, 2), "cpu_ms_per_probe": cpu / max(1, probes) * 1000,
        "probe_ms_p50": percentile(latencies, 50), "probe_ms_p95": percentile(latencies, 95),
        "rss_mib": round(rss / 2**20),
    }  # fmt: skip


async def _scrape(base: str, port: int, scheme: str, intervals: int) -> tuple[int, int, list[float]]:
    """Every target once per interval, the requests spread evenly like Prometheus spreads its scrapes."""
    ok = probes = 0
    latencies: list[float] = []
    spacing = INTERVAL / TARGETS
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as client:

        async def probe(n: int) -> None:
            nonlocal ok, probes
            target = f"{scheme}://127.0.0.1:{port}/t/{n}"
            response = await client.get("/probe", params={"target": target, "module": "http_2xx"})
            probes += 1
            for line in response.text.splitlines():
                if line.startswith("probe_success "):
                    ok += line.endswith(" 1")
                elif line.startswith("probe_duration_seconds "):
                    latencies.append(float(line.split()[1]) * 1000)

        started = time.monotonic()
        tasks = []
        for i in range(intervals * TARGETS):
            await asyncio.sleep(max(0.0, started + i * spacing - time.monotonic()))
            tasks.append(asyncio.create_task(probe(i % TARGETS)))
        await asyncio.gather(*tasks)
    return ok, probes, latencies


def report(scheme: str, f: dict[str, Any]) -> int:
    exact = f["targets_checked_once_per_interval"]
    rows = [
        ("agent CPU, % of one core", f"{f['agent_cpu_percent_of_one_core']:.1f} %", f"budget: <= {BUDGET_PERCENT:g} %"),
        ("agent CPU per check", f"{f['agent_cpu_ms_per_check']:.2f} ms", "stored: result, state, rollups, stream"),
        ("checks stored in the window", f"{f['checks']}", f"expected {TARGETS * ROUNDS}"),
        ("targets checked once per interval", f"{exact} / {TARGETS}", "every one"),
        ("checks per target, min-max", f"{f['checks_per_target_min']}-{f['checks_per_target_max']}", f"{ROUNDS}"),
        ("failed checks", str(f["failed_checks"]), "0"),
        ("check latency p50 / p95", f"{f['latency_ms_p50']:.2f} / {f['latency_ms_p95']:.2f} ms", ""),
        ("agent memory (RSS)", f"{f['agent_rss_mib']} MiB", ""),
    ]
    bb = f.get("blackbox")
    if bb:
        rows += [
            ("blackbox_exporter CPU per probe", f"{bb['cpu_ms_per_probe']:.2f} ms",
             f"{bb['successful']}/{bb['probes']} successful; {bb['cpu_percent_of_one_core']:.1f} % of a core"),
            ("  agent ÷ blackbox_exporter", f"{f['ratio']:.2f}x", "goal <= 1.5x"),
            ("  blackbox probe p50 / p95", f"{bb['probe_ms_p50']:.2f} / {bb['probe_ms_p95']:.2f} ms", ""),
        ]  # fmt: skip
    print(f"  -- {scheme}")
    print_table(rows)
    good = f["agent_cpu_percent_of_one_core"] <= BUDGET_PERCENT and exact == TARGETS and f["failed_checks"] == 0
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
