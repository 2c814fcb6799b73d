"""Samples the resources of the targets this agent holds resource leases for, every few seconds.

Each round samples every held target at once (bounded), updates its rolling figures, evaluates its
thresholds, stores the round in one transaction, then publishes one ResourceMetricsUpdated per
target (one pipelined publish) and a ResourceAlertTriggered per alert opened or resolved. A
threshold breach is published within one sampling interval plus a scrape: 5 s by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx

from services.common.logging import get_logger
from services.probes.agent.keeper import Candidate
from services.probes.agent.resources.alerts import ThresholdEvaluator
from services.probes.agent.resources.model import ResourceAlert, ResourceMetrics, ResourceSample
from services.probes.agent.resources.rolling import RollingFigures
from services.probes.agent.resources.samplers import (
    Placement,
    SampleError,
    Sampler,
    local_process_names,
    placement,
    sampler_for,
)
from services.probes.agent.resources.store import ResourceStore, SampledService
from services.probes.domain import Target

log = get_logger(__name__)

_MAX_CONCURRENT = 50


class ResourceEvents(Protocol):
    async def metrics_updated(
        self, updates: list[tuple[str, ResourceMetrics]], open_alerts: Mapping[str, list[ResourceAlert]]
    ) -> None: ...
    async def alerts_changed(self, alerts: list[ResourceAlert]) -> None: ...


@dataclass
class _Watched:
    target: Target
    sampler: Sampler
    rolling: RollingFigures
    evaluator: ThresholdEvaluator
    last: ResourceMetrics | None = None


class ResourceAgent:
    def __init__(
        self,
        store: ResourceStore,
        events: ResourceEvents,
        agent_id: str,
        *,
        lookup: Callable[[str], Target | None],
        owns: Callable[[str], bool],
        interval: float,
        environ: Mapping[str, str],
        hostname: str,
        client: httpx.AsyncClient,
    ) -> None:
        self._store = store
        self._events = events
        self.agent_id = agent_id
        self._lookup = lookup
        self._owns = owns
        self.interval = interval
        self._environ = environ
        self._hostname = hostname
        self._client = client
        self._watched: dict[str, _Watched] = {}
        self._local_names: frozenset[str] = frozenset()
        self._semaphore = asyncio.Semaphore(_MAX_CONCURRENT)
        self.samples_taken = 0

    def candidates(self, targets: Mapping[str, Target]) -> dict[str, Candidate]:
        """The targets this agent may sample; process names are looked up once per call (each refresh)."""
        wanted = [t for t in targets.values() if t.resources.configured]
        if any(t.resources.process_name and not t.resources.process_name.startswith("@") for t in wanted):
            self._local_names = local_process_names()
        found: dict[str, Candidate] = {}
        for target in wanted:
            where = placement(target.resources, self._hostname, self._local_names)
            if where is not None:
                found[target.service_id] = Candidate(target.slug, self.interval, local=where is Placement.LOCAL)
        return found

    def _sampler(self, target: Target) -> Sampler:
        return sampler_for(target, self._environ, self._client, timeout=min(10.0, max(1.0, self.interval * 0.8)))

    async def gained(self, service_ids: list[str]) -> None:
        since = datetime.now(UTC) - timedelta(days=1)
        try:
            summaries = await self._store.minute_summaries(service_ids, since)
            alerts = await self._store.open_alerts(service_ids)
        except Exception as error:
            log.warning("resource history not loaded; figures restart", error=str(error))
            summaries, alerts = {}, {}
        for service_id in service_ids:
            target = self._lookup(service_id)
            if target is None:
                continue
            rolling = RollingFigures()
            rolling.seed(summaries.get(service_id, []))
            evaluator = ThresholdEvaluator(service_id, target.slug, alerts.get(service_id, []))
            self._watched[service_id] = _Watched(target, self._sampler(target), rolling, evaluator)

    def lost(self, service_ids: list[str]) -> None:
        for service_id in service_ids:
            self._watched.pop(service_id, None)

    def retarget(self, target: Target) -> None:
        watched = self._watched.get(target.service_id)
        if watched is None:
            return
        if watched.target.resources != target.resources:
            watched.sampler = self._sampler(target)
        watched.target = target

    async def close(self) -> None:
        await self._client.aclose()

    @staticmethod
    def busy(service_id: str) -> bool:
        """Sampling has no slots to lose: a target can change hands at any time."""
        return False

    async def run(self) -> None:
        while True:
            now = time.time()
            await asyncio.sleep(self.interval - now % self.interval)
            try:
                await self.round()
            except Exception:
                log.exception("resource sampling round failed")

    async def _sample(self, watched: _Watched) -> tuple[_Watched, ResourceSample | None, str]:
        async with self._semaphore:
            try:
                return watched, await watched.sampler.sample(), ""
            except SampleError as error:
                return watched, None, str(error)
            except Exception as error:
                log.warning("resource sample failed", service=watched.target.slug, error=str(error))
                return watched, None, f"sampling failed: {type(error).__name__}"

    async def round(self) -> int:
        """Sample every held target once, store, publish; returns how many samples were taken."""
        watched = [w for sid, w in self._watched.items() if self._owns(sid)]
        if not watched:
            return 0
        outcomes = await asyncio.gather(*(self._sample(w) for w in watched))
        services: list[SampledService] = []
        changes: list[ResourceAlert] = []
        updates: list[tuple[str, ResourceMetrics]] = []
        open_now: dict[str, list[ResourceAlert]] = {}
        now = datetime.now(UTC)
        for w, sample, error in outcomes:
            target = w.target
            if sample is not None:
                w.rolling.add(sample)
                changes += w.evaluator.evaluate(sample, target.thresholds)
                w.last = w.rolling.metrics(sample)
                updates.append((target.service_id, w.last))
                # Every update carries the alerts open after this sample: the state, not only the edges,
                # so a subscriber that missed an opened/resolved event converges (health's alert rules).
                open_now[target.service_id] = w.evaluator.open_alerts
            services.append(
                SampledService(
                    target.service_id, target.slug, w.sampler.source, target.thresholds, self.interval,
                    self.agent_id, w.last or ResourceMetrics(timestamp=now), sample, error,
                )
            )  # fmt: skip
        self.samples_taken += len(updates)
        announced = changes
        try:
            opened = set(await self._store.write_round(services, changes))
            announced = [a for a in changes if a.resolved_at is not None or a.id in opened]
        except Exception as error:
            log.warning("resource samples not stored", count=len(services), error=str(error))
        with contextlib.suppress(Exception):
            await self._events.metrics_updated(updates, open_now)
            if announced:
                await self._events.alerts_changed(announced)
        for alert in announced:
            log.info("resource alert " + ("resolved" if alert.resolved_at else "triggered"), service=alert.service_slug,
                     alert_type=alert.alert_type.value, value=round(alert.actual_value, 1))  # fmt: skip
        return len(updates)
