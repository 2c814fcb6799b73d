"""What the Job SDK costs a worker: `python -m bench.sdk_overhead [--jobs 1000] [--items 250] [--rounds 3]`.

DESIGN.md's budget: 1000 concurrent jobs in one worker process, items of ~100 µs CPU each, the
SDK's progress called once per item: monitoring may add at most 1 % to the worker's CPU time
(user + sys, the SDK's background sending and gRPC's threads included); the seed allows 5 %.

It starts what it needs (PostgreSQL and Redis through bench.support, embedded unless
B2X_BENCH_DATABASE_URL / B2X_BENCH_REDIS_URL are set, and a jobs service process), calibrates a
busy loop to the item cost, then runs worker processes in rounds, alternating which goes first: a
baseline running the jobs as plain asyncio tasks, and the same jobs claimed and reported through
`WorkerRunner` and `JobMonitor` (`handle.progress()` once per item).

How it compares: a shared VM's speed moves by tens of percent between runs, far more than the 1 %
to measure, so raw CPU seconds of two runs are not comparable. Each worker therefore times every
item with the thread's CPU clock, which gives the CPU its items cost *in that run*; the figure
compared is worker CPU divided by item CPU, and the overhead is the SDK run's figure over the
baseline's (the clock reads cost the same in both runs; timing only every 64th item, as before,
left the baseline's figure moving by ±0.3 % from round to round, timing all by ±0.02 %).
The SDK worker also meters its background tasks step by step and counts the garbage collector, so
the report says where the SDK's CPU went. Results: a table on stdout and
bench/results/sdk_overhead.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import psutil
from b2x.monitoring.v1 import jobs_pb2, jobs_pb2_grpc

from bench.support import Process, begin, fmt_spread, machine, save, servers, spread, stack_env
from services.common.logging import configure_logging
from services.jobs.sdk import JobHandle, JobInfo, JobMonitor, WorkerRunner
from services.jobs.sdk.tracking import Outbox

ROOT = Path(__file__).resolve().parent.parent


# -- the worker side (a separate process per run) ----------------------------------------------------


def busy(loops: int) -> int:
    """CPU work standing in for one item (parsing, mapping, validating a record)."""
    total = 0
    for n in range(loops):
        total += n
    return total


class Items:
    """Runs the items of a worker and times each with the thread's CPU clock.

    The VM this runs on changes speed by tens of percent from one minute to the next, so raw CPU
    seconds of two runs cannot be compared to 1 %. The timed items say how fast the machine was
    during *this* run; a run's CPU divided by its item CPU can be compared.
    """

    def __init__(self, loops: int) -> None:
        self.loops = loops
        self.count = 0
        self.item_cpu = 0.0

    def run(self) -> None:
        self.count += 1
        started = time.thread_time()
        busy(self.loops)
        self.item_cpu += time.thread_time() - started

    def result(self, cpu_s: float, wall_s: float) -> dict[str, Any]:
        item_cpu = self.item_cpu
        return {"cpu_s": cpu_s, "wall_s": wall_s, "items": self.count, "item_cpu_s": item_cpu,
                "cpu_per_item_cpu": cpu_s / item_cpu if item_cpu else 0.0}  # fmt: skip


def calibrate(item_us: float) -> int:
    """Loop count for `item_us` microseconds of CPU on this machine."""
    loops = 2000
    while True:
        started = time.process_time()
        for _ in range(200):
            busy(loops)
        spent = (time.process_time() - started) / 200
        if spent > 20e-6:
            return max(1, round(loops * item_us * 1e-6 / spent))
        loops *= 4


class GcClock:
    """Time spent in the garbage collector (both kinds of worker allocate differently)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self.by_generation: dict[int, float] = {}
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            spent = time.thread_time() - self._started
            self.seconds += spent
            self.collections += 1
            generation = info["generation"]
            self.by_generation[generation] = self.by_generation.get(generation, 0.0) + spent


