"""The agents' durable hand-off to the health service: each check's resulting state on a Redis Stream.

Every record is appended as a `ServiceCheckState` (field `state`) to the capped stream named by
`services.common.events.check_states_stream`; the health service reads it with a consumer group
(services/health/aggregation/consumer.py). This is a transport edge, so it is where the agent
touches protobuf.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from b2x.monitoring.v1 import probes_pb2

from services.common.events import check_states_stream
from services.common.protoconv import set_timestamp
from services.probes.agent.records import CheckRecord
from services.probes.convert import BREAKER, ERROR_GROUP, ERROR_TYPE, SPEED


def check_record_to_proto(record: CheckRecord) -> probes_pb2.ServiceCheckState:
    """The state a check leaves, as appended to the check-states stream."""
    msg = probes_pb2.ServiceCheckState(
        service_id=record.service_id,
        service_slug=record.slug,
        success=record.success,
        degraded=record.degraded,
        summary=record.summary,
        total_latency_ms=record.total_ms,
        speed_rating=SPEED.to_proto(record.speed_rating),
        consecutive_failures=record.breaker.failures,
        circuit_breaker=BREAKER.to_proto(record.breaker.state),
        agent_id=record.agent_id,
        interval_seconds=record.interval_seconds,
    )
    set_timestamp(msg.checked_at, record.checked_at)
    set_timestamp(msg.breaker_retry_at, record.breaker.retry_at)
    set_timestamp(msg.tls_not_after, record.tls_not_after)
    if record.error is not None:
        msg.error_type = ERROR_TYPE.to_proto(record.error.error_type)
        msg.error_group = ERROR_GROUP.to_proto(record.error.group)
    if record.success:
        set_timestamp(msg.last_success_at, record.checked_at)
    elif not record.skipped:
        set_timestamp(msg.last_failure_at, record.checked_at)
    return msg


class CheckStateStream:
    """Appends each record's resulting state to a capped Redis Stream."""

    def __init__(self, redis: aioredis.Redis, namespace: str, maxlen: int) -> None:
        self._redis = redis
        self.key = check_states_stream(namespace)
        self._maxlen = maxlen

    async def append(self, records: Sequence[CheckRecord]) -> None:
        if not records or self._maxlen == 0:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for record in records:
                payload = check_record_to_proto(record).SerializeToString()
                pipe.xadd(self.key, {"state": payload}, maxlen=self._maxlen, approximate=True)
            await pipe.execute()
