"""Check states on the probes' stream, as a probe agent writes them, and polling of what health made of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import redis.asyncio as aioredis
from b2x.monitoring.v1 import probes_pb2

from services.common.events import check_states_stream
from services.common.protoconv import set_timestamp

T = TypeVar("T")
DEADLINE = 20.0
HTTP_503 = "HTTP 503 Service Unavailable: the service is temporarily unavailable"


def check_state(
    service_id: str,
    slug: str,
    *,
    success: bool = True,
    failures: int = 0,
    latency_ms: float = 40.0,
    at: datetime | None = None,
) -> probes_pb2.ServiceCheckState:
    """What CheckStateStream appends for one periodic check (services/probes/agent/handoff.py)."""
    msg = probes_pb2.ServiceCheckState(
        service_id=service_id,
        service_slug=slug,
        success=success,
        summary=f"HTTP 200 OK in {latency_ms:.0f} ms" if success else HTTP_503,
        total_latency_ms=latency_ms,
        speed_rating=probes_pb2.SPEED_RATING_FAST if success else probes_pb2.SPEED_RATING_UNSPECIFIED,
        consecutive_failures=failures,
        circuit_breaker=probes_pb2.CIRCUIT_BREAKER_STATE_CLOSED,
        agent_id="test-agent",
        interval_seconds=30,
    )
    set_timestamp(msg.checked_at, at or datetime.now(UTC))
    if not success:
        msg.error_type = probes_pb2.COMMUNICATION_ERROR_TYPE_SERVICE_UNAVAILABLE
        msg.error_group = probes_pb2.COMMUNICATION_ERROR_GROUP_SERVICE
    return msg


async def append(redis: aioredis.Redis, namespace: str, *states: probes_pb2.ServiceCheckState) -> None:
    """XADD each state, field `state`, like the probes' recorder."""
    async with redis.pipeline(transaction=False) as pipe:
        for state in states:
            pipe.xadd(
                check_states_stream(namespace), {"state": state.SerializeToString()}, maxlen=100_000, approximate=True
            )
        await pipe.execute()


async def eventually(probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], deadline: float = DEADLINE) -> T:
    """Poll `probe` until `accept` holds or the deadline passes (then fail with the last value seen)."""
    ends = time.monotonic() + deadline
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > ends:
            raise AssertionError(f"not reached within {deadline} s; last value: {value!r}")
        await asyncio.sleep(0.1)
