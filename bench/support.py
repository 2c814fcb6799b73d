"""What the benchmarks share: servers to run against, processes of the stack, percentiles, results."""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from services.common.embedded import EmbeddedPostgres, EmbeddedRedis, free_port

RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def calibration_ms() -> float:
    """CPU time (not wall) of a fixed pure-Python loop, best of 5, in ms: how fast this machine's core
    is right now. Figures from two runs compare only as far as their calibrations agree (a shared VM's
    core speed moves by tens of percent with its neighbours' load)."""
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        x = 0
        for i in range(300_000):
            x += i * i
        best = min(best, time.process_time() - started)
    return round(best * 1000, 2)


def machine() -> dict[str, Any]:
    """The machine and its state: CPU model, a calibration loop's time, the load average."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(psutil.virtual_memory().total / 2**30),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_average": [round(x, 2) for x in os.getloadavg()], "calibration_ms": calibration_ms()}  # fmt: skip


_before: dict[str, Any] = {}


def begin(name: str) -> dict[str, Any]:
    """Record the machine before a benchmark starts (load average, calibration) and print it."""
    _before.clear()
    _before.update(machine())
    print(f"  [{name}] {describe_machine(_before)}", flush=True)
    return dict(_before)


def describe_machine(m: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.2f}" for x in m["load_average"])
    return f"{m['cpus']} x {m['cpu']}; calibration loop {m['calibration_ms']:.1f} ms CPU; load average {load}"


def spread(values: list[float]) -> dict[str, float]:
    """min / median / max of a benchmark's rounds."""
    if not values:
        return {"min": float("nan"), "median": float("nan"), "max": float("nan")}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def fmt_spread(values: list[float], unit: str = "", digits: int = 0) -> str:
    s = spread(values)
    return f"min {s['min']:.{digits}f} / median {s['median']:.{digits}f} / max {s['max']:.{digits}f}{unit}"


def histogram_table(series: dict[str, list[float]], edges: list[float], unit: str = "ms") -> list[str]:
    """Histograms side by side: a row per series, a column per bucket (previous edge, edge] and one for
    values above the last edge; each row also gives p50 / p99 / max. Columns empty in every row are left out."""
    counts = {name: [0] * (len(edges) + 1) for name in series}
    for name, values in series.items():
        for v in values:
            counts[name][bisect.bisect_left(edges, v)] += 1
    used = [i for i in range(len(edges) + 1) if any(c[i] for c in counts.values())]
    labels = [f"≤{e:g}" for e in edges] + [f">{edges[-1]:g}"]
    width = max(len(n) for n in series)
    lines = [
        f"{'(' + unit + ')':<{width}} {'p50':>8} {'p99':>8} {'max':>8} " + " ".join(f"{labels[i]:>6}" for i in used)
    ]
    for name, values in series.items():
        lines.append(
            f"{name:<{width}} {percentile(values, 50):>8.1f} {percentile(values, 99):>8.1f} "
            f"{max(values, default=float('nan')):>8.1f} " + " ".join(f"{counts[name][i]:>6}" for i in used)
        )
    return lines


def numeric_leaves(record: Any, prefix: str = "") -> dict[str, float]:
    """Every number in a saved result, by its dotted path (lists of rounds and machine data left out)."""
    found: dict[str, float] = {}
    if isinstance(record, dict):
        for key, value in record.items():
            if key in {"machine", "machine_after", "rounds", "benchmark"} or key.startswith("_"):
                continue
            found.update(numeric_leaves(value, f"{prefix}{key}."))
    elif isinstance(record, bool):
        pass
    elif isinstance(record, int | float):
        found[prefix.rstrip(".")] = float(record)
    return found


