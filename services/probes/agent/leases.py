"""The agents' coordination state in Redis: leases on targets, last checked slots, agent presence.

Keys (all under the settings namespace, so several stacks can share one Redis):

    {ns}:probes:lease:{kind}:{service_id}   string  agent id, with a TTL (PX)    who holds the target
    {ns}:probes:slots                       hash    service_id -> last slot        where a new holder resumes
    {ns}:probes:agents                      zset    agent id -> heartbeat expiry  who is alive
    {ns}:probes:agent:{id}                  hash    hostname, pid, counters       for ListAgents
    {ns}:probes:agent:{id}:{kind}           set     "service_id slug" it holds    for ListAgents

A lease is taken with `SET key agent NX PX ttl` and kept with a Lua compare-and-extend, so an agent
can only extend or release a lease it still holds. An agent that dies stops renewing: its leases
expire after their TTL and the other agents take the targets at their next tick.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

# Extends each key still held by ARGV[1] to its TTL (ARGV[i + 1] ms); 1 per key kept, 0 per key lost.
_RENEW = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[i + 1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""
# Deletes each key still held by ARGV[1]; returns how many.
_RELEASE = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
"""


class LeaseKind(StrEnum):
    CHECK = "check"
    RESOURCE = "resource"


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    hostname: str
    pid: int
    started_at: datetime


@dataclass
class AgentRecord:
    """An agent as ListAgents shows it."""

    agent_id: str
    hostname: str = ""
    pid: int = 0
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    checks_run: int = 0
    samples_taken: int = 0
    leases: dict[LeaseKind, list[tuple[str, str]]] = field(default_factory=dict)


def _ms() -> int:
    return int(time.time() * 1000)


