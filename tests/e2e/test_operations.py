"""The operations pack against a real stack: Prometheus scraping it, the dashboards' and rules' metrics,
and one traced mutation across processes.

One `b2c up` (embedded PostgreSQL and Redis, three services, the gateway) runs for the module with
OpenTelemetry export pointed at a real OTLP/HTTP receiver in this process, and Debian's `prometheus`
scrapes it every second with the rule files of deploy/prometheus loaded.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from b2x.monitoring.v1 import common_pb2, health_pb2, health_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_stack import RunningStack, stack_env, start, stop
from tests.otlp import OtlpReceiver
from tests.prometheus_server import PrometheusServer, prometheus

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.rules.yml"))
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
METRICS_PORTS = {
    "b2x-jobs": "B2X_JOBS_METRICS_PORT",
    "b2x-health": "B2X_HEALTH_METRICS_PORT",
    "b2x-probes": "B2X_PROBES_METRICS_PORT",
}
# Series Prometheus makes itself rather than scraping them.
SYNTHETIC = {"up"}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left", "group_right", "and",
    "or", "unless", "rate", "increase", "irate", "histogram_quantile", "time", "vector", "absent", "offset", "bool",
}  # fmt: skip


@dataclass
class OpsStack:
    stack: RunningStack
    prometheus: PrometheusServer
    otlp: OtlpReceiver

    def metrics_urls(self) -> dict[str, str]:
        urls = {job: f"http://127.0.0.1:{self.stack.port(var)}/metrics" for job, var in METRICS_PORTS.items()}
        return {"b2x-gateway": f"{self.stack.api}/metrics", **urls}


@pytest.fixture(scope="module")
async def ops(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OpsStack]:
    receiver = OtlpReceiver()
    async with receiver.running():
        tmp = tmp_path_factory.mktemp("ops")
        env = stack_env(tmp)
        env.update({
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "B2X_METRICS_SNAPSHOT_SECONDS": "1",
        })  # fmt: skip
        stack = await start(env)
        try:
            targets = {job: f"127.0.0.1:{stack.port(var)}" for job, var in METRICS_PORTS.items()}
            targets["b2x-gateway"] = f"127.0.0.1:{stack.port('B2X_GATEWAY_PORT')}"
            async with prometheus(tmp / "prometheus", targets, RULE_FILES) as server:
                yield OpsStack(stack, server, receiver)
        finally:
            await stop(stack)


async def fail_jobs(stub: jobs_pb2_grpc.JobsServiceStub, count: int, category: str, error_class: int) -> None:
    for _ in range(count):
        job = (
            await stub.CreateJob(
                jobs_pb2.CreateJobRequest(job_type="ERP_ARTICLE_SYNC", tenant_id="tenant-north", max_attempts=1),
                timeout=10,
            )
        ).job
        await stub.StartJob(jobs_pb2.StartJobRequest(job_id=job.id, worker_id="e2e-worker"), timeout=10)
        await stub.FailJob(
            jobs_pb2.FailJobRequest(
                worker_id="e2e-worker",
                job_id=job.id,
                error_message="article 4711-B rejected",
                error_category=category,
                error_class=error_class,
            ),
            timeout=10,
        )


async def test_prometheus_counts_the_failures_jobs_produced_and_fires_the_rule(ops: OpsStack) -> None:
    """Failed jobs show up in `scheduler_job_failures_total` as Prometheus scrapes it, by type, tenant and
    category; `b2x_jobs` counts them from PostgreSQL; the rule files load and a permanent failure fires
    SchedulerJobPermanentFailure in the real Prometheus."""
    server = ops.prometheus
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ops.stack.port('B2X_JOBS_PORT')}") as channel:
        stub = jobs_pb2_grpc.JobsServiceStub(channel)
        # A counter series is born at its first increment; Prometheus's increase() needs it seen once before.
        await fail_jobs(stub, 1, "ERP_DATA_VALIDATION", jobs_pb2.ERROR_CLASS_PERMANENT)
        await server.wait_for("scheduler_job_failures_total", lambda r: len(r) == 1)
        await fail_jobs(stub, 2, "ERP_DATA_VALIDATION", jobs_pb2.ERROR_CLASS_PERMANENT)
        await fail_jobs(stub, 1, "ERP_CONNECTION_FAILED", jobs_pb2.ERROR_CLASS_TRANSIENT)

    by_category = "sum by (job_type, tenant, error_category, error_class) (scheduler_job_failures_total)"
    result = await server.wait_for(by_category, lambda r: sum(float(s["value"][1]) for s in r) == 4)
    counts = {(s["metric"]["error_category"], s["metric"]["error_class"]): float(s["value"][1]) for s in result}
    assert counts == {("ERP_DATA_VALIDATION", "PERMANENT"): 3.0, ("ERP_CONNECTION_FAILED", "TRANSIENT"): 1.0}
    assert {(s["metric"]["job_type"], s["metric"]["tenant"]) for s in result} == {("ERP_ARTICLE_SYNC", "tenant-north")}

    failed = await server.wait_for('max(b2x_jobs{status="failed"})', lambda r: r and float(r[0]["value"][1]) == 4)
    assert failed
    up = await server.query('up{job=~"b2x-.*"}')
    assert {s["metric"]["job"]: s["value"][1] for s in up} == {
        "b2x-gateway": "1", "b2x-jobs": "1", "b2x-health": "1", "b2x-probes": "1",
    }  # fmt: skip

    # A connected service registered over gRPC shows up with one series per status, from the health snapshot.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ops.stack.port('B2X_HEALTH_PORT')}") as channel:
        definition = health_pb2.ServiceDefinition(
            slug="gateway-self", name="B2X gateway", type=common_pb2.SERVICE_TYPE_OTHER,
            endpoint=f"{ops.stack.api}/health/live",
        )  # fmt: skip
        await health_pb2_grpc.HealthServiceStub(channel).RegisterService(
            health_pb2.RegisterServiceRequest(definition=definition), timeout=10
        )
    statuses = await server.wait_for('b2x_service_status{service="gateway-self"}', lambda r: len(r) == 4)
    assert sorted(s["metric"]["status"] for s in statuses) == ["degraded", "offline", "online", "unknown"]
    assert sum(float(s["value"][1]) for s in statuses) == 1

    groups = (await server.get("/api/v1/rules"))["groups"]
    assert {g["file"] for g in groups} == {str(p) for p in RULE_FILES}
    assert "SchedulerJobFailureRate" in {r["name"] for g in groups for r in g["rules"]}
    alerts = await server.wait_for(
        'ALERTS{alertname="SchedulerJobPermanentFailure", alertstate="firing"}', lambda r: len(r) == 1
    )
    assert alerts[0]["metric"]["error_category"] == "ERP_DATA_VALIDATION"
    broken = [
        r["name"] for g in (await server.get("/api/v1/rules"))["groups"] for r in g["rules"] if r["health"] == "err"
    ]
    assert not broken, broken


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (strings, label matchers, groupings, ranges removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        follows = text[match.end() :].lstrip()[:1]
        if name in PROMQL_WORDS or follows == "(" or re.fullmatch(r"\d+[smhd]?", name):
            continue
        names.add(name)
    return names


async def exposed_names(ops: OpsStack) -> set[str]:
    """Every metric family and sample name the four processes serve on /metrics."""
    names: set[str] = set()
    async with httpx.AsyncClient(timeout=10) as client:
        for url in ops.metrics_urls().values():
            response = await client.get(url)
            assert response.status_code == 200, url
            for family in text_string_to_metric_families(response.text):
                names.add(family.name)
                names.update(sample.name for sample in family.samples)
            # Families without samples yet (labelled, nothing happened) still announce themselves; their
            # series will carry the family's suffixes.
            for family_name in re.findall(r"^# TYPE (\S+) ", response.text, re.MULTILINE):
                names.update(family_name + suffix for suffix in ("", "_total", "_bucket", "_sum", "_count"))
    return names


async def test_every_dashboard_and_rule_query_reads_metrics_the_stack_exposes(ops: OpsStack) -> None:
    """Each panel's query is valid PromQL for the real Prometheus and every metric it names is served by
    the gateway or a service's /metrics; so is every metric the alert rules read."""
    exposed = await exposed_names(ops)
    missing: dict[str, set[str]] = {}
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                await ops.prometheus.query(re.sub(r"\$\w+", ".*", expr))  # Prometheus parses it
                unknown = metric_names(expr) - exposed - SYNTHETIC
                if unknown:
                    missing[f"{path.name}: {panel['title']}"] = unknown
    for group in (await ops.prometheus.get("/api/v1/rules"))["groups"]:
        for rule in group["rules"]:
            if unknown := metric_names(rule["query"]) - exposed - SYNTHETIC:
                missing[f"rule {rule['name']}"] = unknown
    assert not missing, missing
    # The extraction itself finds names (a test that cannot fail proves nothing).
    assert metric_names('sum by (job_type) (rate(scheduler_job_failures_total{tenant="a"}[5m])) * 60') == {
        "scheduler_job_failures_total"
    }


