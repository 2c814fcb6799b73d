"""One agent's share of one kind of lease: renew what it holds, take free targets up to a fair share.

Every tick the keeper
1. renews its leases with the compare-and-extend script and drops the ones it lost;
2. releases leases on targets that are gone from the registry;
3. takes free targets while it holds fewer than its fair share, ceil(targets / agents alive), and
   always takes the "local" ones only it may serve (a process on its own host);
4. gives back the excess when it holds more than its share plus one (a new agent joined), never a
   target whose check is running or due within two ticks, so a handover never loses a slot.

If Redis cannot be reached, leases are kept locally (fail open): checks go on, at the price of a
possible duplicate check once Redis returns, rather than stopping all monitoring.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from redis.exceptions import RedisError

from services.common.logging import get_logger
from services.probes.agent.leases import Coordination, LeaseKind

log = get_logger(__name__)

_REDIS_DOWN = (RedisError, ConnectionError, OSError, TimeoutError)
# Part of a lease's TTL during which the holder trusts it without a newer renewal.
_TRUST = 0.9


@dataclass(frozen=True)
class Candidate:
    """A target this agent may hold: its interval sets the lease TTL; local ones skip the fair share."""

    slug: str
    interval: float
    local: bool = False


@dataclass
class _Held:
    slug: str
    ttl_ms: int
    valid_until: float


def lease_ttl_ms(interval: float, max_lease: float, tick: float) -> int:
    """Half the interval, at most `max_lease`, at least three ticks: a dead holder's target is taken
    over after at most TTL + one tick, which is within one interval."""
    return int(max(3 * tick, min(max_lease, interval / 2)) * 1000)


class LeaseKeeper:
    def __init__(
        self,
        coordination: Coordination,
        kind: LeaseKind,
        agent_id: str,
        *,
        tick: float,
        max_lease: float,
        on_gained: Callable[[list[str]], Awaitable[None]],
        on_lost: Callable[[list[str]], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._coord = coordination
        self.kind = kind
        self._agent = agent_id
        self._tick = tick
        self._max_lease = max_lease
        self._on_gained = on_gained
        self._on_lost = on_lost
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._redis_ok = True
        self.changed = True

    def owns(self, service_id: str) -> bool:
        held = self._held.get(service_id)
        return held is not None and self._clock() < held.valid_until

    def held(self) -> list[tuple[str, str]]:
        return sorted((service_id, h.slug) for service_id, h in self._held.items())

    def __len__(self) -> int:
        return len(self._held)

    async def tick(self, candidates: Mapping[str, Candidate], alive: int, busy: Callable[[str], bool]) -> None:
        """One round of renew / release / acquire; see the module docstring."""
        try:
            await self._renew(candidates)
            await self._drop_gone(candidates)
            await self._balance(candidates, max(1, alive), busy)
        except _REDIS_DOWN as error:
            if self._redis_ok:
                log.warning("leases not renewed; Redis unreachable, keeping current targets", kind=self.kind.value,
                            error=str(error))  # fmt: skip
            self._redis_ok = False
            until = self._clock() + self._tick * 3
            for held in self._held.values():
                held.valid_until = max(held.valid_until, until)
            return
        if not self._redis_ok:
            log.info("leases renewed again; Redis is back", kind=self.kind.value)
        self._redis_ok = True

    async def _renew(self, candidates: Mapping[str, Candidate]) -> None:
        if not self._held:
            return
        for service_id, held in self._held.items():
            if (candidate := candidates.get(service_id)) is not None:
                held.ttl_ms = lease_ttl_ms(candidate.interval, self._max_lease, self._tick)
        sent = self._clock()
        lost = await self._coord.renew(self.kind, self._agent, {s: h.ttl_ms for s, h in self._held.items()})
        for held in self._held.values():
            held.valid_until = sent + held.ttl_ms / 1000 * _TRUST
        if lost:
            log.warning("leases lost to another agent", kind=self.kind.value, count=len(lost))
            self._forget(lost)

    async def _drop_gone(self, candidates: Mapping[str, Candidate]) -> None:
        gone = [s for s in self._held if s not in candidates]
        if gone:
            await self._coord.release(self.kind, self._agent, gone)
            self._forget(gone)

    async def _balance(self, candidates: Mapping[str, Candidate], alive: int, busy: Callable[[str], bool]) -> None:
        shared = [s for s, c in candidates.items() if not c.local]
        share = math.ceil(len(shared) / alive)
        held_shared = sum(1 for s in self._held if not candidates[s].local)
        if held_shared > share + 1:
            excess = [s for s in self._held if not candidates[s].local and not busy(s)][: held_shared - share]
            if excess:
                await self._coord.release(self.kind, self._agent, excess)
                log.info("leases handed back for balance", kind=self.kind.value, count=len(excess), share=share)
                self._forget(excess)
            return
        wanted = [s for s, c in candidates.items() if c.local and s not in self._held]
        if held_shared < share:
            # Each agent walks the targets in its own order, so agents starting together rarely collide.
            others = sorted(
                (s for s in shared if s not in self._held), key=lambda s: zlib.crc32(f"{self._agent}{s}".encode())
            )
            free = await self._coord.free(self.kind, others)
            wanted += free[: share - held_shared]
        if not wanted:
            return
        ttls = {s: lease_ttl_ms(candidates[s].interval, self._max_lease, self._tick) for s in wanted}
        sent = self._clock()
        gained = await self._coord.acquire(self.kind, self._agent, ttls)
        if not gained:
            return
        for service_id in gained:
            self._held[service_id] = _Held(
                candidates[service_id].slug, ttls[service_id], sent + ttls[service_id] / 1000 * _TRUST
            )
        self.changed = True
        await self._on_gained(gained)

    def _forget(self, service_ids: list[str]) -> None:
        for service_id in service_ids:
            self._held.pop(service_id, None)
        self.changed = True
        self._on_lost(service_ids)

    async def release_all(self) -> None:
        """Graceful stop: hand every target back at once so the other agents need not wait for expiry."""
        if self._held:
            ids = list(self._held)
            try:
                await self._coord.release(self.kind, self._agent, ids)
            except _REDIS_DOWN as error:
                log.warning("leases not released; they will expire", kind=self.kind.value, error=str(error))
            self._forget(ids)
