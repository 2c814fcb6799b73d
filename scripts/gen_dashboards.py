"""Write the Grafana dashboards of deploy/grafana/dashboards/ from the compact definitions below.

The JSON files are what Grafana provisions (deploy/grafana/provisioning/); they are committed, and
`--check` fails when they differ from a fresh generation (tests/deploy/test_grafana.py runs it), the
same way as the protobuf drift check. Edit the definitions here, then `python scripts/gen_dashboards.py`.

State gauges (b2x_jobs, b2x_service_status, b2x_resource_*) are read from PostgreSQL by every replica
of a service: panels take `max` over replicas before summing. Counters are per replica: panels sum them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "deploy" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Panel:
    title: str
    exprs: tuple[tuple[str, str], ...]  # (PromQL, legend)
    kind: str = "timeseries"
    unit: str = "short"
    width: int = 12
    height: int = 8
    description: str = ""
    stack: bool = False


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[tuple[str, str, str], ...] = field(default=())  # (name, label, label_values query)


def p(title: str, *exprs: tuple[str, str], **options: Any) -> Panel:
    return Panel(title, tuple(exprs), **options)


JOBS = 'max by (status, job_type, tenant) (b2x_jobs{job_type=~"$job_type", tenant=~"$tenant"})'
ACTIVE_JOBS = (
    'max by (status, job_type, tenant) (b2x_jobs{status=~"queued|running", job_type=~"$job_type", tenant=~"$tenant"})'
)
TYPE_FILTER = 'job_type=~"$job_type"'
SERVICE_FILTER = 'service=~"$service"'

DASHBOARDS = (
    Dashboard(
        "b2x-overview",
        "B2X · Overview",
        "What the management overview shows: connected services, jobs, failures and alerts at a glance.",
        (
            p("Services online", ('count(max by (service) (b2x_service_status{status="online"}) == 1) or vector(0)', ""),
              kind="stat", width=4, height=4),
            p("Services degraded", ('count(max by (service) (b2x_service_status{status="degraded"}) == 1) or vector(0)', ""),
              kind="stat", width=4, height=4),
            p("Services offline", ('count(max by (service) (b2x_service_status{status="offline"}) == 1) or vector(0)', ""),
              kind="stat", width=4, height=4),
            p("Jobs running", ('sum(max by (status, job_type, tenant) (b2x_jobs{status="running"})) or vector(0)', ""),
              kind="stat", width=4, height=4),
            p("Jobs failed (24 h)", ('sum(max by (status, job_type, tenant) (b2x_jobs{status="failed"})) or vector(0)', ""),
              kind="stat", width=4, height=4),
            p("Alerts firing",
              # Resource alerts are among them (one pipeline); every health replica reports the same figure.
              ("sum(max by (rule, severity) (b2x_alerts_firing)) or vector(0)", ""), kind="stat", width=4, height=4),
            p("Status of each connected service", ("max by (service, status) (b2x_service_status) == 1", "{{service}}: {{status}}"),
              kind="table", width=8),
            p("Job failures per minute, by type", ("sum by (job_type) (rate(scheduler_job_failures_total[5m])) * 60", "{{job_type}}"),
              width=16),
            p("Finished jobs per minute, by outcome",
              ("sum by (outcome) (rate(scheduler_job_completions_total[5m])) * 60", "{{outcome}}"), stack=True),
            p("Availability (7 days)", ("max by (service) (b2x_service_uptime_ratio)", "{{service}}"), unit="percentunit"),
        ),
    ),
    Dashboard(
        "b2x-jobs",
        "B2X · Scheduler jobs",
        "Scheduler jobs by status, failures, durations, queue waits and the enventa ERP figures.",
        (
            p("Jobs by status", (f"sum by (status) ({JOBS})", "{{status}}"), stack=True,
              description="Queued and running now; finished ones created in the last 24 hours."),
            p("Jobs by type (queued and running)", (f"sum by (job_type) ({ACTIVE_JOBS})", "{{job_type}}"), stack=True),
            p("Failures per minute, by type and category",
              (f"sum by (job_type, error_category) (rate(scheduler_job_failures_total{{{TYPE_FILTER}}}[5m])) * 60",
               "{{job_type}} {{error_category}}")),
            p("Finished per minute, by outcome",
              (f"sum by (outcome) (rate(scheduler_job_completions_total{{{TYPE_FILTER}}}[5m])) * 60", "{{outcome}}"), stack=True),
            p("Run time p50 / p95",
              (f"histogram_quantile(0.5, sum by (le, job_type) (rate(scheduler_job_duration_seconds_bucket{{{TYPE_FILTER}}}[15m])))",
               "p50 {{job_type}}"),
              (f"histogram_quantile(0.95, sum by (le, job_type) (rate(scheduler_job_duration_seconds_bucket{{{TYPE_FILTER}}}[15m])))",
               "p95 {{job_type}}"), unit="s"),
            p("Queue wait p95",
              (f"histogram_quantile(0.95, sum by (le, job_type) (rate(scheduler_job_queue_wait_seconds_bucket{{{TYPE_FILTER}}}[15m])))",
               "{{job_type}}"), unit="s"),
            p("Oldest claimable job waiting", (f"max by (job_type) (b2x_job_queue_oldest_age_seconds{{{TYPE_FILTER}}})", "{{job_type}}"),
              unit="s"),
            p("Retries per minute", (f"sum by (trigger) (rate(scheduler_job_retries_total{{{TYPE_FILTER}}}[5m])) * 60", "{{trigger}}")),
            p("Progress reports and log lines per second",
              ("sum(rate(b2x_job_progress_reports_total[5m]))", "progress reports"),
              ("sum by (level) (rate(b2x_job_log_lines_total[5m]))", "log lines {{level}}")),
            p("enventa: bulk operation progress", ("max by (job_type) (erp_bulk_operation_progress)", "{{job_type}}"),
              unit="percent"),
            p("enventa: time since the last successful sync", ("time() - max by (job_type) (erp_last_successful_sync)", "{{job_type}}"),
              unit="s", width=24),
        ),
        (("job_type", "Job type", "label_values(b2x_jobs, job_type)"), ("tenant", "Tenant", "label_values(b2x_jobs, tenant)")),
    ),
    Dashboard(
        "b2x-services",
        "B2X · Connected services",
        "Status, availability, latency and resources of every connected service (ERP, PIM, CRM, databases).",
        (
            p("Status", (f"max by (service, status) (b2x_service_status{{{SERVICE_FILTER}}}) == 1", "{{service}}: {{status}}"),
              kind="table", width=8),
            p("Availability (7 days)", (f"max by (service) (b2x_service_uptime_ratio{{{SERVICE_FILTER}}})", "{{service}}"),
              unit="percentunit", width=8),
            p("Average latency (24 h)", (f"max by (service) (b2x_service_latency_average_seconds{{{SERVICE_FILTER}}})", "{{service}}"),
              unit="s", width=8),
            p("CPU", (f"max by (service) (b2x_resource_cpu_percent{{{SERVICE_FILTER}}})", "{{service}}"), unit="percent"),
            p("Memory", (f"max by (service) (b2x_resource_memory_percent{{{SERVICE_FILTER}}})", "{{service}}"), unit="percent"),
            p("Connection pool in use",
              (f"max by (service) (b2x_resource_pool_active{{{SERVICE_FILTER}}}) / max by (service) (b2x_resource_pool_size{{{SERVICE_FILTER}}})",
               "{{service}}"), unit="percentunit"),
            p("Queue depth and processing rate",
              (f"max by (service) (b2x_resource_queue_depth{{{SERVICE_FILTER}}})", "depth {{service}}"),
              (f"max by (service) (b2x_resource_processing_rate_per_minute{{{SERVICE_FILTER}}})", "per minute {{service}}")),
            p("Threads", (f"max by (service) (b2x_resource_threads{{{SERVICE_FILTER}}})", "{{service}}")),
            p("Open resource alerts",
              (f"max by (service, alert_type) (b2x_resource_alerts_open{{{SERVICE_FILTER}}}) == 1", "{{service}} {{alert_type}}"),
              kind="table"),
            p("enventa: Actor mailbox and sessions",
              ("max by (service) (erp_actor_queue_depth)", "mailbox {{service}}"),
              ("max by (service) (erp_session_count)", "ORM sessions {{service}}")),
            p("enventa: Actor processing time and connection",
              ("max by (service) (erp_actor_processing_time_ms)", "ms per operation {{service}}"),
              ("max by (service) (erp_connection_status)", "connected {{service}}")),
        ),
        (("service", "Service", "label_values(b2x_service_status, service)"),),
    ),
    Dashboard(
        "b2x-probes",
        "B2X · Probes and communication errors",
        "Periodic checks, their network phases, circuit breakers and the communication errors they record.",
        (
            p("Checks per minute, by outcome",
              (f"sum by (outcome) (rate(b2x_probe_checks_total{{{SERVICE_FILTER}}}[5m])) * 60", "{{outcome}}"), stack=True),
            p("Phase durations p95",
              (f"histogram_quantile(0.95, sum by (le, phase) (rate(b2x_probe_phase_duration_seconds_bucket{{{SERVICE_FILTER}}}[10m])))",
               "{{phase}}"), unit="s"),
            p("Check duration p95 by service",
              ('histogram_quantile(0.95, sum by (le, service) (rate(b2x_probe_phase_duration_seconds_bucket{phase="total", '
               f"{SERVICE_FILTER}}}[10m])))", "{{service}}"), unit="s"),
            p("Communication errors per minute, by type",
              (f"sum by (error_type) (rate(b2x_communication_errors_total{{{SERVICE_FILTER}}}[5m])) * 60", "{{error_type}}"), stack=True),
            p("Communication errors per minute, by service and group",
              (f"sum by (service, error_group) (rate(b2x_communication_errors_total{{{SERVICE_FILTER}}}[5m])) * 60",
               "{{service}} {{error_group}}")),
            p("Circuit breakers not closed",
              (f'max by (service, state) (b2x_probe_breaker_state{{state!="closed", {SERVICE_FILTER}}}) == 1', "{{service}}: {{state}}"),
              kind="table"),
            p("Failed checks in a row", (f"max by (service) (b2x_probe_consecutive_failures{{{SERVICE_FILTER}}})", "{{service}}")),
            p("Time since the last successful check",
              (f"time() - max by (service) (b2x_probe_last_success_timestamp_seconds{{{SERVICE_FILTER}}})", "{{service}}"), unit="s"),
        ),
        (("service", "Service", "label_values(b2x_probe_checks_total, service)"),),
    ),
    Dashboard(
        "b2x-internals",
        "B2X · Internals",
        "B2X's own processes: scrape health, gRPC and HTTP traffic, GraphQL, the event bus, streams, alerting.",
        (
            p("Processes up", ('up{job=~"b2x-.*"}', "{{job}} {{instance}}"), kind="stat", width=24, height=4),
            p("gRPC requests per second, by service and code",
              ("sum by (service, code) (rate(b2x_grpc_requests_total[5m]))", "{{service}} {{code}}")),
            p("gRPC latency p95, by service",
              ("histogram_quantile(0.95, sum by (le, service) (rate(b2x_grpc_request_duration_seconds_bucket[5m])))", "{{service}}"),
              unit="s"),
            p("Calls between services per second, by target and code",
              ("sum by (target, code) (rate(b2x_grpc_client_requests_total[5m]))", "{{target}} {{code}}")),
            p("Calls between services p95",
              ("histogram_quantile(0.95, sum by (le, target) (rate(b2x_grpc_client_request_duration_seconds_bucket[5m])))",
               "{{target}}"), unit="s"),
            p("Gateway HTTP requests per second", ("sum by (route, status) (rate(b2x_http_requests_total[5m]))", "{{route}} {{status}}")),
            p("Gateway HTTP latency p95",
              ("histogram_quantile(0.95, sum by (le, route) (rate(b2x_http_request_duration_seconds_bucket[5m])))", "{{route}}"),
              unit="s"),
            p("GraphQL operations per second, by outcome",
              ("sum by (operation_type, outcome) (rate(b2x_graphql_operations_total[5m]))", "{{operation_type}} {{outcome}}")),
            p("GraphQL p95, by root field",
              ("histogram_quantile(0.95, sum by (le, root_field) (rate(b2x_graphql_operation_duration_seconds_bucket[5m])))",
               "{{root_field}}"), unit="s"),
            p("Events per second: published, failed, received, delivered, dropped",
              ("sum by (topic) (rate(b2x_events_published_total[5m]))", "published {{topic}}"),
              ("sum by (topic) (rate(b2x_events_publish_failed_total[5m]))", "failed {{topic}}"),
              ("sum by (topic) (rate(b2x_events_received_total[5m]))", "received {{topic}}"),
              ("sum by (topic) (rate(b2x_events_delivered_total[5m]))", "delivered {{topic}}"),
              ("sum by (topic) (rate(b2x_events_dropped_total[5m]))", "dropped {{topic}}")),
            p("Live subscribers and stream backlog",
              ("sum(b2x_gateway_live_subscribers)", "live subscribers"),
              ("max by (stream, group) (b2x_stream_backlog)", "backlog {{stream}}/{{group}}")),
            p("Age of the state figures read from PostgreSQL",
              ("time() - max by (job, snapshot) (b2x_metrics_snapshot_timestamp_seconds)", "{{snapshot}}"),
              ("sum by (snapshot) (rate(b2x_metrics_snapshot_failures_total[5m]))", "refresh failures/s {{snapshot}}"), unit="s"),
            p("Check states consumed per second", ("sum by (outcome) (rate(b2x_health_check_states_total[5m]))", "{{outcome}}")),
            p("Alerts firing and notifications",
              ("max by (rule, severity) (b2x_alerts_firing)", "firing {{rule}} {{severity}}"),
              ("sum by (channel) (rate(b2x_notifications_sent_total[15m])) * 60", "sent/min {{channel}}"),
              ("sum by (channel) (rate(b2x_notifications_failed_total[15m])) * 60", "failed/min {{channel}}")),
            p("Process CPU", ('sum by (job) (rate(process_cpu_seconds_total{job=~"b2x-.*"}[5m]))', "{{job}}"), unit="percentunit"),
            p("Process memory", ('sum by (job) (process_resident_memory_bytes{job=~"b2x-.*"})', "{{job}}"), unit="bytes"),
            p("Versions", ("max by (component, version) (b2x_build_info)", "{{component}} {{version}}"), kind="table", width=24),
        ),
    ),
)  # fmt: skip


def _layout(panels: tuple[Panel, ...]) -> list[tuple[Panel, dict[str, int]]]:
    placed, x, y, row_height = [], 0, 0, 0
    for panel in panels:
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        placed.append((panel, {"h": panel.height, "w": panel.width, "x": x, "y": y}))
        x += panel.width
        row_height = max(row_height, panel.height)
    return placed


def _panel(index: int, panel: Panel, grid: dict[str, int]) -> dict[str, Any]:
    targets = [
        {"datasource": DATASOURCE, "refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend or "__auto"}
        | ({"format": "table", "instant": True} if panel.kind == "table" else {"range": True})
        for n, (expr, legend) in enumerate(panel.exprs)
    ]
    defaults: dict[str, Any] = {"unit": panel.unit}
    options: dict[str, Any] = {}
    if panel.kind == "timeseries":
        defaults["custom"] = {"drawStyle": "line", "fillOpacity": 20 if panel.stack else 0,
                              "stacking": {"mode": "normal" if panel.stack else "none"}}  # fmt: skip
        options = {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}
    elif panel.kind == "stat":
        options = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value", "graphMode": "none"}
    return {
        "id": index,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    variables: list[dict[str, Any]] = [
        {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus", "hide": 0}
    ]
    for name, label, query in dashboard.variables:
        variables.append({
            "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
            "query": {"query": query, "refId": name}, "definition": query, "refresh": 2,
            "includeAll": True, "multi": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"},
            "sort": 1, "hide": 0,
        })  # fmt: skip
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["b2x"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "timezone": "browser",
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "links": [{"type": "dashboards", "tags": ["b2x"], "asDropdown": True, "title": "B2X dashboards"}],
        "templating": {"list": variables},
        "panels": [_panel(n + 1, panel, grid) for n, (panel, grid) in enumerate(_layout(dashboard.panels))],
    }


def files() -> dict[str, str]:
    return {f"{d.uid}.json": json.dumps(render(d), indent=2, ensure_ascii=False) + "\n" for d in DASHBOARDS}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed JSON differs")
    args = parser.parse_args(argv)
    wanted = files()
    if args.check:
        stale = [
            name for name, text in wanted.items() if not (OUT / name).is_file() or (OUT / name).read_text() != text
        ]
        extra = sorted(p.name for p in OUT.glob("*.json") if p.name not in wanted)
        if stale or extra:
            print(f"dashboards out of date: {', '.join(stale + extra)}; run python scripts/gen_dashboards.py")
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in wanted.items():
        (OUT / name).write_text(text)
    for path in OUT.glob("*.json"):
        if path.name not in wanted:
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
