"""Domain metrics of the probes service (served on B2X_PROBES_METRICS_PORT).

- Counted where they happen, once per periodic check or recorded error (at most one per target and
  interval, so a few dozen per second with 1000 targets): `b2x_probe_checks_total` and
  `b2x_probe_phase_duration_seconds` (`record_check`, from the agent's recorder), and
  `b2x_communication_errors_total` (`record_errors`, wherever errors are stored: periodic checks and
  connection tests).
- Read from PostgreSQL by `PROBES_SNAPSHOT` every `B2X_METRICS_SNAPSHOT_SECONDS`: each service's circuit
  breaker and last check (`probes.service_latest`), its latest resource figures
  (`probes.resource_latest`) and its open resource alerts (`probes.resource_alerts`). Every agent
  reads the same rows: aggregate with `max`.
- The enventa figures of REQ-001 (`erp_actor_queue_depth`, `erp_actor_processing_time_ms`,
  `erp_connection_status`, `erp_session_count`) are passed through from a service's own metrics
  endpoint (`resources.metrics_url`) by the resource sampler, labelled with the service's slug
  (`record_erp_figures`).

Service slugs, phases, error types and groups, alert types and breaker states are bounded by the
registry and the seed's enums; no id is ever a label.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from services.common.metrics import GaugeSpec, Samples, Snapshot, one_hot, seconds_since_epoch
from services.probes.agent.records import CheckRecord
from services.probes.domain import CommunicationError

PROBE_CHECKS = Counter(
    "b2x_probe_checks_total",
    "Periodic checks by outcome: success, degraded (answered but slow or unexpected), failure, skipped "
    "(circuit breaker open)",
    ["service", "outcome"],
)
PROBE_PHASES = Histogram(
    "b2x_probe_phase_duration_seconds",
    "Duration of each network phase of periodic checks (dns, tcp_connect, tls_handshake, time_to_first_byte, "
    "content_download) and of the whole check (total)",
    ["service", "phase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
COMMUNICATION_ERRORS = Counter(
    "b2x_communication_errors_total",
    "Communication errors recorded (REQ-001 CommunicationErrorType and its group)",
    ["service", "error_type", "error_group"],
)

# REQ-001 @Enventa figures, passed through from the ERP's metrics endpoint.
ERP_FIGURES = {
    "erp_actor_queue_depth": "enventa: messages waiting in the Actor mailbox",
    "erp_actor_processing_time_ms": "enventa: time per Actor operation in milliseconds",
    "erp_connection_status": "enventa: 1 connected, 0 disconnected",
    "erp_session_count": "enventa: active ORM sessions",
}
ERP_GAUGES = {name: Gauge(name, help_text, ["service"]) for name, help_text in ERP_FIGURES.items()}

BREAKER_STATES = ("CLOSED", "OPEN", "HALF_OPEN")
ALERT_TYPES = ("CPU_HIGH", "CPU_SUSTAINED", "MEMORY_HIGH", "MEMORY_CRITICAL", "POOL_EXHAUSTED", "QUEUE_BACKLOG")

PROBES_SNAPSHOT = Snapshot(
    "probes",
    [
        GaugeSpec(
            "b2x_probe_breaker_state",
            "Circuit breaker of each service's periodic checks: 1 for its current state (closed, open, half_open)",
            ("service", "state"),
        ),
        GaugeSpec("b2x_probe_consecutive_failures", "Failed periodic checks in a row", ("service",)),
        GaugeSpec("b2x_probe_last_success_timestamp_seconds", "When a periodic check last succeeded", ("service",)),
        GaugeSpec("b2x_resource_cpu_percent", "CPU use of the service, percent of its machine", ("service",)),
        GaugeSpec("b2x_resource_memory_used_bytes", "Memory in use by the service", ("service",)),
        GaugeSpec("b2x_resource_memory_total_bytes", "Memory available to the service", ("service",)),
        GaugeSpec("b2x_resource_memory_percent", "Memory in use, percent of what is available", ("service",)),
        GaugeSpec("b2x_resource_pool_active", "Connections of the service's pool in use", ("service",)),
        GaugeSpec("b2x_resource_pool_size", "Size of the service's connection pool", ("service",)),
        GaugeSpec("b2x_resource_threads", "Threads of the service's process tree", ("service",)),
        GaugeSpec("b2x_resource_queue_depth", "Items waiting in the service's work queue", ("service",)),
        GaugeSpec("b2x_resource_processing_rate_per_minute", "Items taken off the queue per minute", ("service",)),
        GaugeSpec(
            "b2x_resource_sample_timestamp_seconds", "When the service's resources were last sampled", ("service",)
        ),
        GaugeSpec(
            "b2x_resource_alerts_open",
            "Open resource alerts (REQ-001 ResourceAlertType): 1 while the threshold stays breached",
            ("service", "alert_type"),
        ),
    ],
)


def record_check(record: CheckRecord) -> None:
    """Count one periodic check and observe its phases."""
    outcome = (
        "skipped"
        if record.skipped
        else "failure"
        if not record.success
        else "degraded"
        if record.degraded
        else "success"
    )
    PROBE_CHECKS.labels(record.slug, outcome).inc()
    if record.skipped:
        return
    timing = record.timing
    for phase, value in (
        ("dns", timing.dns_ms),
        ("tcp_connect", timing.tcp_ms),
        ("tls_handshake", timing.tls_ms),
        ("time_to_first_byte", timing.ttfb_ms),
        ("content_download", timing.download_ms),
        ("total", record.total_ms),
    ):
        if value is not None:
            PROBE_PHASES.labels(record.slug, phase).observe(value / 1000)


def record_errors(errors: Iterable[CommunicationError]) -> None:
    for error in errors:
        kind = error.classification
        COMMUNICATION_ERRORS.labels(error.service_slug, kind.error_type.value, kind.group.value).inc()


def record_erp_figures(service: str, values: Mapping[str, float]) -> None:
    """Set the enventa gauges a service's metrics endpoint reported (others are left out, not zeroed)."""
    for name, value in values.items():
        gauge = ERP_GAUGES.get(name)
        if gauge is not None:
            gauge.labels(service).set(value)