class Coordination:
    """Redis plumbing of the agents. Every method raises redis errors to its caller, which decides."""

    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:probes"
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def lease_key(self, kind: LeaseKind, service_id: str) -> str:
        return f"{self._prefix}:lease:{kind.value}:{service_id}"

    @property
    def _slots(self) -> str:
        return f"{self._prefix}:slots"

    @property
    def _agents(self) -> str:
        return f"{self._prefix}:agents"

    def _agent_key(self, agent_id: str) -> str:
        return f"{self._prefix}:agent:{agent_id}"

    # -- leases ------------------------------------------------------------------------------

    async def free(self, kind: LeaseKind, service_ids: Sequence[str]) -> list[str]:
        """The ids among `service_ids` that nobody holds now (one MGET)."""
        if not service_ids:
            return []
        holders = await self._redis.mget([self.lease_key(kind, s) for s in service_ids])
        return [s for s, holder in zip(service_ids, holders, strict=True) if holder is None]

    async def acquire(self, kind: LeaseKind, agent_id: str, wanted: Mapping[str, int]) -> list[str]:
        """`SET key agent NX PX ttl` for each id -> ttl ms; returns the ids acquired."""
        if not wanted:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for service_id, ttl_ms in wanted.items():
                pipe.set(self.lease_key(kind, service_id), agent_id, nx=True, px=ttl_ms)
            replies = await pipe.execute()
        return [s for s, ok in zip(wanted, replies, strict=True) if ok]

    async def renew(self, kind: LeaseKind, agent_id: str, held: Mapping[str, int]) -> list[str]:
        """Compare-and-extend every lease in `held` (id -> ttl ms); returns the ids lost."""
        if not held:
            return []
        ids = list(held)
        replies = await self._renew(
            keys=[self.lease_key(kind, s) for s in ids], args=[agent_id, *(held[s] for s in ids)]
        )
        return [s for s, kept in zip(ids, replies, strict=True) if not int(kept)]

    async def release(self, kind: LeaseKind, agent_id: str, service_ids: Iterable[str]) -> int:
        keys = [self.lease_key(kind, s) for s in service_ids]
        if not keys:
            return 0
        return int(await self._release(keys=keys, args=[agent_id]))

    async def holders(self, kind: LeaseKind, service_ids: Sequence[str]) -> dict[str, str]:
        """service id -> agent id for the held ones."""
        if not service_ids:
            return {}
        values = await self._redis.mget([self.lease_key(kind, s) for s in service_ids])
        return {s: _text(v) for s, v in zip(service_ids, values, strict=True) if v is not None}

    # -- slots -------------------------------------------------------------------------------

    async def mark_slots(self, slots: Mapping[str, int]) -> None:
        """Remember the slot each target is being checked for, before the check starts."""
        if slots:
            mapping: dict[Any, Any] = dict(slots)
            await self._redis.hset(self._slots, mapping=mapping)

    async def last_slots(self, service_ids: Sequence[str]) -> dict[str, int]:
        if not service_ids:
            return {}
        values = await self._redis.hmget(self._slots, list(service_ids))
        return {s: int(v) for s, v in zip(service_ids, values, strict=True) if v is not None}

    # -- presence ----------------------------------------------------------------------------

    async def heartbeat(
        self,
        me: AgentIdentity,
        ttl_ms: int,
        counters: dict[str, int],
        leases: Mapping[LeaseKind, Iterable[tuple[str, str]]] | None,
    ) -> None:
        """Say this agent is alive for `ttl_ms`; `leases` (when changed) replaces what ListAgents shows."""
        now = _ms()
        info = self._agent_key(me.agent_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self._agents, {me.agent_id: now + ttl_ms})
            pipe.zremrangebyscore(self._agents, "-inf", now)
            fields: dict[Any, Any] = {
                "hostname": me.hostname,
                "pid": me.pid,
                "started_at": me.started_at.timestamp(),
                "heartbeat_at": now / 1000,
                **counters,
            }
            pipe.hset(info, mapping=fields)
            pipe.pexpire(info, ttl_ms)
            for kind in LeaseKind:
                key = f"{info}:{kind.value}"
                if leases is not None and kind in leases:
                    members = [f"{service_id} {slug}" for service_id, slug in leases[kind]]
                    pipe.delete(key)
                    if members:
                        pipe.sadd(key, *members)
                pipe.pexpire(key, ttl_ms)
            await pipe.execute()

    async def leave(self, agent_id: str) -> None:
        info = self._agent_key(agent_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._agents, agent_id)
            pipe.delete(info, *(f"{info}:{kind.value}" for kind in LeaseKind))
            await pipe.execute()

    async def alive_count(self) -> int:
        return int(await self._redis.zcount(self._agents, _ms(), "+inf"))

    async def agents(self) -> list[AgentRecord]:
        """Agents whose heartbeat has not expired, with the targets they hold, oldest first."""
        ids = [_text(v) for v in await self._redis.zrangebyscore(self._agents, _ms(), "+inf")]
        records: list[AgentRecord] = []
        for agent_id in ids:
            info = self._agent_key(agent_id)
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(info)
                for kind in LeaseKind:
                    pipe.smembers(f"{info}:{kind.value}")
                replies = await pipe.execute()
            fields = {k.decode(): v.decode() for k, v in replies[0].items()}
            record = AgentRecord(
                agent_id,
                hostname=fields.get("hostname", ""),
                pid=int(fields.get("pid", 0)),
                started_at=_when(fields.get("started_at")),
                heartbeat_at=_when(fields.get("heartbeat_at")),
                checks_run=int(fields.get("checks_run", 0)),
                samples_taken=int(fields.get("samples_taken", 0)),
            )
            for kind, members in zip(LeaseKind, replies[1:], strict=True):
                pairs = [m.decode().split(" ", 1) for m in members]
                record.leases[kind] = sorted((p[0], p[1] if len(p) > 1 else "") for p in pairs)
            records.append(record)
        return sorted(records, key=lambda r: r.started_at or datetime.min.replace(tzinfo=UTC))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _when(value: str | None) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value else None
