"""Where resource figures come from: a process tree or the host (psutil), or a Prometheus endpoint.

Which one a target uses, first match wins: `metrics_url` (any agent may scrape it), `process_name`
`@host` (the agent's own machine) or `@host:NAME` (only the agent on host NAME), then `process_pid`
or `process_name` (only an agent on the host where that process runs). A process is sampled with its
children, so a server that forks workers (PostgreSQL, gunicorn) counts whole.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

import httpx
import psutil

from services.common.masking import sanitize_url
from services.probes.agent.resources.model import ResourceSample
from services.probes.agent.resources.promtext import MetricNames, parse
from services.probes.domain import HOST_PROCESS, ResourceSource, Target
from services.probes.metrics import ERP_FIGURES, record_erp_figures
from services.probes.probing.evidence import Redactor
from services.probes.probing.faults import MissingVariable
from services.probes.probing.placeholders import expand


class SampleError(Exception):
    """A sample could not be taken; the message is safe to store and show."""


class Placement(StrEnum):
    SHARED = "shared"  # any agent
    LOCAL = "local"  # only an agent on the right host


class Sampler(Protocol):
    source: str

    async def sample(self) -> ResourceSample: ...


def _now() -> datetime:
    return datetime.now(UTC)


def placement(resources: ResourceSource, hostname: str, local_names: frozenset[str]) -> Placement | None:
    """Whether this agent (on `hostname`, seeing processes `local_names`) may sample the target."""
    if resources.metrics_url or resources.process_name == HOST_PROCESS:
        return Placement.SHARED
    if resources.process_name.startswith(HOST_PROCESS + ":"):
        wanted = resources.process_name.split(":", 1)[1]
        return Placement.LOCAL if wanted.lower() == hostname.lower() else None
    if resources.process_pid:
        return Placement.LOCAL if psutil.pid_exists(resources.process_pid) else None
    if resources.process_name:
        return Placement.LOCAL if resources.process_name in local_names else None
    return None


def local_process_names() -> frozenset[str]:
    return frozenset(p.info["name"] for p in psutil.process_iter(["name"]) if p.info.get("name"))


class ProcessSampler:
    """CPU, memory and threads of a process and its children."""

    def __init__(self, name: str = "", pid: int = 0) -> None:
        self._name = name
        self._pid = pid
        self._root: psutil.Process | None = None
        self._known: dict[int, psutil.Process] = {}
        self._cpus = psutil.cpu_count() or 1
        self.source = f"process {name} (pid {pid})" if name and pid else f"process {name or f'pid {pid}'}"

    async def sample(self) -> ResourceSample:
        return await asyncio.to_thread(self._read)

    def _find_root(self) -> psutil.Process:
        if self._pid:
            try:
                return psutil.Process(self._pid)
            except psutil.NoSuchProcess:
                raise SampleError(f"no process with pid {self._pid} on this host") from None
        matches = [p for p in psutil.process_iter(["name", "ppid", "create_time"]) if p.info["name"] == self._name]
        if not matches:
            raise SampleError(f"no process named {self._name!r} on this host")
        pids = {p.pid for p in matches}
        roots = [p for p in matches if p.info["ppid"] not in pids]
        root = min(roots or matches, key=lambda p: p.info["create_time"])
        self.source = f"process {self._name} (pid {root.pid})"
        return root

    def _read(self) -> ResourceSample:
        if self._root is None or not self._root.is_running():
            self._root, self._known = self._find_root(), {}
        try:
            tree = [self._root, *self._root.children(recursive=True)]
        except psutil.NoSuchProcess:
            self._root = None
            raise SampleError("the sampled process exited") from None
        first = not self._known
        cpu, rss, threads, known = 0.0, 0, 0, {}
        for found in tree:
            process = self._known.get(found.pid, found)
            try:
                with process.oneshot():
                    cpu += process.cpu_percent(None)
                    rss += process.memory_info().rss
                    threads += process.num_threads()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            known[found.pid] = process
        self._known = known
        return ResourceSample(
            sampled_at=_now(),
            # psutil's first reading has nothing to compare with.
            cpu_percent=None if first else cpu / self._cpus,
            memory_used_bytes=rss,
            memory_total_bytes=psutil.virtual_memory().total,
            threads=threads,
        )


class HostSampler:
    """CPU and memory of the machine the agent runs on."""

    def __init__(self) -> None:
        self._previous: tuple[float, float] | None = None
        self.source = f"host {socket.gethostname()}"

    async def sample(self) -> ResourceSample:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        total = sum(times)
        cpu = None
        if self._previous is not None and total > self._previous[1]:
            cpu = max(0.0, 100.0 * (1 - (idle - self._previous[0]) / (total - self._previous[1])))
        self._previous = (idle, total)
        memory = psutil.virtual_memory()
        return ResourceSample(
            sampled_at=_now(),
            cpu_percent=cpu,
            memory_used_bytes=memory.total - memory.available,
            memory_total_bytes=memory.total,
        )


@dataclass
class _Counter:
    at: float
    value: float


ERP_NAMES = frozenset(ERP_FIGURES)


class PrometheusSampler:
    """Scrapes a Prometheus text endpoint; CPU and processing rate come from counters between scrapes."""

    def __init__(
        self, url: str, environ: Mapping[str, str], client: httpx.AsyncClient, timeout: float, service: str = ""
    ) -> None:
        """`service`: the slug the enventa figures (REQ-001 erp_*) found at the URL are exposed under."""
        self._template = url
        self._service = service
        self._environ = environ
        self._client = client
        self._timeout = timeout
        base, self._names = MetricNames.from_url(url)
        self.source = f"prometheus {sanitize_url(base)}"
        self._cpu: _Counter | None = None
        self._processed: _Counter | None = None

    async def sample(self) -> ResourceSample:
        try:
            expanded = expand(self._template, (), self._environ)
        except MissingVariable as error:
            raise SampleError(str(error)) from None
        redactor = Redactor(expanded.secrets)
        url = expanded.endpoint.partition("#")[0]
        try:
            response = await self._client.get(url, timeout=self._timeout)
        except httpx.HTTPError as error:
            reason = str(error) or type(error).__name__
            raise SampleError(redactor.text(f"metrics endpoint unreachable: {reason}", 300)) from None
        if response.status_code != 200:
            raise SampleError(f"metrics endpoint answered HTTP {response.status_code}")
        parsed = parse(response.text, self._names.wanted | ERP_NAMES)
        values = self._names.pick(parsed)
        if self._service:
            record_erp_figures(self._service, {name: parsed[name] for name in ERP_NAMES if name in parsed})
        now = time.monotonic()
        cores = values.get("cpu_cores") or 1.0
        cpu = self._rate("cpu_seconds", values, now)
        processed = self._rate("queue_processed", values, now)

        def whole(name: str) -> int | None:
            return int(values[name]) if name in values else None

        return ResourceSample(
            sampled_at=_now(),
            cpu_percent=None if cpu is None else cpu * 100 / cores,
            memory_used_bytes=whole("memory_used"),
            memory_total_bytes=whole("memory_total"),
            pool_active=whole("pool_active"),
            pool_total=whole("pool_total"),
            threads=whole("threads"),
            queue_depth=whole("queue_depth"),
            processing_rate=None if processed is None else processed * 60,
        )

    def _rate(self, name: str, values: Mapping[str, float], now: float) -> float | None:
        """Per-second increase since the previous scrape; None on the first one or after a counter reset."""
        if name not in values:
            return None
        attribute = "_cpu" if name == "cpu_seconds" else "_processed"
        previous: _Counter | None = getattr(self, attribute)
        setattr(self, attribute, _Counter(now, values[name]))
        if previous is None or now <= previous.at or values[name] < previous.value:
            return None
        return (values[name] - previous.value) / (now - previous.at)


def sampler_for(target: Target, environ: Mapping[str, str], client: httpx.AsyncClient, timeout: float) -> Sampler:
    resources = target.resources
    if resources.metrics_url:
        return PrometheusSampler(resources.metrics_url, environ, client, timeout, target.slug)
    if resources.process_name == HOST_PROCESS or resources.process_name.startswith(HOST_PROCESS + ":"):
        return HostSampler()
    return ProcessSampler(resources.process_name, resources.process_pid)
