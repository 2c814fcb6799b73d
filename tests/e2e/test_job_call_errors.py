"""A job's failed calls to a connected service, correlated to the job end to end.

Real jobs, health and probes services, the gateway under uvicorn, a worker using the Job SDK's
`CallReporter`, and a real HTTP server playing the ERP (503 with secrets in the answer, a read that
never answers). The errors appear through GraphQL with `correlatedJobId` equal to the job id, masked,
only to keys that may see the job's tenant; the job itself completes; bad reports are refused.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest
from b2x.monitoring.v1 import jobs_pb2, jobs_pb2_grpc, probes_pb2, probes_pb2_grpc

from b2c.stack.demo.endpoints import Fault, SimulatedSystem
from b2c.stack.demo.worker import Remote, run_job
from gateway.auth import KeyStore, Role
from services.health.main import build_server as build_health
from services.health.settings import HealthSettings
from services.jobs.sdk import JobHandle, JobInfo, JobMonitor, WorkerRunner
from services.jobs.sdk.calls import JOB_ID_HEADER, CallReporter
from services.probes.main import build_server as build_probes
from services.probes.settings import ProbesSettings
from tests.jobs.sdk.helpers import eventually
from tests.jobs.sdk.test_demo import Fixed
from tests.probes.servers import HttpTestServer, Route
from tests.probes.test_demo_endpoints import systems as demo_systems
from tests.support import ServiceHarness

systems = demo_systems  # the simulated ERP/PIM/CRM, as pytest fixture of this module too

TOKEN = "erp-5ecret-tok-99x"
ECHOED = "sk_live_abcdef1234567890"
WORKER = "erp-worker-1"

ERRORS = """query($job: ID) { communicationErrors(correlatedJobId: $job, first: 50) {
  totalCount errors { id serviceId errorType errorGroup severity errorCode message correlatedJobId
    recommendations details { httpMethod endpointUrl httpStatusCode requestHeaders
      responseHeaders responseBodySummary traceId } } } }"""
ONE = "query($id: ID!) { communicationError(id: $id) { id correlatedJobId } }"


async def _stack(harness: ServiceHarness, tmp_path: Path, web: HttpTestServer) -> tuple[str, str, str]:
    config = tmp_path / "services.yaml"
    config.write_text(
        "services:\n"
        f"  - {{slug: erp, name: enventa ERP, type: ERP, endpoint: '{web.url('/health')}',"
        "      http: {headers: {Authorization: 'Bearer ${ERP_TOKEN}'}}}\n"
    )
    jobs_addr = await harness.jobs()
    health_addr = await harness.serve("health", build_health, harness.settings_for(HealthSettings, config_file=config))
    probes_addr = await harness.serve(
        "probes",
        build_probes,
        harness.settings_for(ProbesSettings, health_addr=health_addr, jobs_addr=jobs_addr),
    )
    url = await harness.gateway(jobs_addr=jobs_addr, health_addr=health_addr, probes_addr=probes_addr)
    return jobs_addr, probes_addr, url


async def test_a_jobs_failed_calls_are_communication_errors_linked_to_the_job(
    harness: ServiceHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("ERP_TOKEN", TOKEN)
    routes = {
        "/health": Route(200),
        "/articles": Route(
            503,
            "Service Unavailable",
            headers=[("Retry-After", "120"), ("Set-Cookie", f"session={TOKEN}")],
            body=json.dumps({"error": "maintenance", "api_key": ECHOED, "echo": f"Bearer {TOKEN}"}).encode(),
        ),
        "/stock": Route(hang=True),
        "/prices": Route(200, body=b'{"prices": []}'),
    }
    async with HttpTestServer(routes) as web:
        jobs_addr, probes_addr, url = await _stack(harness, tmp_path, web)
        outcomes: dict[str, str] = {}

        async with (
            JobMonitor(jobs_addr, WORKER, flush_interval=0.05) as monitor,
            CallReporter(probes_addr, WORKER, flush_interval=0.05) as calls,
        ):

            async def sync_articles(job: JobInfo, handle: JobHandle) -> None:
                handle.start(total_items=3)
                async with calls.client(job, "erp", base_url=web.url("/"), timeout=httpx.Timeout(5, read=0.3)) as erp:
                    answer = await erp.get("/articles", params={"token": TOKEN, "page": "1"},
                                           headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
                    outcomes["articles"] = str(answer.status_code)
                    handle.item_done(False)
                    try:
                        await erp.get("/stock")
                    except httpx.ReadTimeout:
                        outcomes["stock"] = "timeout"
                    handle.item_done(False)
                    outcomes["prices"] = str((await erp.get("/prices")).status_code)
                    handle.item_done()

            runner = WorkerRunner(monitor, {"ERP_ARTICLE_SYNC": sync_articles}, poll_interval=0.1)
            task = asyncio.create_task(runner.run())
            try:
                job = await monitor.create_job("ERP_ARTICLE_SYNC", tenant_id="tenant-a")
                other = await monitor.create_job("PIM_IMPORT", tenant_id="tenant-b")
                stub = harness.channel(jobs_addr)
                jobs = jobs_pb2_grpc.JobsServiceStub(stub)

                async def completed() -> jobs_pb2.SchedulerJob | None:
                    found = (await jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job.id))).job
                    return found if found.status == jobs_pb2.JOB_STATUS_COMPLETED else None

                done = await eventually(completed, what="the job to complete")
                await eventually(lambda: asyncio.sleep(0, calls.stats.reported >= 2), what="the failures reported")
            finally:
                runner.stop()
                await asyncio.wait_for(task, 30)

        # The job is unaffected: its calls answered as they did, it completed with its own counts.
        assert outcomes == {"articles": "503", "stock": "timeout", "prices": "200"}
        assert done.progress.processed_items == 3 and done.progress.failed_items == 2
        assert calls.stats.dropped == 0 and calls.stats.rejected == 0
        # Every request carried the job id.
        seen = [r for r in web.requests if r.target.split("?")[0] in ("/articles", "/stock", "/prices")]
        assert len(seen) == 3 and all(r.headers.get(JOB_ID_HEADER.lower()) == job.id for r in seen)

        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
        keys = KeyStore(pool)
        admin, _ = await keys.create("admin", Role.ADMIN)
        tenant_a, _ = await keys.create("a", Role.VIEWER, "tenant-a")
        tenant_b, _ = await keys.create("b", Role.VIEWER, "tenant-b")
        await pool.close()

        async with httpx.AsyncClient(timeout=10) as http:

            async def query(key: str, doc: str, variables: dict[str, object]) -> dict[str, object]:
                answer = await http.post(f"{url}/graphql", json={"query": doc, "variables": variables},
                                         headers={"Authorization": f"Bearer {key}"})  # fmt: skip
                return dict(answer.json())

            body = await query(admin, ERRORS, {"job": job.id})
            text = json.dumps(body)
            assert "errors" not in body, body
            page = body["data"]["communicationErrors"]  # type: ignore[index]
            assert page["totalCount"] == 2
            by_type = {e["errorType"]: e for e in page["errors"]}
            assert set(by_type) == {"SERVICE_UNAVAILABLE", "READ_TIMEOUT"}
            unavailable, timeout = by_type["SERVICE_UNAVAILABLE"], by_type["READ_TIMEOUT"]
            assert all(e["correlatedJobId"] == job.id and e["serviceId"] for e in page["errors"])
            assert unavailable["errorGroup"] == "SERVICE" and unavailable["errorCode"] == "HTTP_503"
            assert "Retry-After: 120" in unavailable["message"]
            assert unavailable["details"]["httpStatusCode"] == 503
            assert unavailable["details"]["httpMethod"] == "GET"
            assert "maintenance" in unavailable["details"]["responseBodySummary"]
            assert any("retry after 120" in r for r in unavailable["recommendations"])
            assert timeout["errorGroup"] == "TIMEOUT" and timeout["details"]["httpStatusCode"] is None
            assert "0.3 s" in timeout["message"]
            request_headers = {k.lower(): v for k, v in unavailable["details"]["requestHeaders"].items()}
            assert request_headers[JOB_ID_HEADER.lower()] == job.id
            # Secrets are masked everywhere: URL, request and response headers, the echoed body.
            assert TOKEN not in text and ECHOED not in text
            assert "/articles" in unavailable["details"]["endpointUrl"]
            assert "page=1" in unavailable["details"]["endpointUrl"]

            # Tenant scope: tenant-a sees its job's errors; tenant-b sees none of them, not even by id.
            mine = await query(tenant_a, ERRORS, {"job": job.id})
            assert mine["data"]["communicationErrors"]["totalCount"] == 2  # type: ignore[index]
            theirs = await query(tenant_b, ERRORS, {"job": job.id})
            assert theirs["data"]["communicationErrors"]["totalCount"] == 0  # type: ignore[index]
            everything = await query(tenant_b, ERRORS, {"job": None})
            assert all(e["correlatedJobId"] != job.id for e in everything["data"]["communicationErrors"]["errors"])  # type: ignore[index]
            hidden = await query(tenant_b, ONE, {"id": unavailable["id"]})
            assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"  # type: ignore[index]
            shown = await query(tenant_a, ONE, {"id": unavailable["id"]})
            assert shown["data"]["communicationError"]["correlatedJobId"] == job.id  # type: ignore[index]
            bad = await query(admin, ERRORS, {"job": "not-a-job"})
            assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"  # type: ignore[index]
            assert "correlated_job_id" in bad["errors"][0]["message"]  # type: ignore[index]

        # Bad reports are refused with the field named; another worker's job is not this worker's to report.
        probes = probes_pb2_grpc.ProbesServiceStub(harness.channel(probes_addr))

        def failure(**fields: object) -> probes_pb2.CallFailure:
            base: dict[str, object] = {
                "job_id": job.id, "service": "erp", "kind": probes_pb2.CALL_FAILURE_KIND_HTTP_STATUS,
                "http_method": "GET", "url": web.url("/articles"), "status_code": 503,
            }  # fmt: skip
            base.update(fields)
            msg = probes_pb2.CallFailure(**base)  # type: ignore[arg-type]
            msg.occurred_at.GetCurrentTime()
            return msg

        refused = [
            (probes_pb2.ReportCallFailuresRequest(worker_id="", failures=[failure()]), "INVALID_ARGUMENT", "worker_id"),
            (probes_pb2.ReportCallFailuresRequest(worker_id=WORKER), "INVALID_ARGUMENT", "failures"),
            (probes_pb2.ReportCallFailuresRequest(worker_id=WORKER, failures=[failure(job_id="x")]),
             "INVALID_ARGUMENT", "failures[0].job_id"),
            (probes_pb2.ReportCallFailuresRequest(worker_id=WORKER, failures=[failure(), failure(url="ftp://x")]),
             "INVALID_ARGUMENT", "failures[1].url"),
            (probes_pb2.ReportCallFailuresRequest(worker_id=WORKER, failures=[failure(status_code=200)]),
             "INVALID_ARGUMENT", "failures[0].status_code"),
            (probes_pb2.ReportCallFailuresRequest(worker_id=WORKER, failures=[failure(kind=99)]),
             "INVALID_ARGUMENT", "failures[0].kind"),
            (probes_pb2.ReportCallFailuresRequest(worker_id=WORKER, failures=[failure(service="")]),
             "INVALID_ARGUMENT", "failures[0].service"),
            (probes_pb2.ReportCallFailuresRequest(worker_id="intruder", failures=[failure()]),
             "PERMISSION_DENIED", WORKER),
            (probes_pb2.ReportCallFailuresRequest(worker_id=WORKER, failures=[failure(job_id=other.id)]),
             "FAILED_PRECONDITION", other.id),
            (probes_pb2.ReportCallFailuresRequest(worker_id=WORKER, failures=[failure(job_id=str(uuid.uuid4()))]),
             "NOT_FOUND", "job_id"),
            (probes_pb2.ReportCallFailuresRequest(worker_id=WORKER, failures=[failure(service="nope")]),
             "NOT_FOUND", "nope"),
        ]  # fmt: skip
        refused.append((probes_pb2.ReportCallFailuresRequest(worker_id=WORKER, failures=[failure(failure_id="x")]),
                        "INVALID_ARGUMENT", "failures[0].failure_id"))  # fmt: skip
        for request, code, named in refused:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await probes.ReportCallFailures(request, timeout=10)
            assert caught.value.code().name == code, (named, caught.value.details())
            assert named in (caught.value.details() or ""), (named, caught.value.details())

        # A report resent after its answer was lost is stored once, under the reporter's id.
        resent = probes_pb2.ReportCallFailuresRequest(
            worker_id=WORKER, failures=[failure(failure_id=str(uuid.uuid4()))]
        )
        first = await probes.ReportCallFailures(resent, timeout=10)
        again = await probes.ReportCallFailures(resent, timeout=10)
        assert list(first.error_ids) == list(again.error_ids) == [resent.failures[0].failure_id]
        page = await probes.ListCommunicationErrors(
            probes_pb2.ListCommunicationErrorsRequest(correlated_job_id=job.id), timeout=10
        )
        assert page.page_info.total_count == 3


async def test_demo_jobs_link_the_simulated_systems_faults_to_themselves(
    harness: ServiceHarness, tmp_path: Path, systems: dict[str, tuple[SimulatedSystem, str]]
) -> None:
    """The demo worker's jobs call the simulated PIM (503 burst) and CRM (expired token) through the SDK: each
    job fails as transient, and its failed call is a communication error linked to it, token masked."""
    urls = {slug: url for slug, (_, url) in systems.items()}
    for slug, fault in (("pim", Fault.UNAVAILABLE), ("crm", Fault.TOKEN_EXPIRED), ("erp", Fault.NONE)):
        simulated = systems[slug][0]
        simulated.behaviour = replace(simulated.behaviour, fault=lambda now, roll, f=fault: f)
    config = tmp_path / "services.yaml"
    config.write_text(
        "services:\n"
        + "".join(f"  - {{slug: {slug}, name: {slug.upper()}, type: {slug.upper()}, endpoint: '{url}/api/health'}}\n"
                  for slug, url in urls.items())
    )  # fmt: skip
    jobs_addr = await harness.jobs()
    health_addr = await harness.serve("health", build_health, harness.settings_for(HealthSettings, config_file=config))
    probes_addr = await harness.serve(
        "probes", build_probes, harness.settings_for(ProbesSettings, health_addr=health_addr, jobs_addr=jobs_addr)
    )
    jobs = jobs_pb2_grpc.JobsServiceStub(harness.channel(jobs_addr))
    probes = probes_pb2_grpc.ProbesServiceStub(harness.channel(probes_addr))
    async with (
        JobMonitor(jobs_addr, "demo-test-worker", flush_interval=0.05) as monitor,
        CallReporter(probes_addr, "demo-test-worker", flush_interval=0.05) as calls,
    ):
        remote = Remote(calls, urls)

        async def handler(job: JobInfo, handle: JobHandle) -> None:
            await run_job(job, handle, Fixed(0.5), remote)

        runner = WorkerRunner(monitor, dict.fromkeys(("PIM_IMPORT", "CRM_EXPORT", "ERP_STOCK_SYNC"), handler),
                              poll_interval=0.1)  # fmt: skip
        task = asyncio.create_task(runner.run())
        try:
            made = {t: await monitor.create_job(t, tenant_id="tenant-north", parameters={"items": 10})
                    for t in ("PIM_IMPORT", "CRM_EXPORT", "ERP_STOCK_SYNC")}  # fmt: skip

            async def finished() -> dict[str, jobs_pb2.SchedulerJob] | None:
                found = {t: (await jobs.GetJob(jobs_pb2.GetJobRequest(job_id=j.id))).job for t, j in made.items()}
                ended = (jobs_pb2.JOB_STATUS_COMPLETED, jobs_pb2.JOB_STATUS_FAILED)
                return found if all(j.status in ended for j in found.values()) else None

            done = await eventually(finished, what="the demo jobs to end")
            await eventually(lambda: asyncio.sleep(0, calls.stats.reported >= 2), what="the failures reported")
        finally:
            runner.stop()
            await asyncio.wait_for(task, 30)

    assert done["ERP_STOCK_SYNC"].status == jobs_pb2.JOB_STATUS_COMPLETED
    expected = {"PIM_IMPORT": probes_pb2.COMMUNICATION_ERROR_TYPE_SERVICE_UNAVAILABLE,
                "CRM_EXPORT": probes_pb2.COMMUNICATION_ERROR_TYPE_TOKEN_EXPIRED}  # fmt: skip
    for job_type, error_type in expected.items():
        job = done[job_type]
        assert job.status == jobs_pb2.JOB_STATUS_FAILED and "answered HTTP" in job.error_message
        page = await probes.ListCommunicationErrors(
            probes_pb2.ListCommunicationErrorsRequest(correlated_job_id=job.id), timeout=10
        )
        assert [(e.error_type, e.correlated_job_id, e.tenant_id) for e in page.errors] == [
            (error_type, job.id, "tenant-north")
        ]
        assert "demo-crm-token" not in str(page) and "demo-pim-token" not in str(page)
    erp_errors = await probes.ListCommunicationErrors(
        probes_pb2.ListCommunicationErrorsRequest(correlated_job_id=done["ERP_STOCK_SYNC"].id), timeout=10
    )
    assert not erp_errors.errors
