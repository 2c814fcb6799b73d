"""Resource figures from Prometheus text, rolling averages and peaks, and the threshold alert rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.probes.agent.resources.alerts import ThresholdEvaluator
from services.probes.agent.resources.model import AlertType, ResourceSample
from services.probes.agent.resources.promtext import MetricNames, parse
from services.probes.agent.resources.rolling import MinuteSummary, RollingFigures
from services.probes.domain import Thresholds

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
GB = 1024**3

EXPOSITION = """\
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1234.5
process_resident_memory_bytes 2.5e+09
b2x_memory_total_bytes 4294967296
b2x_pool_active{pool="erp",note="a } and \\" inside"} 6
b2x_pool_active{pool="pim"} 2
b2x_pool_total{pool="erp"} 8
b2x_pool_total{pool="pim"} 2
b2x_queue_depth 23 1700000000000
hikaricp_connections_active{pool="main"} 3
b2x_threads NaN
garbage line without a value
"""


def test_the_conventional_names_are_read_and_series_summed() -> None:
    """Pool gauges of several pools add up; label values with braces and quotes do not confuse the parser."""
    names = MetricNames()
    values = names.pick(parse(EXPOSITION, names.wanted))
    assert values == {
        "cpu_seconds": 1234.5, "memory_used": 2.5e9, "memory_total": 4 * GB, "pool_active": 8, "pool_total": 10,
        "queue_depth": 23,
    }  # fmt: skip


def test_a_metrics_url_fragment_names_the_services_own_metrics() -> None:
    """`#pool_active=hikaricp_connections_active` reads that gauge first; the fragment is not part of the URL."""
    url, names = MetricNames.from_url("http://crm:9100/metrics#pool_active=hikaricp_connections_active")
    assert url == "http://crm:9100/metrics"
    assert names.pick(parse(EXPOSITION, names.wanted))["pool_active"] == 3
    with pytest.raises(ValueError, match="unknown figure 'cpu'"):
        MetricNames.from_url("http://crm/metrics#cpu=x")


def sample(at: datetime, cpu: float | None = None, used: int | None = None, **figures: int) -> ResourceSample:
    return ResourceSample(at, cpu_percent=cpu, memory_used_bytes=used, memory_total_bytes=8 * GB if used else None,
                          **figures)  # type: ignore[arg-type]  # fmt: skip


def test_rolling_figures_average_the_last_hour_and_peak_the_last_day() -> None:
    """A seeded 30 % hour and a fresh 90 % minute: average over the last hour only, peak over the day."""
    rolling = RollingFigures()
    rolling.seed([MinuteSummary(T0 - timedelta(hours=5), 12, 12 * 95.0, 99.0, 7 * GB)])
    rolling.seed([MinuteSummary(T0 - timedelta(minutes=m), 12, 12 * 30.0, 35.0, 2 * GB) for m in range(30, 0, -1)])
    rolling.add(sample(T0, 90.0, 3 * GB))
    metrics = rolling.metrics(sample(T0, 90.0, 3 * GB))
    assert metrics.cpu_percent == 90 and metrics.cpu_peak == 99 and metrics.memory_peak_bytes == 7 * GB
    assert metrics.cpu_average == pytest.approx((30 * 12 * 30 + 90) / (30 * 12 + 1))
    rolling.add(sample(T0 + timedelta(hours=20), 10.0, GB))
    later = rolling.metrics(sample(T0 + timedelta(hours=20), 10.0, GB))
    assert later.cpu_average == 10 and later.cpu_peak == 90 and later.memory_peak_bytes == 3 * GB


def test_a_breach_opens_one_alert_until_it_clears_with_hysteresis() -> None:
    """CPU 92 % opens CPU_HIGH once; 78 % (above 80 - 5) keeps it; 74 % resolves it."""
    evaluator = ThresholdEvaluator("id", "crm")
    limits = Thresholds(cpu_sustained_seconds=0)
    opened = evaluator.evaluate(sample(T0, 92.0), limits)
    assert [(a.alert_type, a.actual_value, a.resolved_at) for a in opened] == [(AlertType.CPU_HIGH, 92.0, None)]
    assert "CPU at 92.0% is above the 80% threshold" in opened[0].message
    assert evaluator.evaluate(sample(T0 + timedelta(seconds=5), 95.0), limits) == []
    assert evaluator.evaluate(sample(T0 + timedelta(seconds=10), 78.0), limits) == []
    resolved = evaluator.evaluate(sample(T0 + timedelta(seconds=15), 74.0), limits)
    assert resolved[0].id == opened[0].id and resolved[0].resolved_at == T0 + timedelta(seconds=15)


def test_cpu_sustained_needs_an_unbroken_breach_for_the_configured_time() -> None:
    """Five minutes above 80 % raise CPU_SUSTAINED; a dip in between starts the clock again."""
    evaluator = ThresholdEvaluator("id", "crm")
    limits = Thresholds(cpu_sustained_seconds=300)
    kinds = []
    for second, cpu in ((0, 85.0), (200, 85.0), (250, 60.0), (260, 85.0), (500, 85.0), (560, 85.0)):
        kinds += [a.alert_type for a in evaluator.evaluate(sample(T0 + timedelta(seconds=second), cpu), limits)]
    assert kinds.count(AlertType.CPU_SUSTAINED) == 1
    assert kinds == [AlertType.CPU_HIGH, AlertType.CPU_HIGH, AlertType.CPU_HIGH, AlertType.CPU_SUSTAINED]


def test_memory_pool_and_queue_limits() -> None:
    """96 % memory is both high and critical, a full pool exhausted, 1 500 queued items a backlog; 850 clears the backlog, 9 of 10 do not clear the pool."""
    evaluator = ThresholdEvaluator("id", "crm")
    s = sample(T0, None, int(7.7 * GB), pool_active=10, pool_total=10, queue_depth=1500)
    kinds = {a.alert_type: a for a in evaluator.evaluate(s, Thresholds())}
    assert set(kinds) == {AlertType.MEMORY_HIGH, AlertType.MEMORY_CRITICAL, AlertType.POOL_EXHAUSTED,
                          AlertType.QUEUE_BACKLOG}  # fmt: skip
    assert "7.7 GB of 8.0 GB" in kinds[AlertType.MEMORY_CRITICAL].message
    assert "1,500 items" in kinds[AlertType.QUEUE_BACKLOG].message
    drained = evaluator.evaluate(sample(T0, None, None, pool_active=9, pool_total=10, queue_depth=850), Thresholds())
    assert {a.alert_type for a in drained} == {AlertType.QUEUE_BACKLOG}


def test_missing_figures_change_nothing_and_a_limit_turned_off_resolves() -> None:
    """A scrape without CPU neither opens nor resolves; setting the limit to 0 resolves its open alert."""
    evaluator = ThresholdEvaluator("id", "crm")
    evaluator.evaluate(sample(T0, 99.0), Thresholds(cpu_sustained_seconds=0))
    assert evaluator.evaluate(sample(T0, None), Thresholds(cpu_sustained_seconds=0)) == []
    off = evaluator.evaluate(sample(T0, 99.0), Thresholds(cpu_percent=0))
    assert [a.alert_type for a in off] == [AlertType.CPU_HIGH] and off[0].resolved_at is not None
    assert evaluator.open_alerts == []
