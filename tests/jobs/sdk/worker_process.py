"""A worker process for tests that kill it: `python -m tests.jobs.sdk.worker_process ADDRESS WORKER_ID`.

It runs ERP_ARTICLE_SYNC jobs slowly (an item every 20 ms, 100 000 items), so a test can kill it
mid-job. It prints `claimed JOB_ID` when a handler starts.
"""

from __future__ import annotations

import asyncio
import sys

from services.jobs.sdk import JobHandle, JobInfo, JobMonitor, WorkerRunner


async def slow_sync(job: JobInfo, handle: JobHandle) -> None:
    print(f"claimed {job.id}", flush=True)
    handle.start(total_items=100_000)
    handle.info("syncing articles", attempt=job.attempt)
    for _ in range(100_000):
        await asyncio.sleep(0.02)
        handle.item_done()


async def main(address: str, worker_id: str) -> None:
    async with JobMonitor(address, worker_id, flush_interval=0.05) as monitor:
        await WorkerRunner(monitor, {"ERP_ARTICLE_SYNC": slow_sync}, poll_interval=0.1).run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
