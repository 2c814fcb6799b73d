"""Stopping background tasks in bounded time.

Every long-lived loop of a service (stream consumers, snapshot refreshers, readiness watchers, sweeps)
is stopped by cancelling its task. One `task.cancel()` followed by `await task` is not enough on
Python 3.11: `asyncio.wait_for` returns what it waited for, instead of raising CancelledError, when the
cancellation arrives in the moment between that awaitable finishing and `wait_for` resuming (CPython
gh-86296, fixed in 3.12 where `wait_for` is built on `asyncio.timeout`). redis-py sends every command
through such a `wait_for`, so a loop cancelled while it talks to Redis can go on as if nothing
happened, and `await task` then waits forever: a service that never finishes its shutdown, a test
whose teardown hangs until pytest-timeout ends it.

`stop_tasks` cancels again every second a task that is still running, and gives up after `timeout`
(logged), so a stop always ends. Our own code waits with `asyncio.timeout`, which does not lose a
cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from services.common.logging import get_logger

log = get_logger(__name__)

# How long a stop waits for its tasks before it leaves the rest behind (logged): far more than a loop
# needs to end, far less than a supervisor's or a test's patience.
STOP_SECONDS = 10.0
# A task still running this long after a cancel lost it (or is stuck in a cleanup): cancelled again.
RECANCEL_SECONDS = 1.0


async def stop_tasks(
    tasks: Iterable[asyncio.Task[Any] | None],
    *,
    timeout: float = STOP_SECONDS,
    recancel_every: float = RECANCEL_SECONDS,
) -> bool:
    """Cancel `tasks` and wait until they have ended, at most `timeout` seconds; True when all ended.

    A task that goes on after a cancellation is cancelled again every `recancel_every` seconds. What
    the tasks ended with (an exception other than the cancellation) is logged, not raised: the caller
    goes on with the rest of its shutdown. If the caller itself is cancelled, that cancellation is
    raised as usual (the tasks have been cancelled already).
    """
    given = [task for task in tasks if task is not None]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    running = {task for task in given if not task.done()}
    rounds = 0
    while running:
        if rounds:
            log.info("background task went on after its cancellation; cancelled again",
                     tasks=sorted(task.get_name() for task in running), round=rounds)  # fmt: skip
        rounds += 1
        for task in running:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        _, running = await asyncio.wait(running, timeout=min(recancel_every, left))
    for task in given:
        if task.done() and not task.cancelled() and (error := task.exception()) is not None:
            log.warning("background task had failed before it was stopped", task=task.get_name(), exc_info=error)
    if running:
        log.error(
            "background tasks did not stop; left behind",
            tasks=sorted(task.get_name() for task in running),
            waited_seconds=timeout,
        )
    return not running
