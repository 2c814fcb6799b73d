"""The probes service's metrics: checks, phases and errors as they are recorded; state from its tables."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from prometheus_client import REGISTRY

from services.probes.agent.breaker import BreakerSnapshot
from services.probes.agent.records import CheckRecord
from services.probes.agent.resources.samplers import PrometheusSampler
from services.probes.domain import CommunicationError, ErrorDetails, ErrorType, Timing
from services.probes.metrics import ProbesSnapshotReader, record_check, record_erp_figures, record_errors
from services.probes.probing.classify import make
from tests.probes.servers import HttpTestServer, Route
from tests.support import ServiceHarness

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def check(slug: str, **fields: object) -> CheckRecord:
    values: dict[str, object] = {
        "service_id": str(uuid.uuid4()), "slug": slug, "slot": 1, "agent_id": "a1", "checked_at": NOW,
        "success": True, "summary": "ok", "total_ms": 120.0, "interval_seconds": 30, "breaker": BreakerSnapshot(),
    }  # fmt: skip
    values.update(fields)
    return CheckRecord(**values)  # type: ignore[arg-type]


def test_a_check_counts_its_outcome_and_observes_the_phases_it_went_through() -> None:
    """An HTTPS check observes dns, tcp, tls, first byte, download and total; a TCP-only check only what
    happened; a skipped one (breaker open) counts but observes nothing."""
    before = {
        "ok": value("b2x_probe_checks_total", service="m-erp", outcome="success"),
        "degraded": value("b2x_probe_checks_total", service="m-erp", outcome="degraded"),
        "skipped": value("b2x_probe_checks_total", service="m-erp", outcome="skipped"),
        "tls": value("b2x_probe_phase_duration_seconds_count", service="m-erp", phase="tls_handshake"),
        "total": value("b2x_probe_phase_duration_seconds_sum", service="m-erp", phase="total"),
    }
    timing = Timing(dns_ms=2, tcp_ms=3, tls_ms=10, ttfb_ms=80, download_ms=5, total_ms=100)
    record_check(check("m-erp", timing=timing))
    record_check(check("m-erp", degraded=True, timing=Timing(tcp_ms=4, total_ms=4), total_ms=4.0))
    record_check(check("m-erp", skipped=True, success=False, total_ms=0.0))
    assert value("b2x_probe_checks_total", service="m-erp", outcome="success") == before["ok"] + 1
    assert value("b2x_probe_checks_total", service="m-erp", outcome="degraded") == before["degraded"] + 1
    assert value("b2x_probe_checks_total", service="m-erp", outcome="skipped") == before["skipped"] + 1
    assert value("b2x_probe_phase_duration_seconds_count", service="m-erp", phase="tls_handshake") == before["tls"] + 1
    assert value("b2x_probe_phase_duration_seconds_sum", service="m-erp", phase="total") == before["total"] + 0.124


def test_errors_are_counted_by_service_type_and_group_and_erp_figures_pass_through() -> None:
    """Recorded communication errors count by their REQ-001 type and group; the enventa figures an ERP
    reports become gauges labelled with its slug, unknown names are ignored."""
    before = value("b2x_communication_errors_total", service="m-crm", error_type="READ_TIMEOUT", error_group="TIMEOUT")
    timeout = make(ErrorType.READ_TIMEOUT, "READ_TIMEOUT", "no answer within 10 s")
    record_errors(
        [CommunicationError(str(uuid.uuid4()), "id", "m-crm", NOW, timeout, ErrorDetails(correlation_id="c"))] * 2
    )
    assert (
        value("b2x_communication_errors_total", service="m-crm", error_type="READ_TIMEOUT", error_group="TIMEOUT")
        == before + 2
    )

    record_erp_figures("m-erp", {"erp_actor_queue_depth": 17, "erp_connection_status": 1, "b2x_queue_depth": 3})
    assert value("erp_actor_queue_depth", service="m-erp") == 17
    assert value("erp_connection_status", service="m-erp") == 1
    assert REGISTRY.get_sample_value("b2x_queue_depth", {"service": "m-erp"}) is None


async def test_the_snapshot_reads_breakers_resources_and_open_alerts(harness: ServiceHarness) -> None:
    """From the latest-state tables: one series per breaker state, the resource figures of a sample that
    worked (not of one that failed), and every alert type per sampled service with 1 for the open ones."""
    pool = (await harness.resources("probes")).pool
    await pool.execute(
        "INSERT INTO probes.service_latest (service_id, service_slug, checked_at, success, degraded, summary,"
        " total_latency_ms, consecutive_failures, breaker_state, last_success_at, agent_id, interval_seconds)"
        " VALUES ('s1', 'crm', $1, false, false, 'down', 0, 6, 'OPEN', $1, 'a1', 30)",
        NOW,
    )
    columns = (
        "service_id, service_slug, sampled_at, cpu_percent, cpu_average, cpu_peak, memory_used_bytes,"
        " memory_total_bytes, memory_percent, memory_peak_bytes, pool_active, pool_total, threads, queue_depth,"
        " processing_rate, source, sample_error, thresholds, interval_seconds, agent_id"
    )
    await pool.execute(
        f"INSERT INTO probes.resource_latest ({columns}) VALUES"
        " ('s1', 'crm', $1, 91.5, 80, 99, 700, 1000, 70, 800, 9, 10, 42, 250, 30.5, 'prometheus', '', '{}', 5, 'a1'),"
        " ('s2', 'pim', $1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'process', 'no process named pim', '{}', 5, 'a1')",
        NOW,
    )
    await pool.execute(
        "INSERT INTO probes.resource_alerts (id, service_id, service_slug, alert_type, threshold_value, actual_value,"
        " triggered_at, message) VALUES ($1, 's1', 'crm', 'CPU_HIGH', 80, 91.5, $2, 'cpu')",
        uuid.uuid4(),
        NOW,
    )
    samples = await ProbesSnapshotReader(pool)()
    assert dict(samples["b2x_probe_breaker_state"]) == {
        ("crm", "closed"): 0,
        ("crm", "open"): 1,
        ("crm", "half_open"): 0,
    }
    assert dict(samples["b2x_probe_consecutive_failures"]) == {("crm",): 6}
    assert dict(samples["b2x_resource_cpu_percent"]) == {("crm",): 91.5}
    assert dict(samples["b2x_resource_pool_size"]) == {("crm",): 10}
    assert dict(samples["b2x_resource_sample_timestamp_seconds"]) == {("crm",): NOW.timestamp()}
    alerts = dict(samples["b2x_resource_alerts_open"])
    assert alerts[("crm", "cpu_high")] == 1 and alerts[("crm", "memory_critical")] == 0 and len(alerts) == 6


async def test_the_resource_sampler_passes_the_erp_figures_of_a_metrics_endpoint_through() -> None:
    """A real HTTP metrics endpoint exposing enventa's figures: sampling it sets erp_* for the service's slug."""
    body = (
        b"# TYPE erp_actor_queue_depth gauge\nerp_actor_queue_depth 240\n"
        b"# TYPE erp_session_count gauge\nerp_session_count 12\n"
        b"# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1048576\n"
    )
    routes = {"/metrics": Route(200, body=body, content_type="text/plain; version=0.0.4")}
    async with HttpTestServer(routes) as web, httpx.AsyncClient() as client:
        sample = await PrometheusSampler(web.url("/metrics"), {}, client, 5.0, "m-erp-sampled").sample()
    assert sample.memory_used_bytes == 1048576
    assert value("erp_actor_queue_depth", service="m-erp-sampled") == 240
    assert value("erp_session_count", service="m-erp-sampled") == 12
