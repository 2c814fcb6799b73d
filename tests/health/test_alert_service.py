"""AlertService with in-memory fakes of its own Protocols (repository, notification sink, announcer):
which changes notify, which only count, and a fingerprint created by another replica at the same moment."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.errors import AlreadyExistsError, NotFoundError
from services.health.alerts.domain import (
    Alert,
    AlertFilter,
    AlertPage,
    Change,
    Episode,
    Signal,
    Silence,
    fire,
    parse_matcher,
)
from services.health.alerts.notice import (
    AlertNotice,
    AlertState,
    ChannelTestResult,
    NotificationAttempt,
    Severity,
)
from services.health.alerts.rules import ServiceStatusSeen
from services.health.alerts.service import AlertService
from services.health.domain import Thresholds

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class MemoryWriter:
    def __init__(self, repo: MemoryRepository) -> None:
        self.repo = repo
        self.connection = repo  # what the sink receives: proof it ran inside this "transaction"
        self.pending: dict[str, Alert] = {}

    async def by_fingerprint(self, fingerprint: str) -> Alert | None:
        return next((a for a in self.repo.alerts.values() if a.fingerprint == fingerprint), None)

    async def by_id(self, alert_id: str) -> Alert:
        return self.repo.alerts[alert_id]

    async def save(self, alert: Alert) -> None:
        if self.repo.steal_next is not None:
            # Another replica inserted this fingerprint first; it is there when we look again.
            self.repo.alerts[self.repo.steal_next.id] = self.repo.steal_next
            self.repo.steal_next = None
            raise AlreadyExistsError("fingerprint taken")
        self.pending[alert.id] = alert

    async def active_silences(self, now: datetime) -> list[Silence]:
        return [s for s in self.repo.silence_list if s.active(now)]


class MemoryRepository:
    def __init__(self) -> None:
        self.alerts: dict[str, Alert] = {}
        self.silence_list: list[Silence] = []
        self.steal_next: Alert | None = None
        self.in_transaction = False

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryWriter]:
        writer = MemoryWriter(self)
        self.in_transaction = True
        try:
            yield writer
            self.alerts.update(writer.pending)  # commit
        finally:
            self.in_transaction = False

    async def resolve_id(self, ref: str) -> str:
        found = [i for i in self.alerts if i.startswith(ref)]
        if len(found) != 1:
            raise NotFoundError(f"alert {ref} not found")
        return found[0]

    async def get(self, alert_id: str) -> Alert:
        return self.alerts[alert_id]

    async def episodes(self, alert_id: str) -> list[Episode]:
        return [self.alerts[alert_id].current]

    async def page(self, flt: AlertFilter, first: int, after: str | None) -> AlertPage:
        return AlertPage(list(self.alerts.values())[:first], None, len(self.alerts))

    async def open_alerts(self, rule: str) -> list[Alert]:
        return [a for a in self.alerts.values() if a.rule == rule and a.current.open]

    async def open_counts(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for a in self.alerts.values():
            if a.current.open:
                key = (a.rule, a.current.severity.value)
                counts[key] = counts.get(key, 0) + 1
        return counts

    async def purge(self, before: datetime, failures_before: datetime) -> int:
        return 0

    async def insert_silence(self, silence: Silence) -> Silence:
        self.silence_list.append(silence)
        return silence

    async def silence(self, silence_id: str) -> Silence:
        return next(s for s in self.silence_list if s.id == silence_id)

    async def expire_silence(self, silence_id: str, who: str, now: datetime) -> Silence:
        found = await self.silence(silence_id)
        ended = replace(found, ends_at=now, expired_by=who)
        self.silence_list = [ended if s.id == silence_id else s for s in self.silence_list]
        return ended

    async def silences(self, now: datetime, *, include_expired: bool, tenant: str | None) -> list[Silence]:
        return [s for s in self.silence_list if include_expired or s.active(now)]

    async def record_failure(self, job_id: str, job_type: str, tenant: str, at: datetime, final: bool) -> bool:
        return True

    async def count_failures(self, job_type: str, tenant: str, since: datetime) -> int:
        return 0

    async def slugs(self, service_ids: Sequence[str]) -> dict[str, str]:
        return {}

    async def service_statuses(self, service_ids: Sequence[str]) -> list[ServiceStatusSeen]:
        return []

    async def service_ref(self, ref: str) -> tuple[str, str, Thresholds]:
        raise NotFoundError(f"service {ref} not found")

    async def set_thresholds(self, service_id: str, thresholds: Thresholds, who: str, now: datetime) -> None:
        return None


class MemorySink:
    def __init__(self, repo: MemoryRepository) -> None:
        self.repo = repo
        self.notices: list[AlertNotice] = []

    async def submit(self, connection: Any, notices: Sequence[AlertNotice]) -> None:
        assert connection is self.repo and self.repo.in_transaction, "notices are stored inside the change"
        self.notices.extend(notices)

    async def attempts(self, alert_id: str) -> Sequence[NotificationAttempt]:
        return []

    async def test_channel(self, name: str) -> ChannelTestResult:
        raise NotFoundError(name)


class MemoryAnnouncer:
    def __init__(self) -> None:
        self.changes: list[tuple[str, Change]] = []

    async def alerts_changed(self, changes: Sequence[tuple[Alert, Change]]) -> None:
        self.changes.extend((alert.id, change) for alert, change in changes)


def service() -> tuple[AlertService, MemoryRepository, MemorySink, MemoryAnnouncer]:
    repo = MemoryRepository()
    sink, announcer = MemorySink(repo), MemoryAnnouncer()
    return AlertService(repo, sink, announcer, clock=lambda: NOW), repo, sink, announcer


def crm_down(at: datetime = NOW, firing: bool = True) -> Signal:
    return Signal("service.offline", Severity.CRITICAL, {"service": "crm"}, "crm is offline", "503", at, firing)


async def test_only_state_changes_notify_while_every_change_is_announced() -> None:
    alerts, repo, sink, announcer = service()
    await alerts.apply([crm_down(), crm_down(NOW + timedelta(seconds=30))])
    (alert,) = repo.alerts.values()
    assert alert.current.occurrences == 2
    assert [n.state for n in sink.notices] == [AlertState.FIRING]
    assert [c for _, c in announcer.changes] == [Change.FIRED, Change.REPEATED]
    await alerts.acknowledge(alert.id[:6], "ops", "on it")
    await alerts.apply([crm_down(firing=False)])
    assert [n.state for n in sink.notices] == [AlertState.FIRING, AlertState.ACKNOWLEDGED, AlertState.RESOLVED]
    assert sink.notices[-1].acknowledged_by == "ops" and "resolved_by" not in sink.notices[-1].annotations


async def test_a_cleared_condition_without_an_alert_changes_nothing() -> None:
    alerts, repo, sink, announcer = service()
    assert await alerts.apply([crm_down(firing=False)]) == []
    assert repo.alerts == {} and sink.notices == [] and announcer.changes == []


async def test_a_silenced_alert_is_stored_and_its_notice_marked() -> None:
    alerts, repo, sink, _ = service()
    silence = await alerts.create_silence([parse_matcher("service=crm")], timedelta(hours=1), "ops", "upgrade")
    await alerts.apply([crm_down()])
    assert next(iter(repo.alerts.values())).current.silenced_by == silence.id
    assert sink.notices[0].silenced_by == silence.id


async def test_a_fingerprint_another_replica_just_created_becomes_a_repeat() -> None:
    alerts, repo, sink, _ = service()
    first, _ = fire(None, crm_down(), "other-replica")
    repo.steal_next = first
    changes = await alerts.apply([crm_down()])
    assert [(a.id, c) for a, c in changes] == [("other-replica", Change.REPEATED)]
    assert repo.alerts["other-replica"].current.occurrences == 2
    assert sink.notices == []  # the other replica notified when it created it
