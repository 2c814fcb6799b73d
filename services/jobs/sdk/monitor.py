"""`JobMonitor`: one per worker process; owns the channel to the jobs service and the task that reports.

The background task runs a round when a handle asks for attention (a start, a step, an outcome, a
report due by count: the first of them wakes it) and otherwise every `flush_interval`. A round takes
the new log lines, the jobs that asked for attention or were held back, and once per scan interval
(a tenth of `max_report_interval`, at most 5 s) the jobs due by the time rule. It sends it all in one
`ReportBatch` and applies the answer: acknowledged parts are forgotten, refused jobs are given up,
cancel requests reach their handles. One batch is on its way at a time: what becomes due meanwhile
goes with the next round, as soon as the answer is in (rounds for attention at most every 50 ms).
While jobs run it sends at least one batch per `heartbeat_interval` naming them all, which is their
heartbeat (a batch with reports names them once half of that has passed).

When the jobs service cannot be reached nothing is lost: progress stays pending (a newer state
replaces an older one, the sequence makes resends idempotent), log lines stay in a bounded buffer,
outcomes wait; the task retries with exponential backoff (0.1 s doubling to 5 s, with jitter).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import random
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc

from services.common.logging import get_logger
from services.common.tasks import stop_tasks
from services.common.tls import GrpcTLS
from services.jobs.sdk import wire
from services.jobs.sdk.errors import JobsServiceError, JobsServiceUnavailable
from services.jobs.sdk.handle import JobHandle
from services.jobs.sdk.model import JobInfo, Outgoing
from services.jobs.sdk.tracking import JobTrack, Outbox, ReportPolicy

log = get_logger(__name__)
T = TypeVar("T")

MAX_REPORTS_PER_BATCH = 1000  # the service accepts 2000
MAX_LINES_PER_BATCH = 5000  # the service accepts 5000 per report; keeps a batch far below 8 MB
# Rounds for jobs that asked for attention (a report due by count, an outcome, a step) start at most this
# often: the rest of a burst that crossed while a batch was on its way goes as soon as the answer is in,
# unless that was sooner than this after the previous round (a fast service and a steady trickle of
# crossings would otherwise make a batch per turn of the loop).
DOORBELL_PAUSE = 0.05
# A turn of the event loop longer than this makes the monitor look at a batch's answer every turn (see _answer).
BUSY_TURN = 0.005
BACKOFF_BASE = 0.1
BACKOFF_CAP = 5.0


async def _answer(future: concurrent.futures.Future[T]) -> T:
    """The sender thread's answer.

    A task that awaits a thread wakes two turns of the loop after the thread is done: one for the
    callback that sets the asyncio future, one for the task's wake-up. A loop busy with 1000 jobs turns
    every ~0.1 s, and a round cannot start while a batch (a heartbeat, most of the time) is on its way,
    so a burst of due reports waited for both. On such a loop the task looks at the thread's future once
    per turn instead (one step per turn, nothing against a turn of 0.1 s) and goes on in the turn after
    the answer; on a loop that turns faster than `BUSY_TURN` it awaits the future (no spinning).
    """
    while not future.done():
        before = time.monotonic()
        await asyncio.sleep(0)
        if time.monotonic() - before < BUSY_TURN:
            return await asyncio.wrap_future(future)
    return future.result()


def backoff(failures: int) -> float:
    """Seconds to wait after `failures` failed rounds in a row: doubling, capped, jittered."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** min(max(failures, 1) - 1, 16))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - spreading retries, not security


@dataclass
class MonitorStats:
    """Counters of what the background task did, for tests, benchmarks and metrics."""

    batches: int = 0
    reports: int = 0
    progress_reports: int = 0
    log_lines: int = 0
    step_updates: int = 0
    outcomes: int = 0
    heartbeats: int = 0
    send_failures: int = 0
    refused: int = 0