async def test_a_traced_mutation_shows_gateway_jobs_service_and_database_spans_in_one_trace(ops: OpsStack) -> None:
    """`createJob` sent with a W3C traceparent: the gateway's HTTP and GraphQL spans, its gRPC client span,
    the jobs service's gRPC server span, its SQL statements and its event PUBLISH all arrive at the OTLP
    receiver in that one trace, parent-linked across processes; the audit entry and the jobs service's log
    line carry the trace id."""
    trace_id = uuid.uuid4().hex
    parent = uuid.uuid4().hex[:16]
    async with httpx.AsyncClient(base_url=ops.stack.api, timeout=15) as client:
        response = await client.post(
            "/graphql",
            json={
                "query": 'mutation { createJob(input: {jobType: "ERP_STOCK_SYNC", tenantId: "tenant-south"}) { id } }'
            },
            headers={"Authorization": f"Bearer {ops.stack.admin_key}", "traceparent": f"00-{trace_id}-{parent}-01"},
        )
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    job_id = response.json()["data"]["createJob"]["id"]

    spans = await ops.otlp.wait_for(trace_id, {"b2x-gateway", "b2x-jobs"})
    by_id = {span.span_id: span for span in spans}
    gateway = [s for s in spans if s.service == "b2x-gateway"]
    jobs = [s for s in spans if s.service == "b2x-jobs"]
    assert any(s.name.startswith("POST /graphql") and s.parent_span_id == parent for s in gateway), gateway
    server_span = next(s for s in jobs if s.name == "/b2x.monitoring.v1.JobsService/CreateJob")
    client_span = by_id[server_span.parent_span_id]
    assert client_span.service == "b2x-gateway" and client_span.name == server_span.name
    sql = [s for s in jobs if s.attributes.get("db.system") == "postgresql"]
    assert any("INSERT INTO jobs.jobs" in str(s.attributes.get("db.statement", "")) for s in sql), sql
    assert any(s.name == "PUBLISH" for s in jobs), [s.name for s in jobs]

    async with httpx.AsyncClient(base_url=ops.stack.api, timeout=15) as client:
        audit = await client.post(
            "/graphql",
            json={"query": "{ auditLog(limit: 10) { action outcome traceId } }"},
            headers={"Authorization": f"Bearer {ops.stack.admin_key}"},
        )
    assert {"action": "createJob", "outcome": "ok", "traceId": trace_id} in audit.json()["data"]["auditLog"]

    log_lines = await asyncio.to_thread((Path(ops.stack.env["B2X_DATA_DIR"]) / "logs" / "jobs.log").read_text)
    created = [json.loads(line) for line in log_lines.splitlines() if job_id in line and line.startswith("{")]
    assert any(line.get("trace_id") == trace_id and line["event"] == "job created" for line in created), created
