"""Counts beyond 32 bits travel through GraphQL exactly (the `Long` scalar)."""

from __future__ import annotations

from b2x.monitoring.v1 import jobs_pb2

from tests.gateway.conftest import Gateway

BIG = 5_000_000_000  # items of a real bulk export: beyond a GraphQL Int, far below 2^53


async def test_job_counts_above_two_billion_are_listed_and_shown_exactly(gw: Gateway) -> None:
    """A job with five billion items appears in `jobs` and `job` with its exact counts instead of an error."""
    job = (
        await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC", total_items=BIG), timeout=10)
    ).job
    await gw.jobs.StartJob(jobs_pb2.StartJobRequest(job_id=job.id, worker_id="w-1"), timeout=10)
    await gw.jobs.ReportProgress(
        jobs_pb2.ReportProgressRequest(job_id=job.id, worker_id="w-1", processed_items=BIG - 1, sequence=3), timeout=10
    )
    fields = "progress { totalItems processedItems } logSequence"
    listed = (await gw.query(gw.viewer, f"{{ jobs(first: 5) {{ nodes {{ {fields} }} }} }}")).json()
    assert "errors" not in listed, listed
    assert listed["data"]["jobs"]["nodes"][0]["progress"] == {"totalItems": BIG, "processedItems": BIG - 1}
    shown = (await gw.query(gw.viewer, f'{{ job(id: "{job.id}") {{ {fields} }} }}')).json()
    assert shown["data"]["job"]["progress"]["totalItems"] == BIG
    created = (
        await gw.query(
            gw.operator,
            'mutation($n: Long!) { createJob(input: {jobType: "X", totalItems: $n}) { progress { totalItems } } }',
            {"n": BIG},
        )
    ).json()
    assert created["data"]["createJob"]["progress"]["totalItems"] == BIG
