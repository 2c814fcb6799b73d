"""Helpers for agent tests: a target list of the test's own, fast agent settings, and polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from services.common.errors import NotFoundError
from services.probes.agent.breaker import BreakerSnapshot
from services.probes.agent.records import CheckRecord
from services.probes.domain import (
    BreakerState,
    ErrorType,
    ProbeKind,
    ProbeOptions,
    ResourceSource,
    Target,
    Thresholds,
    Timing,
)
from services.probes.probing.classify import make
from services.probes.settings import ProbesSettings
from tests.support import ServiceHarness

T = TypeVar("T")


class StaticTargets:
    """TargetLister over a list the test controls (the registry's role in production)."""

    def __init__(self, targets: list[Target]) -> None:
        self.targets = targets

    async def list_enabled(self) -> list[Target]:
        return list(self.targets)

    async def get(self, service: str) -> Target:
        for target in self.targets:
            if service in (target.service_id, target.slug):
                return target
        raise NotFoundError(f"no connected service {service!r}")

    async def list_named(self, services: list[str]) -> list[Target]:
        return [t for t in self.targets if not services or t.service_id in services or t.slug in services]


def http_target(service_id: str, url: str, interval: int = 3, *, max_retries: int = 0, **extra: object) -> Target:
    return Target(
        service_id, f"svc-{service_id[-4:]}", f"Service {service_id[-4:]}", ProbeKind.HTTP, url,
        ProbeOptions(max_retries=max_retries, timeout_seconds=2.0), interval_seconds=interval,
        thresholds=extra.pop("thresholds", Thresholds()), resources=extra.pop("resources", ResourceSource()),  # type: ignore[arg-type]
    )  # fmt: skip


def fast_settings(harness: ServiceHarness, **overrides: object) -> ProbesSettings:
    """Agent settings that make a test's few seconds worth several lease periods."""
    values: dict[str, object] = {
        "probes_lease_tick_seconds": 0.2,
        "probes_lease_seconds": 1.0,
        "probes_targets_refresh_seconds": 0.2,
        "probes_flush_seconds": 0.2,
        "probes_retry_backoff_seconds": 0.01,
        "probes_resource_interval_seconds": 1.0,
    }
    values.update(overrides)
    return harness.settings_for(ProbesSettings, **values)


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def check_record(service_id: str, at: datetime, ms: float, success: bool = True, slot: int = 0) -> CheckRecord:
    return CheckRecord(
        service_id, "erp", slot, "agent-x", at, success, "HTTP 200" if success else "timeout", ms, 30,
        BreakerSnapshot() if success else BreakerSnapshot(BreakerState.CLOSED, 1),
        error=None if success else make(ErrorType.READ_TIMEOUT, "TIMEOUT", "timeout"), timing=Timing(total_ms=ms),
    )  # fmt: skip
