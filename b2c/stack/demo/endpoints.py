"""Simulated ERP, PIM and CRM systems for `b2c up --demo`: `python -m b2c.stack.demo.endpoints`.

Each system listens on its own port (B2X_DEMO_ERP_PORT / _PIM_ / _CRM_, default 18081-18083) with

    GET /api/health   the endpoint the probes check; wants `Authorization: Bearer demo-<slug>-token`
    GET /api/<name>   a page of records (`?page=N`) for the demo worker's jobs, with the same faults
    GET /metrics      Prometheus text: process CPU and memory, pool, threads, queue (what the probes'
                      agent/resources/promtext.py reads)

and faults that follow the wall clock, so the dashboard shows them live and pattern analysis finds them:

    ERP  slow first byte (1-3 s) in minutes 0-2, 15-17, 30-32, 45-47 of every hour; during its daily
         backup window 14:00-16:00 (local time) a third of the requests never get an answer
    PIM  503 Service Unavailable (Retry-After) in minutes 10-11, 30-31 and 50-51; slow now and then
    CRM  expired tokens (401, WWW-Authenticate error="invalid_token", error_description="token expired")
         in minutes 20-22 of every hour and for 5 % of requests otherwise; always somewhat slow; CPU,
         memory, pool and queue above the default thresholds most of the time, so resource alerts fire

All three systems are served by one uvicorn server over three sockets; the ASGI app picks the system by
the port a request arrived on. SIGTERM stops it like every other part of the stack.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from b2c.stack.demo.systems import SYSTEMS, DemoSystem
from b2c.stack.settings import StackPorts

GB = 1024**3
HANG_SECONDS = 120.0
COUNTERS = frozenset({"process_cpu_seconds_total", "b2x_queue_processed_total"})


class Fault(StrEnum):
    NONE = "none"
    SLOW = "slow"
    HANG = "hang"
    UNAVAILABLE = "unavailable"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a fault, not a secret


@dataclass(frozen=True)
class Behaviour:
    """How a simulated system answers and what its metrics look like."""

    version: str
    latency: tuple[float, float]  # seconds of ordinary first-byte delay
    cpu: tuple[float, float]  # base %, swing %
    memory_total: int
    memory: tuple[float, float]  # base %, swing %
    pool: tuple[int, int]  # total, typical active
    queue: tuple[int, int]  # base, swing
    threads: int
    cores: int = 4
    fault: Callable[[datetime, float], Fault] = field(default=lambda now, roll: Fault.NONE)


def erp_fault(now: datetime, roll: float) -> Fault:
    if 14 <= now.hour < 16 and roll < 0.33:
        return Fault.HANG
    if now.minute % 15 < 3:
        return Fault.SLOW
    return Fault.HANG if roll > 0.99 else Fault.NONE


def pim_fault(now: datetime, roll: float) -> Fault:
    if now.minute % 20 in (10, 11):
        return Fault.UNAVAILABLE
    if roll > 0.97:
        return Fault.SLOW
    return Fault.HANG if roll < 0.005 else Fault.NONE


def crm_fault(now: datetime, roll: float) -> Fault:
    if 20 <= now.minute < 23 or roll < 0.05:
        return Fault.TOKEN_EXPIRED
    if roll > 0.97:
        return Fault.HANG
    return Fault.SLOW if roll > 0.85 else Fault.NONE


BEHAVIOURS: dict[str, Behaviour] = {
    "erp": Behaviour("enventa Trade 2025.2", (0.02, 0.08), (42, 18), 4 * GB, (66, 6), (10, 6), (40, 160), 48,
                     fault=erp_fault),
    "pim": Behaviour("PIM 7.4", (0.05, 0.15), (22, 10), 8 * GB, (50, 4), (20, 5), (5, 30), 24, fault=pim_fault),
    "crm": Behaviour("CRM Cloud 12", (0.3, 0.9), (86, 9), 4 * GB, (92, 4), (10, 10), (900, 700), 96, cores=2,
                     fault=crm_fault),
}  # fmt: skip


def wave(t: float, period: float, phase: float = 0.0) -> float:
    """-1..1, smooth, so figures drift instead of jumping."""
    return math.sin(2 * math.pi * (t / period + phase))


class SimulatedSystem:
    """One system's answers and its moving metrics; counters are integrated between scrapes."""

    def __init__(self, system: DemoSystem, behaviour: Behaviour, rng: random.Random) -> None:
        self.system = system
        self.behaviour = behaviour
        self._rng = rng
        self._clock = time.time
        self._last = self._clock()
        self._cpu_seconds = 1000.0 * rng.random()
        self._processed = 0.0

    def _cpu_percent(self, t: float) -> float:
        base, swing = self.behaviour.cpu
        value = base + swing * (0.7 * wave(t, 900) + 0.3 * wave(t, 97, 0.3)) + self._rng.uniform(-3, 3)
        return max(1.0, min(99.5, value))

    def figures(self) -> dict[str, float]:
        b = self.behaviour
        now = self._clock()
        elapsed, self._last = max(0.0, now - self._last), now
        cpu = self._cpu_percent(now)
        self._cpu_seconds += cpu / 100 * b.cores * elapsed
        memory = max(5.0, min(99.0, b.memory[0] + b.memory[1] * wave(now, 1800, 0.1) + self._rng.uniform(-1, 1)))
        pool_total, typical = b.pool
        active = max(0, min(pool_total, round(typical + wave(now, 300, 0.2) + self._rng.uniform(-0.4, 0.4))))
        queue = max(0, round(b.queue[0] + b.queue[1] * wave(now, 1200, 0.5) + self._rng.uniform(-20, 20)))
        self._processed += elapsed * (30 + 20 * wave(now, 600))
        enventa = {}
        if self.system.type == "ERP":
            # REQ-001 @Enventa figures: the single-threaded Actor's mailbox follows the work queue.
            enventa = {
                "erp_actor_queue_depth": max(0, round(queue / 4 + self._rng.uniform(-5, 5))),
                "erp_actor_processing_time_ms": round(
                    max(5.0, 40 + 25 * wave(now, 600, 0.4) + self._rng.uniform(-5, 5)), 1
                ),
                "erp_connection_status": 1,
                "erp_session_count": max(1, round(typical * 1.5 + wave(now, 300))),
            }
        return enventa | {
            "process_cpu_seconds_total": round(self._cpu_seconds, 3),
            "b2x_cpu_cores": b.cores,
            "process_resident_memory_bytes": int(b.memory_total * memory / 100),
            "b2x_memory_total_bytes": b.memory_total,
            "b2x_pool_active": active,
            "b2x_pool_total": pool_total,
            "b2x_threads": b.threads + round(4 * wave(now, 450)),
            "b2x_queue_depth": queue,
            "b2x_queue_processed_total": round(self._processed),
        }

    async def metrics(self, _: Request) -> Response:
        lines = []
        for name, value in self.figures().items():
            kind = "counter" if name in COUNTERS else "gauge"
            labels = f'{{system="{self.system.slug}"}}' if name.startswith("b2x_pool") else ""
            lines += [f"# TYPE {name} {kind}", f"{name}{labels} {value}"]
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    async def health(self, request: Request) -> Response:
        return await self._answer(
            request,
            {"status": "UP", "system": self.system.name, "version": self.behaviour.version, "checks": {"db": "UP"}},
        )

    async def data(self, request: Request) -> Response:
        """What the demo worker's jobs read (`/api/articles?page=1`...): a page of records, with the same faults."""
        resource = request.path_params["resource"]
        raw = request.query_params.get("page", "1")
        page = int(raw) if raw.isdigit() else 1
        items = [{"id": f"{resource[:3].upper()}-{page * 100 + n}"} for n in range(1, 6)]
        return await self._answer(request, {"resource": resource, "page": page, "items": items})

    async def _answer(self, request: Request, body: dict[str, Any]) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.system.token}":
            return self._unauthorized("invalid_token", "the access token is missing or not valid")
        fault = self.behaviour.fault(datetime.now().astimezone(), self._rng.random())
        low, high = self.behaviour.latency
        delay = self._rng.uniform(low, high)
        if fault is Fault.HANG:
            await asyncio.sleep(HANG_SECONDS)
        elif fault is Fault.SLOW:
            delay += self._rng.uniform(1.0, 3.0)
        await asyncio.sleep(delay)
        if fault is Fault.TOKEN_EXPIRED:
            return self._unauthorized("invalid_token", "token expired")
        if fault is Fault.UNAVAILABLE:
            return JSONResponse(
                {"status": "DOWN", "error": "maintenance: index rebuild in progress"},
                status_code=503,
                headers={"Retry-After": "30"},
            )
        return JSONResponse(body)

    def _unauthorized(self, error: str, description: str) -> Response:
        challenge = f'Bearer realm="{self.system.slug}", error="{error}", error_description="{description}"'
        return JSONResponse(
            {"error": error, "error_description": description}, status_code=401, headers={"WWW-Authenticate": challenge}
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/health", self.health),
                Route("/metrics", self.metrics),
                Route("/api/{resource:str}", self.data),
            ]
        )


