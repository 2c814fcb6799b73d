"""The worker side of bench.live_latency: many jobs doing CPU-bound items, reporting through the SDK.

`python -m bench.live_worker JOBS_ADDR JOBS ITEMS OUT.json [IDS.json]` runs JOBS concurrent jobs of ITEMS items of
~100 µs CPU each, calls `progress()` after every item, and records the wall time at which each job
crossed every multiple of 100 items (what makes the SDK send a report) into OUT.json. With IDS.json it
writes the created jobs' ids there and waits 3 s before running them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from services.jobs.sdk import JobMonitor

ITEM_SECONDS = 100e-6


def _calibrate() -> int:
    loops = 1000
    while True:
        started = time.process_time()
        x = 0
        for i in range(loops):
            x += i * i
        took = time.process_time() - started
        if took > 0.02:
            return max(1, int(loops * ITEM_SECONDS / took))
        loops *= 2


async def _job(
    monitor: JobMonitor, job_id: str, items: int, loops: int, crossings: list[tuple[str, int, float]]
) -> None:
    handle = monitor.attach(job_id)
    handle.start(total_items=items)
    for n in range(1, items + 1):
        x = 0
        for i in range(loops):  # ~100 µs of CPU
            x += i * i
        handle.progress(n, succeeded=n)
        if n % 100 == 0:
            crossings.append((job_id, n, time.time()))
        await asyncio.sleep(0)  # after every item, as in bench/sdk_overhead.py: the other jobs and the SDK run
    handle.complete()


async def main(jobs_addr: str, jobs: int, items: int, out: str, ids_out: str = "") -> None:
    loops = _calibrate()
    crossings: list[tuple[str, int, float]] = []
    # Reports only by count (every 100 items), never by time: on a starved machine a job can take more than
    # the default 30 s for 100 items, and a report by time would shift every later report off the multiples
    # of 100 this benchmark times (it matches each report to the crossing that made it due).
    async with JobMonitor(jobs_addr, worker_id="bench-live", max_report_interval=3600) as monitor:
        created = [
            (await monitor.create_job("BENCH_LIVE", tenant_id="bench", total_items=items)).id for _ in range(jobs)
        ]
        if ids_out:  # the benchmark's subscribers watch some of them, as the dashboard's job table does
            partial = Path(f"{ids_out}.part")
            partial.write_text(json.dumps(created), encoding="utf-8")  # noqa: ASYNC240 - once, before the jobs run
            partial.rename(ids_out)  # noqa: ASYNC240 - whole or not at all for the reader
            await asyncio.sleep(3.0)  # their subscriptions are made meanwhile
        await asyncio.gather(*(_job(monitor, job_id, items, loops, crossings) for job_id in created))
    if os.environ.get("B2X_BENCH_DEBUG"):
        print("worker monitor stats:", monitor.stats, file=sys.stderr)
    Path(out).write_text(json.dumps({"crossings": crossings, "loops": loops}), encoding="utf-8")  # noqa: ASYNC240 - once, at the end


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], *sys.argv[5:6]))
