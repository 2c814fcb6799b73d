"""Prometheus metrics shared by every process: the HTTP endpoint, gRPC request metrics, label bounds and
snapshot collectors.

Each service defines its own domain metrics next to its code (`services/jobs/metrics.py`,
`services/health/metrics.py`, `services/probes/metrics.py`, `gateway/metrics.py`), so a process
exposes only the metrics it really updates. The catalogue of every metric, its labels and where it is
updated is in README.md ("Operating B2X") and docs/adr/0015.

Two rules keep scrapes cheap and series bounded:
- **State that lives in PostgreSQL** (jobs by status, a service's status, the latest resource figures)
  is read by a `Snapshot`: one small query every `interval` seconds on the service's event loop, swapped
  in atomically, so a scrape never touches the database and hot paths count nothing.
- **Labels never carry ids.** Values a caller chooses (job types, tenants, error categories) go through
  `BoundedLabel`, which lets the first N distinct values through and reports the rest as `other`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.common.errors import StartupError
from services.common.logging import get_logger
from services.common.tasks import stop_tasks

log = get_logger(__name__)
# No `*_created` series beside every counter and histogram: Prometheus does not need them (it detects
# resets itself) and they double the size of every scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]

OTHER = "other"
# Request latencies, 1 ms to 10 s: shared by gRPC (server and client) and HTTP histograms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

GRPC_REQUESTS = Counter("b2x_grpc_requests_total", "gRPC requests handled", ["service", "method", "code"])
GRPC_LATENCY = Histogram(
    "b2x_grpc_request_duration_seconds",
    "gRPC request latency",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
BUILD_INFO = Gauge(
    "b2x_build_info", "Always 1; the version and process of this B2X component", ["component", "version"]
)
SNAPSHOT_TIMESTAMP = Gauge(
    "b2x_metrics_snapshot_timestamp_seconds",
    "When a snapshot of state read from PostgreSQL was last refreshed (Unix time)",
    ["snapshot"],
)
SNAPSHOT_DURATION = Gauge(
    "b2x_metrics_snapshot_duration_seconds", "How long the last refresh of a snapshot took", ["snapshot"]
)
SNAPSHOT_FAILURES = Counter(
    "b2x_metrics_snapshot_failures_total", "Snapshot refreshes that failed (the previous figures stay)", ["snapshot"]
)


def version() -> str:
    try:
        return metadata.version("b2x-monitoring")
    except metadata.PackageNotFoundError:
        return "unknown"


def announce(component: str) -> None:
    """Set `b2x_build_info` for this process (jobs, health, probes, gateway)."""
    BUILD_INFO.labels(component, version()).set(1)


def start_metrics_server(port: int, host: str) -> None:
    """Serve /metrics on `host:port` (the service's own listen address) from a daemon thread; 0 leaves it off
    (tests, embedded replicas)."""
    if port == 0:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as error:
        raise StartupError(f"cannot serve metrics on {host}:{port}: {error.strerror or error}") from None
    log.info("metrics endpoint listening", host=host, port=port)


class BoundedLabel:
    """Keeps a label's cardinality bounded: the first `limit` distinct values pass, later ones become `other`.

    For values callers choose (job types, tenants, error categories). Never use ids as labels at all.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if value in self._seen or len(self._seen) < self._limit:
                self._seen.add(value)
                return value
        return OTHER


@dataclass(frozen=True)
class GaugeSpec:
    """A gauge family a snapshot fills: name, help and label names (fixed at import)."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()


Samples = dict[str, list[tuple[tuple[str, ...], float]]]
"""Figures of one refresh: gauge name → [(label values, value)]."""


@dataclass(eq=False)
class Snapshot(Collector):
    """Gauges read from PostgreSQL every `interval` seconds and served from memory.

    `read` runs on the service's event loop (it may use the pool); the result replaces the previous one
    in one assignment, so the metrics thread always sees a whole refresh. If `read` fails, the previous
    figures stay and `b2x_metrics_snapshot_failures_total` counts it; the timestamp gauge shows staleness.
    Registered once per process at import; the latest started refresher feeds it (tests start several).
    """

    name: str
    specs: Sequence[GaugeSpec]
    _samples: Samples = field(default_factory=dict)

    def __post_init__(self) -> None:
        REGISTRY.register(self)

    def describe(self) -> Iterator[Metric]:
        for spec in self.specs:
            yield GaugeMetricFamily(spec.name, spec.documentation, labels=spec.labels)

    def collect(self) -> Iterator[Metric]:
        samples = self._samples
        for spec in self.specs:
            family = GaugeMetricFamily(spec.name, spec.documentation, labels=spec.labels)
            for labels, value in samples.get(spec.name, ()):
                family.add_metric(list(labels), value)
            yield family

    def publish(self, samples: Samples) -> None:
        unknown = set(samples) - {s.name for s in self.specs}
        if unknown:
            raise ValueError(f"snapshot {self.name} has no gauges {sorted(unknown)}")
        self._samples = samples

    def values(self, gauge: str) -> dict[tuple[str, ...], float]:
        """The current figures of one gauge (tests, and the CLI's diagnostics)."""
        return dict(self._samples.get(gauge, ()))


class SnapshotRefresher:
    """Runs `read` every `interval` seconds and publishes the result into `snapshot`."""

    def __init__(self, snapshot: Snapshot, read: Callable[[], Awaitable[Samples]], interval: float = 15.0) -> None:
        self._snapshot = snapshot
        self._read = read
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> bool:
        started = time.perf_counter()
        try:
            samples = await self._read()
        except Exception as error:
            SNAPSHOT_FAILURES.labels(self._snapshot.name).inc()
            log.warning("metrics snapshot not refreshed", snapshot=self._snapshot.name, error=str(error))
            return False
        self._snapshot.publish(samples)
        SNAPSHOT_DURATION.labels(self._snapshot.name).set(time.perf_counter() - started)
        SNAPSHOT_TIMESTAMP.labels(self._snapshot.name).set(time.time())
        return True

    async def _loop(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self._interval)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"metrics-snapshot-{self._snapshot.name}")

    async def stop(self) -> None:
        await stop_tasks([self._task])
        self._task = None


def one_hot(labels: tuple[str, ...], current: str, states: Iterable[str]) -> list[tuple[tuple[str, ...], float]]:
    """One series per state, 1 for the current one and 0 for the others (`b2x_service_status` style)."""
    return [((*labels, state.lower()), 1.0 if state == current else 0.0) for state in states]


def seconds_since_epoch(value: object) -> float | None:
    """A datetime as Unix seconds; None stays None."""
    timestamp = getattr(value, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else None