class ByPort:
    """The ASGI app of the one server: each request goes to the system listening on its port."""

    def __init__(self, apps: dict[int, Starlette]) -> None:
        self._apps = apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server: Any = scope.get("server") or (None, None)
        app = self._apps.get(server[1])
        if app is None:
            if scope["type"] == "http":
                await PlainTextResponse("no demo system on this port", status_code=404)(scope, receive, send)
            return
        await app(scope, receive, send)


def build(ports: StackPorts, seed: int | None = None) -> tuple[ByPort, list[tuple[DemoSystem, int]]]:
    rng = random.Random(seed)  # noqa: S311 - simulated faults, not security
    apps: dict[int, Starlette] = {}
    systems = []
    for system in SYSTEMS:
        port = ports.demo[system.slug]
        apps[port] = SimulatedSystem(system, BEHAVIOURS[system.slug], rng).app()
        systems.append((system, port))
    return ByPort(apps), systems


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SystemExit(f"b2x-demo-endpoints: cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def main() -> None:
    import uvicorn  # noqa: PLC0415 - only the process itself needs the server

    ports = StackPorts.from_env()
    app, systems = build(ports)
    host = ports.local_host
    sockets = [_listen(host, port) for _, port in systems]
    for system, port in systems:
        print(f"{system.name:<20} http://{host}:{port}/api/health  metrics http://{host}:{port}/metrics", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=sockets)


if __name__ == "__main__":
    main()