def rounds_table(records: list[dict[str, Any]]) -> list[str]:
    """min / median / max of every figure the rounds of one benchmark saved, one line each."""
    leaves = [numeric_leaves(r) for r in records]
    keys = [k for k in leaves[0] if all(k in leaf for leaf in leaves[1:])]
    width = max((len(k) for k in keys), default=10)
    lines = [f"{'figure':<{width}} {'min':>12} {'median':>12} {'max':>12}"]
    for key in keys:
        s = spread([leaf[key] for leaf in leaves])
        lines.append(f"{key:<{width}} {s['min']:>12.4g} {s['median']:>12.4g} {s['max']:>12.4g}")
    return lines


def save(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    record = {"benchmark": name, "machine": dict(_before) or machine(), "machine_after": machine(), **figures}
    path.write_text(json.dumps(record, indent=2, default=str))
    return path


@dataclass
class Servers:
    database_url: str
    redis_url: str


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    """External servers from B2X_BENCH_DATABASE_URL / B2X_BENCH_REDIS_URL, else embedded ones in a temp dir."""
    external_db = os.environ.get("B2X_BENCH_DATABASE_URL")
    external_redis = os.environ.get("B2X_BENCH_REDIS_URL")
    with tempfile.TemporaryDirectory(prefix="b2x-bench-") as tmp:
        pg = None if external_db else EmbeddedPostgres.start(Path(tmp) / "pg" / "data")
        redis = None if external_redis else EmbeddedRedis.start(Path(tmp) / "redis", persist=False)
        try:
            database_url = external_db or pg.ensure_database("bench")  # type: ignore[union-attr]
            yield Servers(database_url, external_redis or redis.url())  # type: ignore[union-attr]
        finally:
            if redis:
                redis.stop()
            if pg:
                pg.stop()


class Process:
    """A stack process (`python -m module`) with its own ports, watched with psutil for CPU time."""

    def __init__(self, module: str, env: dict[str, str], ready_port: int, cwd: Path | None = None) -> None:
        """`cwd`: run it from there (`python -m` imports the working directory's code first)."""
        self.module = module
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{module} exited: {self.proc.stderr.read().decode()[-500:] if self.proc.stderr else ''}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", ready_port), timeout=0.2):
                break
            time.sleep(0.1)
        self.ps = psutil.Process(self.proc.pid)

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def stack_env(servers: Servers, **extra: str) -> tuple[dict[str, str], dict[str, int]]:
    ports = {name: free_port() for name in ("jobs", "health", "probes", "gateway")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("B2X_")}
    env.update(
        {
            "B2X_DATABASE_URL": servers.database_url, "B2X_REDIS_URL": servers.redis_url,
            "B2X_JOBS_PORT": str(ports["jobs"]), "B2X_HEALTH_PORT": str(ports["health"]),
            "B2X_PROBES_PORT": str(ports["probes"]), "B2X_GATEWAY_PORT": str(ports["gateway"]),
            "B2X_JOBS_ADDR": f"127.0.0.1:{ports['jobs']}", "B2X_HEALTH_ADDR": f"127.0.0.1:{ports['health']}",
            "B2X_PROBES_ADDR": f"127.0.0.1:{ports['probes']}", "B2X_JOBS_METRICS_PORT": "0",
            "B2X_HEALTH_METRICS_PORT": "0", "B2X_PROBES_METRICS_PORT": "0", "B2X_LOG_LEVEL": "WARNING",
            "B2X_RATE_LIMIT_PER_MINUTE": "0",
        }
    )  # fmt: skip
    env.update(extra)
    return env, ports


def print_table(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    for what, value, budget in rows:
        print(f"  {what:<{width}}  {value:>14}   {budget}")


async def admin_key(database_url: str) -> str:
    """An admin API key in the gateway's schema (the gateway must have migrated it)."""
    import asyncpg  # noqa: PLC0415

    from gateway.auth import KeyStore, Role  # noqa: PLC0415

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        key, _ = await KeyStore(pool).create("bench", Role.ADMIN)
    finally:
        await pool.close()
    return key