class TaskMeter:
    """CPU of the SDK's background tasks (monitor, claiming loop, gRPC calls), measured per step.

    Installed as the event loop's task factory in the SDK worker. The jobs' own tasks (the handler)
    are left alone: their SDK part is `progress()`, priced by `call_costs`; the runner's callback
    that reports a job's end is not counted either (a few µs per job). Two clock reads per step of
    a few thousand steps: far below what it measures.
    """

    def __init__(self, skip: set[str]) -> None:
        self.cpu: dict[str, float] = {}
        self._skip = skip

    def factory(
        self, loop: asyncio.AbstractEventLoop, coro: Any, context: contextvars.Context | None = None
    ) -> asyncio.Task[Any]:
        name = getattr(coro, "__qualname__", type(coro).__name__)
        body = coro if name in self._skip else self._metered(coro, name)
        return asyncio.Task(body, loop=loop, context=context)

    async def _metered(self, coro: Any, name: str) -> Any:
        return await _Steps(coro, self.cpu, name)


class _Steps:
    def __init__(self, coro: Any, totals: dict[str, float], name: str) -> None:
        self._coro, self._totals, self._name = coro, totals, name

    def __await__(self) -> Generator[Any, Any, Any]:
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.thread_time()
            try:
                yielded = self._coro.throw(error) if error is not None else self._coro.send(value)
            except StopIteration as stop:
                self._add(started)
                return stop.value
            except BaseException:
                self._add(started)
                raise
            self._add(started)
            try:
                value, error = (yield yielded), None
            except BaseException as exc:  # handed to the coroutine, as the task would
                value, error = None, exc

    def _add(self, started: float) -> None:
        self._totals[self._name] = self._totals.get(self._name, 0.0) + time.thread_time() - started


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def split_cpu() -> dict[str, float]:
    """Where a worker's CPU beyond the items goes: the main thread's user and system time, the system
    time of all threads, and how often the main thread was switched out (voluntarily: it waited, for the
    GIL that another thread held)."""
    main, process = resource.getrusage(resource.RUSAGE_THREAD), resource.getrusage(resource.RUSAGE_SELF)
    return {"main_user_s": main.ru_utime, "main_sys_s": main.ru_stime, "process_sys_s": process.ru_stime,
            "main_switches": main.ru_nvcsw + main.ru_nivcsw, "main_voluntary_switches": main.ru_nvcsw}  # fmt: skip


def _since(before: dict[str, float]) -> dict[str, float]:
    return {key: value - before[key] for key, value in split_cpu().items()}


def other_threads_cpu() -> float:
    """CPU of this process's threads other than the main one (gRPC's, the thread pool's)."""
    main = os.getpid()  # on Linux the main thread's id is the process id
    return sum(t.user_time + t.system_time for t in psutil.Process().threads() if t.id != main)


def call_costs() -> dict[str, float]:
    """Nanoseconds per progress() and item_done() call, against an empty loop."""
    handle = JobHandle("00000000-0000-4000-8000-000000000000", Outbox(10), started=True)
    calls = 2_000_000
    progress = handle.progress
    item_done = handle.item_done
    started = time.perf_counter_ns()
    for _ in range(calls):
        pass
    empty = time.perf_counter_ns() - started
    started = time.perf_counter_ns()
    for n in range(calls):
        progress(n)
    with_progress = time.perf_counter_ns() - started
    started = time.perf_counter_ns()
    for _ in range(calls):
        item_done()
    with_item_done = time.perf_counter_ns() - started
    return {
        "progress_ns": (with_progress - empty) / calls,
        "item_done_ns": (with_item_done - empty) / calls,
    }


