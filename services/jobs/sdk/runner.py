"""`WorkerRunner`: claims queued jobs of the types it has handlers for and runs them.

- Claims with `ClaimJobs` (the service locks rows with FOR UPDATE SKIP LOCKED, so several workers
  never take the same job), never holding more than `concurrency` jobs; claims again at once when a
  slot frees after a full claim, else polls every `poll_interval` (a claim that found fewer jobs than
  it asked for says the queue is empty: slots freeing before the next poll do not make it ask again).
- Runs each handler in a task of its own. When it returns the job is completed, when it raises the job is
  failed: `TransientJobError`, `ConnectionError`, `TimeoutError` and other `OSError`s as TRANSIENT
  (the service retries with backoff while attempts remain), anything else as PERMANENT. A handler
  that reported an outcome itself (`handle.complete()`, `fail()`, `cancelled()`) keeps it.
- A cancel request (seen by the monitor within about a heartbeat) sets the handle's cancel event,
  then cancels the handler's task; the job is reported CANCELLED when the handler has unwound.
- `stop()` is graceful: claiming stops, running handlers get `shutdown_grace` seconds to finish; the
  rest are cancelled and reported as TRANSIENT failures (category WORKER_SHUTDOWN), so the service
  queues their next attempt at once. Reporting them CANCELLED would read as an operator's decision
  and never be retried; leaving them to the reaper would keep them RUNNING for a heartbeat timeout.
- Sync handlers (plain functions) run in a thread pool of `concurrency` threads. A thread cannot be
  interrupted: such a handler should check `handle.stop_requested` between items and return.

A sync handler that does not return within `cancel_grace` seconds of its interruption is abandoned:
its job is reported anyway and its slot reused (the thread ends when the handler returns).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, cast

from services.common.logging import get_logger
from services.jobs.sdk.errors import JobsServiceUnavailable
from services.jobs.sdk.handle import JobHandle
from services.jobs.sdk.model import JobInfo
from services.jobs.sdk.monitor import JobMonitor, backoff

log = get_logger(__name__)

AsyncHandler = Callable[[JobInfo, JobHandle], Coroutine[Any, Any, None]]
SyncHandler = Callable[[JobInfo, JobHandle], None]
Handler = AsyncHandler | SyncHandler
MAX_CLAIM = 100  # the service's limit per ClaimJobs call


class WorkerRunner:
    """Runs handlers for claimed jobs: `await runner.run()` until `runner.stop()`."""

    def __init__(
        self,
        monitor: JobMonitor,
        handlers: Mapping[str, Handler],
        *,
        concurrency: int = 10,
        poll_interval: float = 1.0,
        shutdown_grace: float = 10.0,
        cancel_grace: float = 5.0,
    ) -> None:
        if not handlers:
            raise ValueError("handlers is empty: name at least one job type this worker runs")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1 (got {concurrency})")
        self.monitor = monitor
        self.concurrency = concurrency
        self.claimed = 0
        self._handlers = dict(handlers)
        self._is_async = {job_type: inspect.iscoroutinefunction(h) for job_type, h in self._handlers.items()}
        self._types = sorted(self._handlers)
        self._poll_interval = poll_interval
        self._shutdown_grace = shutdown_grace
        self._cancel_grace = cancel_grace
        self._running: dict[asyncio.Future[None], JobHandle] = {}
        self._changed = asyncio.Event()
        self._slot_wakes = True  # whether a job ending wakes the claiming loop's wait
        self._stopping = False
        self._abandoned = False
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._callback_context = contextvars.Context()

    @property
    def running(self) -> int:
        """Handlers running right now."""
        return len(self._running)

    def stop(self) -> None:
        """Stop claiming and let `run()` finish gracefully (see the module docstring)."""
        self._stopping = True
        self._changed.set()

    async def run(self) -> None:
        """Claim and run jobs until `stop()`; returns when every handler has ended."""
        failures = 0
        try:
            while not self._stopping:
                self._changed.clear()
                free = min(self.concurrency - len(self._running), MAX_CLAIM)
                if free > 0:
                    try:
                        handles = await self.monitor.claim(self._types, free)
                    except JobsServiceUnavailable as error:
                        failures += 1
                        if failures == 1 or failures % 50 == 0:
                            log.warning("cannot claim jobs; jobs service unreachable", error=str(error))
                        await self._wait(backoff(failures))
                        continue
                    failures = 0
                    for handle in handles:
                        self._launch(handle)
                    if len(handles) == free:
                        continue  # a full claim: more may be queued
                    # The queue is empty: jobs ending before the next poll need not make an empty claim
                    # each (they did, one after another, at the end of bench/sdk_overhead.py's runs).
                    await self._wait(self._poll_interval, slots=False)
                    continue
                await self._wait(self._poll_interval)
            await self._drain()
        finally:
            if self._running:  # run() was cancelled rather than stopped
                self._abandoned = True
                for work in list(self._running):
                    work.cancel()
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)

    async def _wait(self, seconds: float, *, slots: bool = True) -> None:
        """Wait `seconds`, less when stopped or (`slots`) when a running job ends. A timer sets the event:
        cheaper on every poll than a timeout, which cancels the wait and raises when it expires."""
        if self._stopping:
            return
        changed = self._changed
        if not slots:
            changed.clear()  # jobs that ended during the claim do not count either
        if changed.is_set():
            return
        self._slot_wakes = slots
        timer = asyncio.get_running_loop().call_later(seconds, changed.set)
        try:
            await changed.wait()
        finally:
            timer.cancel()
            self._slot_wakes = True

    async def _drain(self) -> None:
        if not self._running:
            return
        _, pending = await asyncio.wait(set(self._running), timeout=self._shutdown_grace)
        if not pending:
            return
        log.warning("shutdown grace over; stopping the jobs still running", jobs=len(pending))
        for work in pending:
            self._running[work]._track.interrupt()
        await asyncio.wait(pending, timeout=self._cancel_grace + 1)

    def _launch(self, handle: JobHandle) -> None:
        # The handler's own task (or thread) is the job's only task, and its end is handled in a
        # done callback: no wrapper coroutine that every step of every job would pass through.
        self.claimed += 1
        job = handle.job
        assert job is not None, "claimed handles always carry their job"
        handler = self._handlers.get(job.job_type)
        if handler is None:
            handle.fail(f"this worker has no handler for job type {job.job_type}", transient=True)
            return
        loop = asyncio.get_running_loop()
        work: asyncio.Future[None]
        if self._is_async[job.job_type]:
            work = loop.create_task(cast(AsyncHandler, handler)(job, handle), name=f"job:{job.id}")
            handle._track.on_interrupt = work  # the task itself, not a bound method: one object less per job
        else:
            work = loop.run_in_executor(self._pool(), functools.partial(cast(SyncHandler, handler), job, handle))
            # A thread cannot be interrupted: its handler sees handle.stop_requested and returns;
            # the wait for it is given up `cancel_grace` seconds after the interruption.
            handle._track.on_interrupt = functools.partial(loop.call_later, self._cancel_grace, work.cancel)
        self._running[work] = handle
        # One shared context for these callbacks instead of a copy of the current one per job.
        work.add_done_callback(self._finished, context=self._callback_context)

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(self.concurrency, thread_name_prefix="job-handler")
        return self._executor

    def _finished(self, work: asyncio.Future[None]) -> None:
        handle = self._running.pop(work)
        handle._track.on_interrupt = None
        if self._slot_wakes:
            self._changed.set()
        if self._abandoned:
            return  # run() itself was cancelled: no report, the reaper takes over
        try:
            self._report(handle, work)
        except Exception:
            log.exception("could not report the end of a job", job_id=handle.job_id)

    def _report(self, handle: JobHandle, work: asyncio.Future[None]) -> None:
        if handle.outcome is not None or handle.rejected is not None:
            return  # the handler reported itself, or the service gave the job up
        if handle.stop_requested and handle.cancel_requested:
            handle.cancelled("stopped by the worker after a cancel request")
        elif handle.stop_requested:
            handle.fail(
                f"worker {self.monitor.worker_id} shut down before the job finished",
                category="WORKER_SHUTDOWN",
                transient=True,
            )
        elif work.cancelled():
            handle.cancelled("the handler cancelled itself")
        elif (error := work.exception()) is not None:
            handle.fail(error)
        else:
            handle.complete()
