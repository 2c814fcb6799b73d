"""The connected-service and resource rules against a real health service, and resource thresholds
changed over the API: persisted over the declarative file's, surviving a restart, validated."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from b2x.monitoring.v1 import alerts_pb2, common_pb2, events_pb2, health_pb2

from services.common.events import Topic, new_event
from services.common.protoconv import set_timestamp
from services.health.registry.config import load_config
from tests.health.aggregation_helpers import append, check_state
from tests.health.alert_helpers import TIMEOUT, alerts_by_rule, eventually, one_alert, start_alerting
from tests.health.helpers import definition, register
from tests.support import ServiceHarness

FIRING, RESOLVED = health_pb2.ALERT_STATUS_FIRING, health_pb2.ALERT_STATUS_RESOLVED


async def test_three_consecutive_failed_checks_fire_service_offline_and_a_passing_check_resolves_it(
    harness: ServiceHarness,
) -> None:
    health, alerts = await start_alerting(harness)
    crm = (await register(health, definition("crm"))).service
    redis = (await harness.resources("health")).redis
    ns = harness.settings.namespace
    await append(redis, ns, check_state(crm.id, "crm", success=False, failures=2))
    await asyncio.sleep(0.5)
    assert await alerts_by_rule(alerts, "service.offline") == []

    await append(redis, ns, check_state(crm.id, "crm", success=False, failures=3))
    alert = await one_alert(alerts, "service.offline", status=FIRING)
    assert alert.severity == common_pb2.ERROR_SEVERITY_CRITICAL
    assert alert.labels["service"] == "crm" and alert.service_id == crm.id
    assert alert.title == "crm is offline: 3 consecutive checks failed"

    await append(redis, ns, check_state(crm.id, "crm", success=True))
    await one_alert(alerts, "service.offline", status=RESOLVED)


async def test_a_service_degraded_for_the_configured_minutes_fires_a_warning(
    harness: ServiceHarness, tmp_path: Path
) -> None:
    config = tmp_path / "services.yaml"
    config.write_text("services: []\nalerts:\n  service_degraded_minutes: 2\n")
    health, alerts = await start_alerting(harness, config_file=config)
    pim = (await register(health, definition("pim"))).service
    resources = await harness.resources("health")
    redis, ns = resources.redis, harness.settings.namespace
    start = datetime.now(UTC) - timedelta(minutes=5)
    # Checks older than the definition are ignored; this one was registered before the checks below.
    await resources.pool.execute("UPDATE health.services SET updated_at = $1", start - timedelta(minutes=1))

    def slow(at: datetime) -> object:
        state = check_state(pim.id, "pim", latency_ms=2500, at=at)
        state.degraded = True
        return state

    await append(redis, ns, slow(start), slow(start + timedelta(minutes=1)))  # type: ignore[arg-type]
    await asyncio.sleep(0.5)
    assert await alerts_by_rule(alerts, "service.degraded") == []
    await append(redis, ns, slow(start + timedelta(minutes=2)))  # type: ignore[arg-type]
    alert = await one_alert(alerts, "service.degraded", status=FIRING)
    assert alert.severity == common_pb2.ERROR_SEVERITY_WARNING
    assert alert.title == "pim has been degraded for 2 minutes"
    await append(redis, ns, check_state(pim.id, "pim", at=start + timedelta(minutes=3)))
    await one_alert(alerts, "service.degraded", status=RESOLVED)


def resource_event(service_id: str, kind: int, resolved: bool = False) -> events_pb2.Event:
    event = new_event("probes")
    alert = health_pb2.ResourceAlert(
        id="r-1", service_id=service_id, alert_type=kind, threshold_value=90, actual_value=97.5,  # type: ignore[arg-type]
        message="memory at 97.5% (7.8 GB of 8.0 GB) is above the critical 95% threshold",
    )  # fmt: skip
    set_timestamp(alert.triggered_at, datetime.now(UTC))
    if resolved:
        set_timestamp(alert.resolved_at, datetime.now(UTC))
    event.resource_alert_triggered.CopyFrom(events_pb2.ResourceAlertTriggered(service_id=service_id, alert=alert))
    return event


async def test_the_probes_resource_alerts_flow_through_the_same_lifecycle(harness: ServiceHarness) -> None:
    health, alerts = await start_alerting(harness)
    erp = (await register(health, definition("erp"))).service
    bus = (await harness.resources("health")).bus
    await asyncio.sleep(0.3)  # the health service subscribes when it starts
    await bus.publish(Topic.RESOURCE_ALERTS, resource_event(erp.id, health_pb2.RESOURCE_ALERT_TYPE_MEMORY_CRITICAL))
    alert = await one_alert(alerts, "resource.memory_critical", status=FIRING)
    assert alert.severity == common_pb2.ERROR_SEVERITY_CRITICAL
    assert alert.labels["service"] == "erp"
    assert alert.title.startswith("erp: memory at 97.5%")
    assert alert.annotations["actual"] == "97.5" and alert.service_id == erp.id
    await bus.publish(
        Topic.RESOURCE_ALERTS, resource_event(erp.id, health_pb2.RESOURCE_ALERT_TYPE_MEMORY_CRITICAL, resolved=True)
    )
    await one_alert(alerts, "resource.memory_critical", status=RESOLVED)


def figures_event(service_id: str, *open_kinds: int) -> events_pb2.Event:
    """A live resource update whose figures say which alerts are open after the sample."""
    event = new_event("probes")
    metrics = health_pb2.ResourceMetrics(cpu_percent=50.0, memory_percent=97.5)
    set_timestamp(metrics.timestamp, datetime.now(UTC))
    update = events_pb2.ResourceMetricsUpdated(service_id=service_id, metrics=metrics)
    for kind in open_kinds:
        update.open_alerts.append(resource_event(service_id, kind).resource_alert_triggered.alert)
    event.resource_metrics_updated.CopyFrom(update)
    return event


async def test_a_missed_resource_alert_event_is_set_right_from_the_live_figures(harness: ServiceHarness) -> None:
    """No ResourceAlertTriggered arrives (missed while subscribing, a Redis reconnect): the figures, which
    repeat the open alerts with every sample, make the alert fire, and later resolve it, once two sweeps
    in a row see the difference."""
    health, alerts = await start_alerting(harness, health_alert_sweep_seconds=0.2)
    erp = (await register(health, definition("erp"))).service
    bus = (await harness.resources("health")).bus
    await asyncio.sleep(0.3)  # the health service subscribes when it starts
    memory = health_pb2.RESOURCE_ALERT_TYPE_MEMORY_CRITICAL

    async def publish_while(status: int) -> health_pb2.Alert:
        async def seen() -> bool:
            await bus.publish(Topic.RESOURCE_METRICS, figures_event(erp.id, *([memory] if status == FIRING else [])))
            return any(a.status == status for a in await alerts_by_rule(alerts, "resource.memory_critical"))

        await eventually(seen)
        return await one_alert(alerts, "resource.memory_critical", status=status)

    fired = await publish_while(FIRING)
    assert fired.labels["service"] == "erp" and fired.occurrences == 1
    await asyncio.sleep(1.0)  # more sweeps with the alert open on both sides: no repeats
    assert (await one_alert(alerts, "resource.memory_critical", status=FIRING)).occurrences == 1
    resolved = await publish_while(RESOLVED)
    assert resolved.episode == fired.episode


async def test_thresholds_set_over_the_api_win_over_the_file_and_survive_a_restart(
    harness: ServiceHarness, tmp_path: Path
) -> None:
    config = tmp_path / "services.yaml"
    config.write_text(
        "services:\n  - slug: crm\n    type: CRM\n    endpoint: https://crm.example.test/health\n"
        "    thresholds:\n      cpu_percent: 85\n      memory_percent: 90\n"
    )
    _, alerts = await start_alerting(harness, config_file=config)
    response = await alerts.UpdateThresholds(
        alerts_pb2.UpdateThresholdsRequest(
            service="crm", changes=alerts_pb2.ThresholdChanges(cpu_percent=70, queue_depth=500), actor="ops"
        ),
        timeout=TIMEOUT,
    )
    assert response.service_slug == "crm"
    assert response.thresholds.cpu_percent == 70 and response.thresholds.queue_depth == 500
    assert response.thresholds.memory_percent == 90  # untouched: the file's

    # A second health process (a restart) syncs the file again: the override stays.
    health2, _ = await start_alerting(harness, config_file=config)
    crm = (await health2.GetService(health_pb2.GetServiceRequest(service="crm"), timeout=TIMEOUT)).service
    assert crm.thresholds.cpu_percent == 70 and crm.thresholds.queue_depth == 500
    assert crm.thresholds.memory_percent == 90
    targets = await health2.ListProbeTargets(health_pb2.ListProbeTargetsRequest(), timeout=TIMEOUT)
    assert [t.definition.thresholds.cpu_percent for t in targets.targets] == [70]  # what the probes evaluate
    assert load_config(config).services[0].thresholds.cpu_percent == 85  # the file is not rewritten


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (alerts_pb2.ThresholdChanges(cpu_percent=120), "thresholds.cpu_percent"),
        (alerts_pb2.ThresholdChanges(queue_depth=-1), "thresholds.queue_depth"),
        (
            alerts_pb2.ThresholdChanges(memory_percent=90, memory_critical_percent=80),
            "thresholds.memory_critical_percent",
        ),
        (alerts_pb2.ThresholdChanges(), "thresholds"),
    ],
)
async def test_bad_thresholds_are_invalid_argument_naming_the_field(
    harness: ServiceHarness, changes: alerts_pb2.ThresholdChanges, field: str
) -> None:
    health, alerts = await start_alerting(harness)
    await register(health, definition("crm"))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await alerts.UpdateThresholds(
            alerts_pb2.UpdateThresholdsRequest(service="crm", changes=changes, actor="ops"), timeout=TIMEOUT
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith(f"{field}:")


async def test_thresholds_of_an_unknown_service_are_not_found(harness: ServiceHarness) -> None:
    _, alerts = await start_alerting(harness)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await alerts.UpdateThresholds(
            alerts_pb2.UpdateThresholdsRequest(
                service="nope", changes=alerts_pb2.ThresholdChanges(cpu_percent=50), actor="ops"
            ),
            timeout=TIMEOUT,
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_invalid_alerts_section_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    from services.common.errors import StartupError

    config = tmp_path / "services.yaml"
    config.write_text("services: []\nalerts:\n  job_failure_rate_count: 0\n")
    with pytest.raises(StartupError, match=r"alerts\.job_failure_rate_count"):
        load_config(config)


async def test_a_failure_rate_alert_resolves_when_its_window_empties(harness: ServiceHarness, tmp_path: Path) -> None:
    from tests.health.alert_helpers import append_outcomes, outcome

    config = tmp_path / "services.yaml"
    config.write_text("services: []\nalerts:\n  job_failure_rate_count: 1\n  job_failure_rate_minutes: 1\n")
    _, alerts = await start_alerting(harness, config_file=config, health_alert_sweep_seconds=0.2)
    old = [outcome("ERP_STOCK_SYNC") for _ in range(2)]
    await append_outcomes(harness, *old)
    await one_alert(alerts, "jobs.failure_rate", status=FIRING)
    # Age the failures out of the one-minute window, as time would.
    pool = (await harness.resources("health")).pool
    await pool.execute("UPDATE health.job_failures SET failed_at = failed_at - interval '2 minutes'")
    alert = await eventually(lambda: _resolved(alerts))
    assert alert.resolved_by == ""


async def _resolved(alerts: object) -> health_pb2.Alert | None:
    found = await alerts_by_rule(alerts, "jobs.failure_rate")  # type: ignore[arg-type]
    return found[0] if found and found[0].status == RESOLVED else None


async def test_the_firing_gauge_counts_open_alerts_by_rule_and_severity(harness: ServiceHarness) -> None:
    from prometheus_client import REGISTRY

    from tests.health.alert_helpers import append_outcomes, outcome

    _, alerts = await start_alerting(harness, metrics_snapshot_seconds=0.2)
    await append_outcomes(harness, outcome("ERP_STOCK_SYNC", "acme"), outcome("PIM_EXPORT", "acme"))
    labels = {"rule": "jobs.failed", "severity": "error"}

    async def counted() -> bool:
        return REGISTRY.get_sample_value("b2x_alerts_firing", labels) == 2

    await eventually(counted)
    first = (await alerts_by_rule(alerts, "jobs.failed"))[0]
    await alerts.ResolveAlert(alerts_pb2.ResolveAlertRequest(id=first.id, actor="ops"), timeout=TIMEOUT)

    async def one_left() -> bool:
        return REGISTRY.get_sample_value("b2x_alerts_firing", labels) == 1

    await eventually(one_left)


def comm_error(service_id: str, at: datetime, test_id: str = "") -> events_pb2.Event:
    from b2x.monitoring.v1 import probes_pb2

    error = probes_pb2.CommunicationError(
        id="e", service_id=service_id, error_type=probes_pb2.COMMUNICATION_ERROR_TYPE_CONNECTION_TIMEOUT,
        error_group=probes_pb2.COMMUNICATION_ERROR_GROUP_TIMEOUT, message="timed out", connection_test_id=test_id,
    )  # fmt: skip
    set_timestamp(error.timestamp, at)
    event = new_event("probes")
    event.communication_error_recorded.error.CopyFrom(error)
    return event


async def test_a_burst_of_communication_errors_fires_an_error_spike_that_ends_with_the_burst(
    harness: ServiceHarness, tmp_path: Path
) -> None:
    config = tmp_path / "services.yaml"
    config.write_text("services: []\nalerts:\n  error_spike_count: 3\n  error_spike_minutes: 1\n")
    health, alerts = await start_alerting(harness, config_file=config, health_alert_sweep_seconds=0.2)
    erp = (await register(health, definition("erp"))).service
    bus = (await harness.resources("health")).bus
    await asyncio.sleep(0.3)
    almost_a_minute_ago = datetime.now(UTC) - timedelta(seconds=57)
    # Connection tests someone ran by hand do not count.
    for _ in range(3):
        await bus.publish(Topic.COMMUNICATION_ERRORS, comm_error(erp.id, almost_a_minute_ago, test_id="t-1"))
    await asyncio.sleep(0.5)
    assert await alerts_by_rule(alerts, "errors.spike") == []
    for _ in range(3):
        await bus.publish(Topic.COMMUNICATION_ERRORS, comm_error(erp.id, almost_a_minute_ago))
    alert = await one_alert(alerts, "errors.spike", status=FIRING)
    assert alert.labels["service"] == "erp" and alert.labels["error_group"] == "timeout"
    assert alert.title == "3 timeout errors from erp in the last 1 minutes"
    # The errors leave the one-minute window within seconds: the sweep resolves the spike.
    await one_alert(alerts, "errors.spike", status=RESOLVED)


async def test_a_certificate_expiring_within_the_configured_days_fires_until_a_renewed_one_is_seen(
    harness: ServiceHarness,
) -> None:
    health, alerts = await start_alerting(harness)
    erp = (await register(health, definition("erp"))).service
    redis = (await harness.resources("health")).redis
    ns = harness.settings.namespace
    now = datetime.now(UTC)
    soon = check_state(erp.id, "erp", at=now)
    set_timestamp(soon.tls_not_after, now + timedelta(days=5, hours=1))
    await append(redis, ns, soon)
    alert = await one_alert(alerts, "tls.expiring", status=FIRING)
    assert alert.severity == common_pb2.ERROR_SEVERITY_WARNING and alert.labels["service"] == "erp"
    assert alert.title.startswith("the TLS certificate of erp expires in 5 days")
    renewed = check_state(erp.id, "erp", at=now + timedelta(seconds=30))
    set_timestamp(renewed.tls_not_after, now + timedelta(days=90))
    await append(redis, ns, renewed)
    await one_alert(alerts, "tls.expiring", status=RESOLVED)