class JobMonitor:
    """Reports jobs' lifecycle, progress, logs and steps to the jobs service without blocking them.

    Use one per process, started on the event loop that runs the jobs (`async with JobMonitor(...)`).
    `attach()`, `claim()` and `create_job()` must be called on that loop; the handles they return may
    be used from any thread.
    """

    def __init__(
        self,
        jobs_addr: str,
        worker_id: str,
        *,
        flush_interval: float = 0.25,
        heartbeat_interval: float = 1.0,
        min_report_interval: float = 1.0,
        items_per_report: int = 100,
        max_report_interval: float = 30.0,
        max_pending_logs: int = 100_000,
        rpc_timeout: float = 10.0,
        tls: GrpcTLS | None = None,
    ) -> None:
        """`tls`: talk to a jobs service that serves TLS (`GrpcTLS(ca_file=...)`, plus a certificate and
        key where it requires client certificates)."""
        if not worker_id:
            raise ValueError("worker_id is required: the service records which worker runs each job")
        for name, value in (
            ("flush_interval", flush_interval),
            ("heartbeat_interval", heartbeat_interval),
            ("rpc_timeout", rpc_timeout),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive (got {value})")
        self.jobs_addr = jobs_addr
        self.worker_id = worker_id
        self._tls = tls
        self.stats = MonitorStats()
        self._flush_interval = flush_interval
        self._heartbeat_interval = heartbeat_interval
        self._rpc_timeout = rpc_timeout
        self._policy = ReportPolicy(max(1, items_per_report), max(0.0, min_report_interval), max_report_interval)
        # Progress decisions need no finer grain than the minimum interval between two reports
        # (at most a second), so every job's counters are looked at that often, not every flush.
        # Count crossings arrive through the attention set, and one held back (by the minimum interval, or
        # a start not acknowledged yet) waits in `_deferred`, looked at every round. The scan of every job
        # is left with the time rule alone (max_report_interval), for which a tenth of it is grain enough;
        # at 1000 jobs a scan a second was most of the monitor's CPU (bench/sdk_overhead.py).
        self._scan_interval = max(flush_interval, min(5.0, self._policy.max_report_interval / 10))
        self._deferred: set[JobTrack] = set()
        self._next_scan = 0.0
        self._outbox = Outbox(max_pending_logs, self._policy.items_per_report)
        self._buffer = self._outbox.logs
        self._attention = self._outbox.attention
        self._handles: dict[str, JobHandle] = {}
        self._channel: grpc.aio.Channel | None = None
        self._stub: wire.Stub | None = None
        # ReportBatch goes over a blocking channel on a thread of its own: waiting on an aio call
        # costs several turns of the event loop, and a loop busy with 1000 CPU-bound jobs turns
        # slowly (bench/live_latency.py measured ~0.5 s per heartbeat this way, ~0.27 s on the thread).
        self._sync_channel: grpc.Channel | None = None
        self._sync_stub: Any = None
        self._sender: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._round_started = float("-inf")
        self._closing = False
        self._last_heartbeat = float("-inf")
        # The ids a heartbeat names (jobs started here and not finished), made again only after a job
        # was claimed, started, finished or refused: at 1000 jobs, listing them every second showed up
        # among the task's larger costs in a profile of bench/sdk_overhead.py.
        self._beating: list[str] | None = None
        self._reachable = True

    # -- lifetime ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the channel and start the background task (idempotent)."""
        if self._task is not None:
            return
        self._channel, self._stub = wire.open_channel(self.jobs_addr, self._tls)
        self._sync_channel, self._sync_stub = wire.open_sync_channel(self.jobs_addr, self._tls)
        self._sender = ThreadPoolExecutor(1, thread_name_prefix=f"job-monitor-{self.worker_id}")
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._outbox.bell = self._ring
        self._task = asyncio.create_task(self._run(), name=f"job-monitor:{self.worker_id}")

    async def close(self, timeout: float = 10.0) -> None:
        """Send everything still pending and wait for its acknowledgement, at most `timeout` seconds."""
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        if not done:
            await stop_tasks([self._task])
            log.warning(
                "job monitor closed before the jobs service acknowledged everything",
                pending_log_lines=len(self._buffer),
                jobs=len(self._handles),
            )
        unfinished = [h.job_id for h in self._handles.values() if h.outcome is None and h._track.started]
        if unfinished:
            log.warning(
                "job monitor closed while jobs had no outcome; the service's reaper will fail them",
                jobs=unfinished[:20],
                count=len(unfinished),
            )
        self._task = None
        self._outbox.bell = None
        self._outbox.idle = False
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = self._stub = None
        if self._sync_channel is not None:
            self._sync_channel.close()
            self._sync_channel = self._sync_stub = None
        if self._sender is not None:
            self._sender.shutdown(wait=False, cancel_futures=True)
            self._sender = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def dropped_log_lines(self) -> int:
        """Log lines dropped because the pending buffer was full (the service unreachable too long)."""
        return self._buffer.dropped_total

    @property
    def active_jobs(self) -> int:
        """Jobs this monitor still reports for (running, or with an unacknowledged outcome)."""
        return sum(1 for h in self._handles.values() if not h._track.finished)

    # -- calls for the worker ---------------------------------------------------------------------

    def _require_stub(self) -> wire.Stub:
        if self._stub is None:
            raise RuntimeError("JobMonitor is not started: use `async with JobMonitor(...)` or `await start()`")
        return self._stub

    async def create_job(
        self,
        job_type: str,
        *,
        tenant_id: str = "",
        parameters: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        total_items: int = 0,
        max_attempts: int = 0,
        idempotency_key: str = "",
        created_by: str = "",
    ) -> JobInfo:
        """Queue a new job (CreateJob); the same idempotency key returns the job made the first time."""
        request = wire.create_request(
            job_type, tenant_id, parameters, metadata, total_items, max_attempts, idempotency_key, created_by
        )
        try:
            response = await self._require_stub().CreateJob(request, timeout=self._rpc_timeout)
        except grpc.aio.AioRpcError as error:
            raise wire.translate(error) from None
        return wire.job_info(response.job)

    def attach(self, job_id: str) -> JobHandle:
        """A handle for a job this worker runs; call `handle.start()` unless it was claimed."""
        handle = self._handles.get(job_id)
        if handle is None or handle._track.finished:
            handle = JobHandle(job_id, self._outbox)
            self._handles[job_id] = handle
        return handle

    async def claim(self, job_types: Sequence[str], max_jobs: int = 1) -> list[JobHandle]:
        """Claim up to `max_jobs` queued jobs of these types; they are RUNNING on this worker now."""
        request = wire.claim_request(self.worker_id, job_types, max_jobs)
        try:
            response = await self._require_stub().ClaimJobs(request, timeout=self._rpc_timeout)
        except grpc.aio.AioRpcError as error:
            raise wire.translate(error) from None
        handles = []
        for job in response.jobs:
            info = wire.job_info(job)
            handle = JobHandle(info.id, self._outbox, info, started=True)
            self._handles[info.id] = handle
            handles.append(handle)
        if handles:
            self._beating = None
        return handles

    # -- the background task ----------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                more = await self._round(final=self._closing)
            except Exception as error:
                self._reachable = False
                failures += 1
                self.stats.send_failures += 1
                if failures == 1 or failures % 50 == 0:
                    if isinstance(error, JobsServiceUnavailable):
                        log.warning("jobs service unreachable; keeping reports to resend", error=str(error))
                    else:
                        log.exception("job monitor round failed; retrying")
                await asyncio.sleep(backoff(failures))
                continue
            self._reachable = True
            if failures:
                log.info("jobs service reachable again; pending reports sent", failed_rounds=failures)
                failures = 0
            if self._closing and not self._has_pending():
                return
            if not more:
                await self._rest()

    async def _rest(self) -> None:
        """Wait for the next round: at once for jobs that asked for attention (the rest of a burst that
        crossed while the batch was on its way), else until one asks (`Outbox.ring`) or a flush interval
        has passed (log lines, held-back reports, the heartbeat and the scan are looked at then)."""
        if not self._attention:
            outbox = self._outbox
            outbox.idle = True
            if not self._attention:  # a handle that added after this test rings: no wake-up is missed
                try:
                    await self._pause(self._flush_interval)
                finally:
                    outbox.idle = False
                return
            outbox.idle = False
        wait = self._round_started + DOORBELL_PAUSE - time.monotonic()
        if wait > 0:
            await self._pause(wait)

    def _ring(self) -> None:
        """Wake the background task (a handle's `Outbox.ring`, from the loop's thread or any other)."""
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        elif self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to wake
                self._loop.call_soon_threadsafe(self._wake.set)

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds` or until woken. A timer sets the event: cheaper, four times a second, than a
        timeout, which cancels the wait and raises when it expires."""
        wake = self._wake
        if not wake.is_set():
            timer = asyncio.get_running_loop().call_later(seconds, wake.set)
            try:
                await wake.wait()
            finally:
                timer.cancel()
        wake.clear()

    def _has_pending(self) -> bool:
        now = time.monotonic()
        for handle in self._handles.values():
            track = handle._track
            if track.start_requested and not track.started and not track.dead:
                return True
            if track.has_pending(now, self._policy, final=True):
                return True
        return False

    async def _round(self, *, final: bool) -> bool:
        """One batch: returns True when more is pending than one batch could carry."""
        now = self._round_started = time.monotonic()
        touched = list(self._attention)
        # Discard before planning: a handle changing again meanwhile is looked at next round.
        self._attention.difference_update(touched)
        deferred = self._deferred
        candidates = self._candidates(now, touched, final=final)
        deferred.clear()
        self._announce_drops()
        grouped = self._buffer.take(MAX_LINES_PER_BATCH, MAX_REPORTS_PER_BATCH)
        more = len(grouped) >= MAX_REPORTS_PER_BATCH or sum(map(len, grouped.values())) >= MAX_LINES_PER_BATCH
        outgoing: dict[JobTrack, Outgoing] = {track: Outgoing(track, logs=lines) for track, lines in grouped.items()}
        # Starts go in the batch too, not as a StartJob call each: on a loop busy with CPU-bound jobs
        # every call waited on costs whole turns of the loop, and 1000 of them held every report back
        # for tens of seconds (bench/live_latency.py). An unstarted job has no lines in `grouped`.
        for track in touched:
            if not track.start_requested or track.started or track.dead:
                continue
            if len(outgoing) >= MAX_REPORTS_PER_BATCH:
                self._attention.add(track)
                more = True
                continue
            outgoing[track] = Outgoing(track, start=True)
        if grouped:
            listed = set(candidates)
            candidates = [*candidates, *(t for t in grouped if t not in listed)]
        policy = self._policy
        for track in candidates:
            current = outgoing.get(track)
            if current is None and len(outgoing) >= MAX_REPORTS_PER_BATCH:
                self._attention.add(track)  # did not fit: next round
                more = True
                continue
            out = track.plan(current, now, policy, final=final)
            if track.due_at == math.inf and track.pending_progress is None and not track.finished:
                deferred.add(track)  # due by count but not reported yet: look again next round
            if out is not None:
                outgoing[track] = out
        # A heartbeat is due after heartbeat_interval; one half due rides along with reports that go anyway,
        # which spares a batch of its own.
        since = now - self._last_heartbeat
        heartbeat = since >= self._heartbeat_interval or (outgoing and since >= self._heartbeat_interval / 2)
        ids = self._heartbeat_ids() if heartbeat else []
        if not outgoing and not ids:
            return more
        await self._send(list(outgoing.values()), ids, now, time.time_ns())
        return more

    def _candidates(self, now: float, touched: list[JobTrack], *, final: bool) -> list[JobTrack]:
        """The jobs a round plans: those that asked for attention or were held back, and at a scan those
        whose last report is max_report_interval old (the time rule; counts ask for attention themselves,
        so the scan costs one comparison per job, not a plan()). All of them when closing."""
        if final:
            return [h._track for h in self._handles.values()]
        deferred = self._deferred
        if now < self._next_scan:
            return [*touched, *deferred.difference(touched)] if deferred else touched
        self._next_scan = now + self._scan_interval
        cutoff = now - self._policy.max_report_interval
        candidates = [t for h in self._handles.values() if (t := h._track).sent_at <= cutoff]
        listed = set(candidates)
        for track in (*touched, *deferred):
            if track not in listed:
                listed.add(track)
                candidates.append(track)
        return candidates

    def _heartbeat_ids(self) -> list[str]:
        ids = self._beating
        if ids is None:
            ids = self._beating = [h.job_id for h in self._handles.values() if h._track.heartbeating]
        return ids

    def _announce_drops(self) -> None:
        """Once the service answers again, tell each job's log how many of its lines were dropped.

        Not while it is away: the notice would only take the place of another line in the full buffer.
        """
        if not self._reachable or not self._buffer.drops_to_announce:
            return
        self._buffer.drops_to_announce = False
        for handle in self._handles.values():
            track = handle._track
            if track.dropped > track.dropped_reported:
                track.notices(self._buffer.max_lines)

    async def _send(self, outgoing: list[Outgoing], heartbeat_ids: list[str], now: float, planned_ns: int) -> None:
        request, broken = wire.batch_request(self.worker_id, outgoing, heartbeat_ids, planned_ns)
        for out, reason in broken:
            self._buffer.not_delivered(out.track)
            self._refuse(out.track, reason)
            outgoing.remove(out)
        if broken:
            self._forget([out.track for out, _ in broken])
        if self._sync_stub is None or self._sender is None:
            raise RuntimeError("JobMonitor is not started: use `async with JobMonitor(...)` or `await start()`")
        answer = self._sender.submit(wire.send_batch, self._sync_stub, request, self._rpc_timeout)
        try:
            response = await _answer(answer)
        except grpc.RpcError as error:
            for out in outgoing:
                self._buffer.not_delivered(out.track)
                self._attention.add(out.track)  # its progress, steps or outcome go again next round
            failure = wire.translate(error)
            if isinstance(failure, JobsServiceUnavailable):
                raise failure from None
            # The service refused the batch as a whole: resending it unchanged would fail forever.
            for out in outgoing:
                self._refuse(out.track, failure.message)
            self._forget_finished()
            return
        if heartbeat_ids:
            self._last_heartbeat = now
            self.stats.heartbeats += 1
        self.stats.batches += 1
        finished = self._apply(outgoing, response.results)
        for job_id in response.cancel_requested_job_ids:
            handle = self._handles.get(job_id)
            if handle is not None:
                handle._track.cancel_requested()
        self._buffer.release()
        if finished:
            self._forget(finished)

    def _apply(self, outgoing: list[Outgoing], results: Iterable[Any]) -> list[JobTrack]:
        """Take the service's answer per report (`JobReportResult`s); returns the jobs that finished
        (or were refused) with it. Reads only what each report needs from the answer."""
        by_id = {out.track.job_id: out for out in outgoing}
        stats = self.stats
        finished: list[JobTrack] = []
        reports = progress_reports = log_lines = step_updates = outcomes = 0
        for result in results:
            sent = by_id.pop(result.job_id, None)
            if sent is None:
                continue
            track = sent.track
            if not result.accepted:
                self._refuse(track, result.error or "refused without a reason")
                finished.append(track)
                continue
            if sent.start:
                # The answer carries the job with its stored sequences; ours continue after them.
                if result.HasField("job"):
                    stored = result.job
                    track.mark_started(stored.progress.sequence, stored.log_sequence)
                    if track.job is None:
                        track.job = wire.job_info(stored)
                else:
                    track.mark_started(0, 0)
                self._beating = None
            if sent.logs:
                self._buffer.acknowledge(track, sent.logs)
                log_lines += len(sent.logs)
            if sent.outcome is not None:
                track.accepted(sent, wire.status_name(result.status))
                finished.append(track)
                outcomes += 1
            else:
                track.accepted(sent, "")
            reports += 1
            progress_reports += sent.progress is not None
            step_updates += len(sent.steps)
        stats.reports += reports
        stats.progress_reports += progress_reports
        stats.log_lines += log_lines
        stats.step_updates += step_updates
        stats.outcomes += outcomes
        for unanswered in by_id.values():  # no answer for it: send it again next round
            self._buffer.not_delivered(unanswered.track)
            self._attention.add(unanswered.track)
        return finished

    def _refuse(self, track: JobTrack, reason: str) -> None:
        if track.dead:
            return
        track.refuse(reason)
        self._beating = None
        self.stats.refused += 1
        log.warning("jobs service refused a job's reports; not retrying them", job_id=track.job_id, reason=reason)

    def _forget_finished(self) -> None:
        finished = [job_id for job_id, h in self._handles.items() if h._track.finished]
        for job_id in finished:
            del self._handles[job_id]
        self._beating = None

    def _forget(self, tracks: list[JobTrack]) -> None:
        """Forget these finished jobs' handles (not a newer handle attached for the same job since)."""
        handles = self._handles
        for track in tracks:
            handle = handles.get(track.job_id)
            if handle is not None and handle._track is track and track.finished:
                del handles[track.job_id]
        self._beating = None


__all__ = ["JobMonitor", "JobsServiceError", "MonitorStats"]