_BREAKERS = "SELECT service_slug, breaker_state, consecutive_failures, last_success_at FROM probes.service_latest"
_RESOURCES = """
SELECT service_slug, sampled_at, cpu_percent, memory_used_bytes, memory_total_bytes, memory_percent, pool_active,
       pool_total, threads, queue_depth, processing_rate
  FROM probes.resource_latest WHERE sample_error = ''
"""
_ALERTS = "SELECT DISTINCT service_slug, alert_type FROM probes.resource_alerts WHERE resolved_at IS NULL"
_RESOURCE_COLUMNS = {
    "b2x_resource_cpu_percent": "cpu_percent",
    "b2x_resource_memory_used_bytes": "memory_used_bytes",
    "b2x_resource_memory_total_bytes": "memory_total_bytes",
    "b2x_resource_memory_percent": "memory_percent",
    "b2x_resource_pool_active": "pool_active",
    "b2x_resource_pool_size": "pool_total",
    "b2x_resource_threads": "threads",
    "b2x_resource_queue_depth": "queue_depth",
    "b2x_resource_processing_rate_per_minute": "processing_rate",
}


class ProbesSnapshotReader:
    """Reads `PROBES_SNAPSHOT`'s figures from the three latest-state tables (a row per service each)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def __call__(self) -> Samples:
        async with self._pool.acquire() as conn:
            breakers = await conn.fetch(_BREAKERS)
            resources = await conn.fetch(_RESOURCES)
            alerts = await conn.fetch(_ALERTS)
        samples: Samples = {spec.name: [] for spec in PROBES_SNAPSHOT.specs}
        for row in breakers:
            slug = row["service_slug"]
            samples["b2x_probe_breaker_state"] += one_hot((slug,), row["breaker_state"], BREAKER_STATES)
            samples["b2x_probe_consecutive_failures"].append(((slug,), float(row["consecutive_failures"])))
            if (at := seconds_since_epoch(row["last_success_at"])) is not None:
                samples["b2x_probe_last_success_timestamp_seconds"].append(((slug,), at))
        for row in resources:
            slug = row["service_slug"]
            for gauge, column in _RESOURCE_COLUMNS.items():
                samples[gauge].append(((slug,), float(row[column])))
            if (at := seconds_since_epoch(row["sampled_at"])) is not None:
                samples["b2x_resource_sample_timestamp_seconds"].append(((slug,), at))
        open_alerts = {(row["service_slug"], row["alert_type"]) for row in alerts}
        for slug in {row["service_slug"] for row in resources} | {slug for slug, _ in open_alerts}:
            for alert_type in ALERT_TYPES:
                samples["b2x_resource_alerts_open"].append(
                    ((slug, alert_type.lower()), 1.0 if (slug, alert_type) in open_alerts else 0.0)
                )
        return samples
