"""The gateway's dashboard routes: the CSV export of the job list, and the page served without a build."""

from __future__ import annotations

import csv
import io

from b2x.monitoring.v1 import jobs_pb2

from tests.gateway.conftest import Gateway

T = 10


async def test_the_csv_export_holds_every_matching_job_in_scope_and_defuses_formulas(gw: Gateway) -> None:
    """All 520 jobs of a type come back across the service's pages of 500; a tenant key gets its tenant's only;
    an error text starting with '=' is exported as text, not a spreadsheet formula."""
    for i in range(520):
        await gw.jobs.CreateJob(
            jobs_pb2.CreateJobRequest(job_type="PIM_IMPORT", tenant_id="tenant-a" if i % 2 else "tenant-b"), timeout=T
        )
    bad = (
        await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="CRM_EXPORT", tenant_id="tenant-a"), timeout=T)
    ).job
    await gw.jobs.FailJob(jobs_pb2.FailJobRequest(job_id=bad.id, error_message='=HYPERLINK("x")'), timeout=T)

    response = await gw.http.get(
        f"{gw.url}/api/jobs.csv", params={"type": "PIM_IMPORT"}, headers={"Authorization": f"Bearer {gw.viewer}"}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-row-count"] == "520"
    assert 'attachment; filename="jobs-' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 520 and {r["job_type"] for r in rows} == {"PIM_IMPORT"}
    assert len({r["id"] for r in rows}) == 520

    scoped = await gw.http.get(f"{gw.url}/api/jobs.csv", headers={"Authorization": f"Bearer {gw.tenant_viewer}"})
    scoped_rows = list(csv.DictReader(io.StringIO(scoped.text)))
    assert len(scoped_rows) == 261 and {r["tenant_id"] for r in scoped_rows} == {"tenant-a"}
    failed = next(r for r in scoped_rows if r["id"] == bad.id)
    assert failed["status"] == "FAILED" and failed["error_message"] == '\'=HYPERLINK("x")'


async def test_the_csv_export_needs_a_key_and_says_what_is_wrong(gw: Gateway) -> None:
    """No key: 401 UNAUTHENTICATED; an unknown status or a malformed time: 400 BAD_USER_INPUT naming it."""
    response = await gw.http.get(f"{gw.url}/api/jobs.csv")
    assert response.status_code == 401 and response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    auth = {"Authorization": f"Bearer {gw.viewer}"}
    response = await gw.http.get(f"{gw.url}/api/jobs.csv", params={"status": "SLEEPING"}, headers=auth)
    assert response.status_code == 400 and "unknown status 'SLEEPING'" in response.json()["errors"][0]["message"]
    response = await gw.http.get(f"{gw.url}/api/jobs.csv", params={"from": "yesterday"}, headers=auth)
    assert response.status_code == 400 and "from must be an ISO time" in response.json()["errors"][0]["message"]
