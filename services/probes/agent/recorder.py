"""Batches periodic check records: one transaction per flush, then the failures' events and the state stream.

Nothing is published per successful check. A failed check records a communication error, announced
with the same `CommunicationErrorRecorded` event an on-demand test uses (in one pipelined publish per
flush). Every record is also appended to the check-states stream (`agent/handoff.py`), the durable
hand-off the health service reads with a consumer group to aggregate status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from redis.exceptions import RedisError

from services.common.logging import get_logger
from services.probes.agent.handoff import CheckStateStream
from services.probes.agent.records import CheckRecord
from services.probes.domain import CommunicationError
from services.probes.metrics import record_check, record_errors

log = get_logger(__name__)

# Records kept while PostgreSQL is unreachable; beyond that the oldest are dropped (and counted).
MAX_BUFFER = 100_000


class CheckWriter(Protocol):
    async def write(self, records: Sequence[CheckRecord], errors: list[CommunicationError]) -> None: ...


class ErrorAnnouncer(Protocol):
    async def errors_recorded(self, errors: list[CommunicationError]) -> None: ...


class CheckRecorder:
    def __init__(
        self,
        writer: CheckWriter,
        announcer: ErrorAnnouncer,
        stream: CheckStateStream | None,
        flush_seconds: float,
    ) -> None:
        self._writer = writer
        self._announcer = announcer
        self._stream = stream
        self._flush_seconds = flush_seconds
        self._records: list[CheckRecord] = []
        self._errors: list[CommunicationError] = []
        self._pending: Counter[str] = Counter()  # records per target not stored yet
        self._lock = asyncio.Lock()
        self.dropped = 0
        self.written = 0

    def add(self, record: CheckRecord, errors: Sequence[CommunicationError] = ()) -> None:
        record_check(record)
        self._records.append(record)
        self._pending[record.service_id] += 1
        self._errors.extend(errors)
        if len(self._records) > MAX_BUFFER:
            overflow = len(self._records) - MAX_BUFFER
            self._forget(self._records[:overflow])
            del self._records[:overflow]
            self.dropped += overflow

    def pending(self, service_id: str) -> bool:
        """A check of this target is recorded here but not stored yet (its lease must not be handed over)."""
        return service_id in self._pending

    def _forget(self, records: Sequence[CheckRecord]) -> None:
        self._pending.subtract(r.service_id for r in records)
        for r in records:
            if self._pending[r.service_id] <= 0:
                del self._pending[r.service_id]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()

    async def flush(self) -> int:
        """Write what is buffered; on a database failure keep it for the next flush. Returns records written."""
        async with self._lock:
            records, errors = self._records, self._errors
            if not records and not errors:
                return 0
            self._records, self._errors = [], []
            try:
                await self._writer.write(records, errors)
            except Exception as error:
                log.warning("check results not stored yet; will retry", count=len(records), error=str(error))
                self._records[:0], self._errors[:0] = records, errors
                return 0
            self.written += len(records)
            self._forget(records)
        record_errors(errors)
        if errors:
            await self._announcer.errors_recorded(errors)
        if self._stream is not None:
            try:
                await self._stream.append(records)
            except (RedisError, OSError) as error:
                log.warning("check states not appended to the stream", count=len(records), error=str(error))
        return len(records)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.flush()
