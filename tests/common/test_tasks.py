"""Background tasks stop in bounded time, even when a cancellation is lost on the way.

On Python 3.11, `asyncio.wait_for` returns what it waited for instead of raising CancelledError when
the cancellation arrives just as that finished; redis-py sends every command through such a wait_for.
These tests set up that moment on purpose: the stop is started from inside the work it interrupts, so
the cancel lands exactly when the awaited thing is done. Before `stop_tasks`, each of these stops
waited forever (a test suite's teardown hung until pytest-timeout).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.grpc_server import GrpcServer
from services.common.metrics import Snapshot, SnapshotRefresher
from services.common.tasks import stop_tasks

# Registered once (a Snapshot joins the process's registry); no gauges, so no scrape ever shows it.
QUIET = Snapshot("stop-test", ())


async def _lose_the_cancellation(stop: Awaitable[Any], started: asyncio.Future[asyncio.Future[Any]]) -> None:
    """Start `stop` now and wait on something already finished through `asyncio.wait_for`: the stop's
    cancel arrives while wait_for has not resumed yet, the moment where Python 3.11 loses it."""
    started.set_result(asyncio.ensure_future(stop))
    finished = asyncio.get_running_loop().create_future()
    finished.set_result(None)
    await asyncio.wait_for(finished, 5)


async def _ends_within(stop: asyncio.Future[asyncio.Future[Any]], seconds: float) -> None:
    """The stop, once started, ends within `seconds` (waited for without cancelling it: a stop that swallows
    its caller's cancellation would otherwise look as if it had ended)."""
    async with asyncio.timeout(10):
        stopping = await stop
    done, _ = await asyncio.wait({stopping}, timeout=seconds)
    assert done, f"the stop was still waiting after {seconds} s"
    stopping.result()


async def test_a_loop_that_goes_on_after_its_first_cancellation_is_stopped() -> None:
    """A task that lost one cancellation is cancelled again and ends; stop_tasks says all ended."""
    lost = 0

    async def loop() -> None:
        nonlocal lost
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if lost:
                    raise
                lost += 1  # what a lost cancellation looks like from outside: the loop goes on

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    started = time.monotonic()
    assert await stop_tasks([task, None], recancel_every=0.05)
    assert task.cancelled() and lost == 1
    assert time.monotonic() - started < 2


async def test_a_task_that_never_stops_is_left_behind_after_the_timeout() -> None:
    """stop_tasks returns False after `timeout` instead of waiting forever; the caller goes on."""
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    started = time.monotonic()
    assert not await stop_tasks([task], timeout=0.3, recancel_every=0.1)
    assert 0.3 <= time.monotonic() - started < 2
    release.set()  # let it end, so nothing outlives the test
    await asyncio.wait({task}, timeout=5)
    assert task.done()


async def test_a_failed_task_does_not_stop_the_shutdown() -> None:
    """A task that had crashed is reported in the log, not raised into the stop."""

    async def crash() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(crash())
    await asyncio.sleep(0)
    assert await stop_tasks([task])


async def test_the_metrics_snapshot_stops_when_its_read_loses_the_cancellation() -> None:
    """The refresher's stop ends although the stop's cancel reached a read at the moment it was lost."""
    stop: asyncio.Future[asyncio.Future[Any]] = asyncio.get_running_loop().create_future()

    async def read() -> dict[str, Any]:
        if not stop.done():
            await _lose_the_cancellation(refresher.stop(), stop)
        return {}

    refresher = SnapshotRefresher(QUIET, read, interval=3600)
    await refresher.start()
    await _ends_within(stop, 5)


async def test_a_grpc_server_stops_when_the_stop_meets_a_readiness_check_as_it_answers() -> None:
    """The server stops (and refuses calls) although the stop arrived the moment the readiness check answered."""
    stop: asyncio.Future[asyncio.Future[Any]] = asyncio.get_running_loop().create_future()

    async def ready() -> bool:
        if not stop.done():
            # The watcher's own wait on the check is where the cancel used to be lost.
            stop.set_result(asyncio.ensure_future(server.stop(0)))
        return True

    server = GrpcServer("stop-test", [], [], readiness=ready, readiness_interval=0.05)
    port = await server.start("127.0.0.1", 0)
    await _ends_within(stop, 5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
    assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
