"""The probe agent of one process: presence, target list, lease keepers, checks, sampling, maintenance.

One coordination loop runs every lease tick: it re-reads the registry every refresh period, says
the agent is alive, and lets each lease keeper renew, balance and take targets; the check agent and
the resource agent do the work on what is held. A graceful stop hands every lease back at once; a
crash (or a cancelled task) hands nothing back, and the other agents take over when leases expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from redis.exceptions import RedisError

from services.common.logging import get_logger
from services.common.tasks import stop_tasks
from services.probes.agent.checker import CheckAgent
from services.probes.agent.keeper import Candidate, LeaseKeeper
from services.probes.agent.leases import AgentIdentity, Coordination, LeaseKind
from services.probes.agent.recorder import CheckRecorder
from services.probes.agent.resources.agent import ResourceAgent
from services.probes.domain import Target

log = get_logger(__name__)


class TargetLister(Protocol):
    async def list_enabled(self) -> list[Target]:
        """Every enabled connected service; UnavailableError when the registry cannot be reached."""
        ...


def new_identity() -> AgentIdentity:
    """hostname-pid-random: unique even for two agents in one process (tests) or a recycled pid."""
    hostname = socket.gethostname()
    pid = os.getpid()
    return AgentIdentity(f"{hostname}-{pid}-{secrets.token_hex(3)}", hostname, pid, datetime.now(UTC))


@dataclass(frozen=True)
class RuntimeConfig:
    tick: float = 1.0
    max_lease: float = 10.0
    refresh_seconds: float = 30.0


class AgentRuntime:
    def __init__(
        self,
        identity: AgentIdentity,
        config: RuntimeConfig,
        lister: TargetLister,
        coordination: Coordination,
        build_checks: Callable[[AgentRuntime], CheckAgent],
        build_resources: Callable[[AgentRuntime], ResourceAgent],
        recorder: CheckRecorder,
        maintenance: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.identity = identity
        self.config = config
        self._lister = lister
        self._coord = coordination
        self.targets: dict[str, Target] = {}
        self.recorder = recorder
        self.checks = build_checks(self)
        self.resources = build_resources(self)
        self.check_leases = self._keeper(LeaseKind.CHECK, self.checks.gained, self.checks.lost)
        self.resource_leases = self._keeper(LeaseKind.RESOURCE, self.resources.gained, self.resources.lost)
        self._maintenance = maintenance
        self._tasks: list[asyncio.Task[None]] = []
        self._refreshed_at = -1e9
        self._resource_candidates: dict[str, Candidate] = {}
        self.ready = asyncio.Event()

    @property
    def agent_id(self) -> str:
        return self.identity.agent_id

    def target(self, service_id: str) -> Target | None:
        return self.targets.get(service_id)

    def owns_check(self, service_id: str) -> bool:
        return self.check_leases.owns(service_id)

    def owns_resource(self, service_id: str) -> bool:
        return self.resource_leases.owns(service_id)

    def _keeper(
        self, kind: LeaseKind, gained: Callable[[list[str]], Awaitable[None]], lost: Callable[[list[str]], None]
    ) -> LeaseKeeper:
        return LeaseKeeper(
            self._coord, kind, self.agent_id, tick=self.config.tick, max_lease=self.config.max_lease,
            on_gained=gained, on_lost=lost,
        )  # fmt: skip

    async def start(self) -> None:
        work: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("coordinate", self._coordinate),
            ("checks", self.checks.run),
            ("recorder", self.recorder.run),
            ("resources", self.resources.run),
        ]
        if self._maintenance is not None:
            work.append(("maintenance", self._maintenance))
        for name, run in work:
            self._tasks.append(asyncio.create_task(run(), name=f"probe-agent-{name}"))  # type: ignore[arg-type]
        log.info("probe agent started", agent=self.agent_id)

    async def stop(self, *, graceful: bool = True) -> None:
        """Stop the loops, store what is buffered and hand the leases back. Not `graceful` is what a crash
        leaves behind: loops and checks cancelled, nothing stored, nothing released, leases left to expire."""
        await stop_tasks(self._tasks)
        self._tasks.clear()
        await self.checks.stop()
        if graceful:
            await self.recorder.close()
        await self.resources.close()
        if graceful:
            await self.check_leases.release_all()
            await self.resource_leases.release_all()
            with contextlib.suppress(RedisError, OSError):
                await self._coord.leave(self.agent_id)
        log.info("probe agent stopped", agent=self.agent_id, graceful=graceful)

    async def refresh(self) -> None:
        try:
            targets = {t.service_id: t for t in await self._lister.list_enabled()}
        except Exception as error:
            log.warning("target list not refreshed; keeping the last one", error=str(error), count=len(self.targets))
            return
        for service_id, target in targets.items():
            if service_id in self.targets and self.targets[service_id] != target:
                self.checks.retarget(target)
                self.resources.retarget(target)
        self.targets = targets

    async def tick(self) -> None:
        """One coordination round (the loop runs it every tick; tests may call it directly)."""
        if time.monotonic() - self._refreshed_at >= self.config.refresh_seconds:
            self._refreshed_at = time.monotonic()
            await self.refresh()
            self._resource_candidates = self.resources.candidates(self.targets)
        alive = await self._presence()
        checks = {sid: Candidate(t.slug, t.interval_seconds) for sid, t in self.targets.items()}
        await self.check_leases.tick(checks, alive, self.checks.busy)
        await self.resource_leases.tick(self._resource_candidates, alive, self.resources.busy)
        self.ready.set()

    async def _presence(self) -> int:
        keepers = (self.check_leases, self.resource_leases)
        leases = {k.kind: k.held() for k in keepers if k.changed}
        counters = {"checks_run": self.checks.checks_run, "samples_taken": self.resources.samples_taken}
        try:
            await self._coord.heartbeat(self.identity, int(self.config.tick * 3000), counters, leases or None)
            for keeper in keepers:
                keeper.changed = False
            return await self._coord.alive_count()
        except (RedisError, OSError) as error:
            log.debug("heartbeat not written", error=str(error))
            return 1

    async def _coordinate(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("probe agent coordination round failed")
            await asyncio.sleep(self.config.tick)