async def run_baseline(jobs: int, items: int, loops: int) -> dict[str, Any]:
    work = Items(loops)

    async def job() -> None:
        for _ in range(items):
            work.run()
            await asyncio.sleep(0)  # let the other jobs run, as a real async job would at its I/O

    started_cpu, started, threads, split = cpu_seconds(), time.monotonic(), other_threads_cpu(), split_cpu()
    await asyncio.gather(*(job() for _ in range(jobs)))
    result = work.result(cpu_seconds() - started_cpu, time.monotonic() - started)
    result["other_threads_cpu_s"] = other_threads_cpu() - threads
    result.update(_since(split))
    return result


async def run_sdk(address: str, job_type: str, jobs: int, items: int, loops: int) -> dict[str, Any]:
    work = Items(loops)
    finished = 0
    all_done = asyncio.Event()
    meter = TaskMeter(skip={"run_sdk.<locals>.handler"})
    asyncio.get_running_loop().set_task_factory(meter.factory)

    async def handler(job: JobInfo, handle: JobHandle) -> None:
        nonlocal finished
        handle.start(total_items=items)
        for n in range(1, items + 1):
            work.run()
            handle.progress(n, succeeded=n)
            await asyncio.sleep(0)
        finished += 1
        if finished == jobs:
            all_done.set()

    monitor = JobMonitor(address, f"bench-worker-{os.getpid()}")
    await monitor.start()
    runner = WorkerRunner(monitor, {job_type: handler}, concurrency=jobs, poll_interval=0.2)
    started_cpu, started, threads, split = cpu_seconds(), time.monotonic(), other_threads_cpu(), split_cpu()
    running = asyncio.create_task(runner.run())
    await all_done.wait()
    runner.stop()
    await running
    await monitor.close(timeout=60)
    result = work.result(cpu_seconds() - started_cpu, time.monotonic() - started)
    result["other_threads_cpu_s"] = other_threads_cpu() - threads
    result.update(_since(split))
    result["stats"] = vars(monitor.stats)
    result["sdk_tasks_cpu_s"] = dict(sorted(meter.cpu.items(), key=lambda kv: -kv[1]))
    return result


def worker_main(args: argparse.Namespace) -> None:
    configure_logging("bench-worker", "WARNING")  # as a production worker would run
    collector = GcClock()
    if args.worker == "baseline":
        result = asyncio.run(run_baseline(args.jobs, args.items, args.loops))
    else:
        result = asyncio.run(run_sdk(args.address, args.job_type, args.jobs, args.items, args.loops))
    result["gc_s"], result["gc_collections"] = collector.seconds, collector.collections
    result["gc_by_generation"] = collector.by_generation
    print(json.dumps(result), flush=True)


# -- the parent side: the stack, the rounds, the figures ---------------------------------------------


@contextlib.contextmanager
def stack() -> Iterator[tuple[str, Process, list[psutil.Process]]]:
    """PostgreSQL, Redis and a jobs service process; yields its address and the processes to watch."""
    with servers() as srv:
        env, ports = stack_env(srv, B2X_NAMESPACE=f"bench{os.getpid()}")
        jobs = Process("services.jobs", env, ports["jobs"])
        try:
            address = f"127.0.0.1:{ports['jobs']}"
            asyncio.run(_wait_serving(address))
            yield address, jobs, _postmaster(srv.database_url)
        finally:
            jobs.stop()


def _postmaster(database_url: str) -> list[psutil.Process]:
    """The PostgreSQL server process listening on the URL's port (its backends are its children)."""
    port = str(urlsplit(database_url).port or 5432)
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and "-p" in cmdline and port in cmdline:
            return [process]
    return []  # an external server on another machine: its CPU is not ours to see


