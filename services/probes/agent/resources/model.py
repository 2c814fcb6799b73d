"""Resource figures as the probes service sees them (REQ-001 ResourceMetrics, ResourceAlert). No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.probes.domain import Thresholds


@dataclass(frozen=True)
class ResourceSample:
    """One reading of a service's resources; None where the source does not report a figure.

    CPU is a share of the machine: psutil divides by the host's logical CPUs; a Prometheus source by
    the cores it exports (b2x_cpu_cores, machine_cpu_cores), else it is the share of one core.
    """

    sampled_at: datetime
    cpu_percent: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    pool_active: int | None = None
    pool_total: int | None = None
    threads: int | None = None
    queue_depth: int | None = None
    processing_rate: float | None = None  # items taken off the queue per minute

    @property
    def memory_percent(self) -> float | None:
        if self.memory_used_bytes is None or not self.memory_total_bytes:
            return None
        return self.memory_used_bytes * 100 / self.memory_total_bytes

    @property
    def pool_percent(self) -> float | None:
        if self.pool_active is None or not self.pool_total:
            return None
        return self.pool_active * 100 / self.pool_total


@dataclass(frozen=True)
class ResourceMetrics:
    """REQ-001 ResourceMetrics: current figures, the last hour's average and the last day's peaks."""

    timestamp: datetime
    cpu_percent: float = 0.0
    cpu_average: float = 0.0
    cpu_peak: float = 0.0
    memory_used_bytes: int = 0
    memory_total_bytes: int = 0
    memory_percent: float = 0.0
    memory_peak_bytes: int = 0
    connection_pool_active: int = 0
    connection_pool_total: int = 0
    thread_count: int = 0
    queue_depth: int = 0
    processing_rate_per_minute: float = 0.0


class AlertType(StrEnum):
    """REQ-001 ResourceAlertType."""

    CPU_HIGH = "CPU_HIGH"
    CPU_SUSTAINED = "CPU_SUSTAINED"
    MEMORY_HIGH = "MEMORY_HIGH"
    MEMORY_CRITICAL = "MEMORY_CRITICAL"
    POOL_EXHAUSTED = "POOL_EXHAUSTED"
    QUEUE_BACKLOG = "QUEUE_BACKLOG"


@dataclass
class ResourceAlert:
    """REQ-001 ResourceAlert; open while `resolved_at` is None."""

    id: str
    service_id: str
    service_slug: str
    alert_type: AlertType
    threshold_value: float
    actual_value: float
    triggered_at: datetime
    message: str
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class ServiceResources:
    """A service's resources as GetResourceMetrics returns them."""

    service_id: str
    service_slug: str
    metrics: ResourceMetrics
    thresholds: Thresholds
    source: str
    interval_seconds: float
    sample_error: str = ""
    active_alerts: list[ResourceAlert] = field(default_factory=list)
    stale: bool = False