async def _wait_serving(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = jobs_pb2_grpc.JobsServiceStub(channel)
        for _ in range(600):
            with contextlib.suppress(grpc.aio.AioRpcError):
                await stub.CountJobs(jobs_pb2.CountJobsRequest(), timeout=1)
                return
            await asyncio.sleep(0.1)
    raise RuntimeError("the jobs service did not answer within 60 s")


async def _create_jobs(address: str, job_type: str, jobs: int, items: int) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = jobs_pb2_grpc.JobsServiceStub(channel)
        for first in range(0, jobs, 100):
            await asyncio.gather(*(
                stub.CreateJob(jobs_pb2.CreateJobRequest(job_type=job_type, tenant_id="bench", total_items=items),
                               timeout=30)
                for _ in range(first, min(jobs, first + 100))
            ))  # fmt: skip


async def _verify(address: str, job_type: str, jobs: int, items: int) -> str:
    """ "" when every job COMPLETED with exact counts, else what is wrong."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = jobs_pb2_grpc.JobsServiceStub(channel)
        done: list[jobs_pb2.SchedulerJob] = []
        token = ""
        while True:
            request = jobs_pb2.ListJobsRequest(filter=jobs_pb2.JobFilter(job_types=[job_type]))
            request.page.page_size = 500
            request.page.page_token = token
            page = await stub.ListJobs(request, timeout=30)
            done.extend(page.jobs)
            token = page.page_info.next_page_token
            if not token:
                break
    wrong = [j.id for j in done if j.status != jobs_pb2.JOB_STATUS_COMPLETED or j.progress.processed_items != items]
    if len(done) != jobs or wrong:
        return f"{len(done)} jobs found, {len(wrong)} not COMPLETED with {items} items"
    return ""


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        for each in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = each.cpu_times()
                total += times.user + times.system
    return total


def run_worker(args: argparse.Namespace, mode: str, loops: int, address: str, job_type: str) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "bench.sdk_overhead", "--worker", mode, "--jobs", str(args.jobs),
        "--items", str(args.items), "--loops", str(loops), "--address", address, "--job-type", job_type,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} worker failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> int:
    begin("sdk_overhead")  # the machine and its load before the run
    args = parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0
    loops = calibrate(args.item_us)
    costs = call_costs()
    print(f"item: {loops} loop iterations ≈ {args.item_us:.0f} µs CPU; progress() {costs['progress_ns']:.0f} ns, "
          f"item_done() {costs['item_done_ns']:.0f} ns per call")  # fmt: skip
    rounds: list[dict[str, Any]] = []
    with stack() as (address, jobs_proc, db):
        for number in range(1, args.rounds + 1):
            job_type = f"BENCH_ITEMS_{number}"
            asyncio.run(_create_jobs(address, job_type, args.jobs, args.items))
            runs: dict[str, Any] = {}
            # Alternate the order so slow drift of the machine does not favour one side.
            for mode in ("baseline", "sdk") if number % 2 else ("sdk", "baseline"):
                service_before, db_before = jobs_proc.cpu_seconds(), _cpu(db)
                runs[mode] = run_worker(args, mode, loops, address, job_type)
                runs[mode]["jobs_service_cpu_s"] = jobs_proc.cpu_seconds() - service_before
                runs[mode]["postgres_cpu_s"] = _cpu(db) - db_before
            problem = asyncio.run(_verify(address, job_type, args.jobs, args.items))
            if problem:
                raise RuntimeError(f"round {number}: {problem}")
            base, sdk = runs["baseline"], runs["sdk"]
            runs["overhead_pct"] = 100 * (sdk["cpu_per_item_cpu"] / base["cpu_per_item_cpu"] - 1)
            runs["raw_overhead_pct"] = 100 * (sdk["cpu_s"] / base["cpu_s"] - 1)
            own = sum(sdk["sdk_tasks_cpu_s"].values()) + args.jobs * args.items * costs["progress_ns"] * 1e-9
            own += max(0.0, sdk["gc_s"] - base["gc_s"])
            runs["direct_overhead_pct"] = 100 * own / sdk["item_cpu_s"]
            rounds.append(runs)
            print(f"round {number}: CPU per item CPU {base['cpu_per_item_cpu']:.4f} without, "
                  f"{sdk['cpu_per_item_cpu']:.4f} with the SDK: overhead {runs['overhead_pct']:+.2f} % "
                  f"(raw CPU {base['cpu_s']:.1f} s vs {sdk['cpu_s']:.1f} s)")  # fmt: skip
    report = summarize(args, loops, costs, rounds)
    path = save("sdk_overhead", report)
    report["machine"] = machine()
    print_table(report)
    print(f"written to {path.relative_to(ROOT)}")
    return 0 if report["overhead_pct"] <= args.budget_pct else 1


def summarize(
    args: argparse.Namespace, loops: int, costs: dict[str, float], rounds: list[dict[str, Any]]
) -> dict[str, Any]:
    def mean(mode: str, key: str) -> float:
        return statistics.fmean(r[mode][key] for r in rounds)

    calls = args.jobs * args.items
    stats = {key: statistics.fmean(r["sdk"]["stats"][key] for r in rounds) for key in rounds[0]["sdk"]["stats"]}
    baseline_ratio, sdk_ratio = mean("baseline", "cpu_per_item_cpu"), mean("sdk", "cpu_per_item_cpu")
    names = {name for r in rounds for name in r["sdk"]["sdk_tasks_cpu_s"]}
    tasks = {name: statistics.fmean(r["sdk"]["sdk_tasks_cpu_s"].get(name, 0.0) for r in rounds) for name in names}
    calls_cpu = calls * costs["progress_ns"] * 1e-9
    gc_extra = max(0.0, mean("sdk", "gc_s") - mean("baseline", "gc_s"))
    direct = sum(tasks.values()) + calls_cpu + gc_extra
    return {
        "parameters": {
            "jobs": args.jobs,
            "items_per_job": args.items,
            "item_us": args.item_us,
            "loops": loops,
            "rounds": args.rounds,
            "progress_calls_per_run": calls,
        },
        "call_cost_ns": costs,
        # Headline: worker CPU per CPU spent on the items themselves, SDK run against baseline run.
        "overhead_pct": 100 * (sdk_ratio / baseline_ratio - 1),
        "overhead_pct_per_round": [r["overhead_pct"] for r in rounds],
        "overhead_pct_spread": spread([r["overhead_pct"] for r in rounds]),
        "direct_overhead_pct_per_round": [r["direct_overhead_pct"] for r in rounds],
        "direct_overhead_pct_spread": spread([r["direct_overhead_pct"] for r in rounds]),
        "baseline_cpu_per_item_cpu": baseline_ratio,
        "sdk_cpu_per_item_cpu": sdk_ratio,
        # Raw CPU seconds: on a shared VM they move with the host's load, see the module docstring.
        "baseline_cpu_s": mean("baseline", "cpu_s"),
        "sdk_cpu_s": mean("sdk", "cpu_s"),
        "raw_overhead_pct_per_round": [r["raw_overhead_pct"] for r in rounds],
        "progress_calls_share_pct": 100 * calls * costs["progress_ns"] * 1e-9 / mean("baseline", "item_cpu_s"),
        "baseline_gc_s": mean("baseline", "gc_s"),
        "baseline_process_sys_s": mean("baseline", "process_sys_s"),
        "sdk_process_sys_s": mean("sdk", "process_sys_s"),
        "sdk_other_threads_cpu_s": mean("sdk", "other_threads_cpu_s"),
        "baseline_main_waits": mean("baseline", "main_voluntary_switches"),
        "sdk_main_waits": mean("sdk", "main_voluntary_switches"),
        "sdk_gc_s": mean("sdk", "gc_s"),
        "baseline_wall_s": mean("baseline", "wall_s"),
        "sdk_wall_s": mean("sdk", "wall_s"),
        "sdk_stats_per_run": stats,
        # Where the SDK's CPU went, measured inside the SDK run (no baseline, so no machine drift).
        "sdk_tasks_cpu_s": tasks,
        "direct_overhead_pct": 100 * direct / mean("sdk", "item_cpu_s"),
        "jobs_service_cpu_s": mean("sdk", "jobs_service_cpu_s"),
        "postgres_cpu_s": mean("sdk", "postgres_cpu_s"),
        "budget_pct": args.budget_pct,
        "rounds": rounds,
    }


def print_table(report: dict[str, Any]) -> None:
    stats = report["sdk_stats_per_run"]
    rows = [
        ("overhead (budget ≤ 1 %, seed < 5 %)", f"{report['overhead_pct']:+.2f} %"),
        ("  per round", ", ".join(f"{p:+.2f} %" for p in report["overhead_pct_per_round"])),
        ("  min / median / max", fmt_spread(report["overhead_pct_per_round"], " %", 2)),
        ("  of which progress() calls", f"{report['progress_calls_share_pct']:.2f} %"),
        ("worker CPU / item CPU without SDK", f"{report['baseline_cpu_per_item_cpu']:.4f}"),
        ("worker CPU / item CPU with SDK", f"{report['sdk_cpu_per_item_cpu']:.4f}"),
        ("raw worker CPU without / with SDK", f"{report['baseline_cpu_s']:.2f} s / {report['sdk_cpu_s']:.2f} s"),
        ("  raw difference per round", ", ".join(f"{p:+.2f} %" for p in report["raw_overhead_pct_per_round"])),
        ("garbage collector without / with SDK", f"{report['baseline_gc_s']:.3f} s / {report['sdk_gc_s']:.3f} s"),
        (
            "system CPU without / with SDK",
            f"{report['baseline_process_sys_s']:.3f} s / {report['sdk_process_sys_s']:.3f} s",
        ),
        ("other threads' CPU with SDK", f"{report['sdk_other_threads_cpu_s']:.3f} s (gRPC's, the sender thread)"),
        (
            "main thread's waits without / with SDK",
            f"{report['baseline_main_waits']:.0f} / {report['sdk_main_waits']:.0f} (the GIL held by another thread)",
        ),
        ("SDK CPU measured in the SDK run", f"{report['direct_overhead_pct']:.2f} % of the items' CPU (goal ≤ 0.5 %)"),
        ("  min / median / max", fmt_spread(report["direct_overhead_pct_per_round"], " %", 2)),
        *(
            (f"  {name}", f"{cpu:.3f} s")
            for name, cpu in sorted(report["sdk_tasks_cpu_s"].items(), key=lambda kv: -kv[1])
        ),
        ("  progress() calls, GC beyond baseline", "included"),
        ("progress() calls per run", f"{report['parameters']['progress_calls_per_run']:,}"),
        ("progress reports sent", f"{stats['progress_reports']:,.0f}"),
        ("ReportBatch calls (of them heartbeats)", f"{stats['batches']:,.0f} ({stats['heartbeats']:,.0f})"),
        ("jobs service CPU during the SDK run", f"{report['jobs_service_cpu_s']:.2f} s"),
        ("PostgreSQL CPU during the SDK run", f"{report['postgres_cpu_s']:.2f} s"),
        ("wall time without / with SDK", f"{report['baseline_wall_s']:.1f} s / {report['sdk_wall_s']:.1f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    machine_info = report["machine"]
    print(f"\nSDK overhead: {report['parameters']['jobs']} jobs x {report['parameters']['items_per_job']} items, "
          f"{machine_info['cpus']} CPUs ({machine_info['cpu']}), Python {machine_info['python']}")  # fmt: skip
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sdk_overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="concurrent jobs in the worker (default 1000)")
    parser.add_argument("--items", type=int, default=250, help="items per job (default 250)")
    parser.add_argument("--item-us", type=float, default=100.0, help="CPU per item in µs (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="baseline/SDK pairs (default 3)")
    parser.add_argument("--budget-pct", type=float, default=1.0, help="exit 1 above this overhead")
    parser.add_argument("--worker", choices=("baseline", "sdk"), help=argparse.SUPPRESS)
    parser.add_argument("--loops", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--address", default="", help=argparse.SUPPRESS)
    parser.add_argument("--job-type", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
