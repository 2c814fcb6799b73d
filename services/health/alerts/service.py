"""Alert use cases: apply the rules' signals, acknowledge, resolve, silence, thresholds; reads.

Every change of an alert is written, checked against the active silences and handed to the
notification sink in one transaction; the live `AlertTriggered` events leave after it committed.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from services.common.errors import AlreadyExistsError, NotFoundError
from services.common.logging import get_logger
from services.health.alerts import rules
from services.health.alerts.domain import (
    Alert,
    AlertFilter,
    AlertPage,
    Change,
    Episode,
    Matcher,
    Signal,
    Silence,
    acknowledge,
    clear,
    fire,
    new_silence,
    silence_for,
)
from services.health.alerts.domain import resolve as resolve_by_hand
from services.health.alerts.notice import ChannelTestResult, NotificationAttempt, NotificationSink
from services.health.domain import InvalidFieldError, Thresholds
from services.health.registry.rules import check_thresholds
from services.health.status import CheckState

log = get_logger(__name__)

HISTORY = timedelta(days=365)
MAX_PAGE = 500


class AlertWriter(Protocol):
    connection: Any

    async def by_fingerprint(self, fingerprint: str) -> Alert | None: ...
    async def by_id(self, alert_id: str) -> Alert: ...
    async def save(self, alert: Alert) -> None: ...
    async def active_silences(self, now: datetime) -> list[Silence]: ...


class AlertRepository(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[AlertWriter]: ...
    async def resolve_id(self, ref: str) -> str: ...
    async def get(self, alert_id: str) -> Alert: ...
    async def episodes(self, alert_id: str) -> list[Episode]: ...
    async def page(self, flt: AlertFilter, first: int, after: str | None) -> AlertPage: ...
    async def open_alerts(self, rule: str) -> list[Alert]: ...
    async def open_counts(self) -> dict[tuple[str, str], int]: ...
    async def purge(self, before: datetime, failures_before: datetime) -> int: ...
    async def insert_silence(self, silence: Silence) -> Silence: ...
    async def silence(self, silence_id: str) -> Silence: ...
    async def expire_silence(self, silence_id: str, who: str, now: datetime) -> Silence: ...
    async def silences(self, now: datetime, *, include_expired: bool, tenant: str | None) -> list[Silence]: ...
    async def record_failure(self, job_id: str, job_type: str, tenant: str, at: datetime, final: bool) -> bool: ...
    async def count_failures(self, job_type: str, tenant: str, since: datetime) -> int: ...
    async def slugs(self, service_ids: Sequence[str]) -> dict[str, str]: ...
    async def service_statuses(self, service_ids: Sequence[str]) -> list[rules.ServiceStatusSeen]: ...
    async def service_ref(self, ref: str) -> tuple[str, str, Thresholds]: ...
    async def set_thresholds(self, service_id: str, thresholds: Thresholds, who: str, now: datetime) -> None: ...


class AlertAnnouncer(Protocol):
    """Live fan-out of alert changes (AlertTriggered on the bus); never raises."""

    async def alerts_changed(self, changes: Sequence[tuple[Alert, Change]]) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AlertDetail:
    alert: Alert
    episodes: list[Episode]


_THRESHOLD_NAMES = frozenset(f.name for f in dataclasses.fields(Thresholds))


class AlertService:
    def __init__(
        self,
        repository: AlertRepository,
        sink: NotificationSink,
        announcer: AlertAnnouncer,
        settings: rules.RuleSettings | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._repo = repository
        self._sink = sink
        self._announcer = announcer
        self.settings = settings or rules.RuleSettings()
        self._clock = clock
        self._spikes = rules.SpikeDetector()
        self._slugs: dict[str, str] = {}
        self._resource_suspects: set[tuple[str, str, bool]] = set()

    # -- signals from the rules ----------------------------------------------------------------------

    async def apply(self, signals: Sequence[Signal]) -> list[tuple[Alert, Change]]:
        """Fire, repeat or clear the alert of each signal; returns what changed."""
        changes: list[tuple[Alert, Change]] = []
        for signal in signals:
            for attempt in range(3):
                try:
                    result = await self._apply_one(signal)
                    break
                except AlreadyExistsError:
                    # Another replica created the same fingerprint at the same moment: it exists now.
                    if attempt == 2:
                        raise
            if result is not None:
                changes.append(result)
        if changes:
            await self._announcer.alerts_changed(changes)
        return changes

    async def _apply_one(self, signal: Signal) -> tuple[Alert, Change] | None:
        async with self._repo.transaction() as writer:
            current = await writer.by_fingerprint(signal.fingerprint)
            if signal.firing:
                alert, change = fire(current, signal, str(uuid.uuid4()))
            else:
                cleared = clear(current, signal.at) if current is not None else None
                if cleared is None:
                    return None
                alert, change = cleared, Change.RESOLVED
            return alert, await self._save(writer, alert, change)

    async def _save(self, writer: AlertWriter, alert: Alert, change: Change) -> Change:
        if change.notifies:
            now = self._clock()
            silenced = silence_for(alert.labels, await writer.active_silences(now), now)
            alert = replace(alert, current=replace(alert.current, silenced_by=silenced))
        await writer.save(alert)
        if change.notifies:
            await self._sink.submit(writer.connection, [alert.notice()])
        return change

    async def on_job_outcomes(self, outcomes: Sequence[rules.JobOutcome]) -> list[tuple[Alert, Change]]:
        """The job rules: a final failure fires jobs.failed, a burst of failures jobs.failure_rate."""
        signals: list[Signal] = []
        for outcome in outcomes:
            if outcome.status is rules.JobStatus.FAILED:
                await self._repo.record_failure(
                    outcome.job_id, outcome.job_type, outcome.tenant, outcome.finished_at, outcome.final_failure
                )
                since = self._clock() - self.settings.failure_window
                failed = await self._repo.count_failures(outcome.job_type, outcome.tenant, since)
                signals.append(
                    rules.failure_rate_signal(outcome.job_type, outcome.tenant, failed, self.settings, self._clock())
                )
            signal = rules.job_failed_signal(outcome)
            if signal is not None:
                signals.append(signal)
        return await self.apply(signals)

    async def on_communication_errors(self, errors: Sequence[rules.ErrorSeen]) -> list[tuple[Alert, Change]]:
        """The error-spike rule, for the service and group of each error."""
        keys = sorted({self._spikes.observe(error) for error in errors})
        return await self.apply(await self._spike_signals(keys, only_firing=True))

    async def _spike_signals(self, keys: Sequence[tuple[str, str]], *, only_firing: bool) -> list[Signal]:
        now = self._clock()
        window = timedelta(minutes=self.settings.error_spike_minutes)
        slugs = await self._slugs_of({service_id for service_id, _ in keys})
        signals = []
        for key in keys:
            if key[0] not in slugs:
                continue
            recent, baseline = self._spikes.counts(key, now, window)
            signal = rules.spike_signal(slugs[key[0]], key[1], recent, baseline, self.settings, now)
            if signal.firing or not only_firing:
                signals.append(signal)
        return signals

    async def sweep(self) -> list[tuple[Alert, Change]]:
        """Resolve failure-rate alerts whose window no longer holds too many failures, and error spikes
        that ended."""
        now = self._clock()
        signals = [s for s in await self._spike_signals(self._spikes.keys(), only_firing=False) if not s.firing]
        for alert in await self._repo.open_alerts("jobs.failure_rate"):
            job_type, tenant = alert.labels.get("job_type", ""), alert.labels.get("tenant", "")
            failed = await self._repo.count_failures(job_type, tenant, now - self.settings.failure_window)
            rate = rules.failure_rate_signal(job_type, tenant, failed, self.settings, now)
            if not rate.firing:
                signals.append(rate)
        return await self.apply(signals)

    async def on_checks(self, states: Sequence[CheckState]) -> list[tuple[Alert, Change]]:
        """The connected-service rules, from the probes' check states."""
        signals: list[Signal] = []
        latest: dict[str, CheckState] = {}
        for state in sorted(states, key=lambda s: s.checked_at):
            latest[state.service_id] = state
            for signal in (rules.offline_signal(state, self.settings), rules.tls_signal(state, self.settings)):
                if signal is not None:
                    signals.append(signal)
        for seen in await self._repo.service_statuses(sorted(latest)):
            degraded = rules.degraded_signal(seen, latest[seen.service_id].checked_at, self.settings)
            if degraded is not None:
                signals.append(degraded)
        return await self.apply(signals)

    async def on_resource_alerts(self, seen: Sequence[rules.ResourceAlertSeen]) -> list[tuple[Alert, Change]]:
        """The six resource alert types the probes evaluate, through the same lifecycle."""
        known = [s for s in seen if s.kind in rules.RESOURCE_SEVERITY]
        slugs = await self._slugs_of({s.service_id for s in known})
        signals = [
            rules.resource_signal(replace(s, service_slug=slugs[s.service_id])) for s in known if s.service_id in slugs
        ]
        return await self.apply(signals)

    async def reconcile_resources(
        self, open_now: Mapping[str, Sequence[rules.ResourceAlertSeen]]
    ) -> list[tuple[Alert, Change]]:
        """Set resource alerts right from the probes' latest figures (`open_now`: service id → the alerts
        open after its latest sample). The opened/resolved events come over pub/sub and one can be
        missed (this service restarting, a Redis reconnect); the figures repeat the whole state every
        few seconds. A difference is acted on only when two reconciliations in a row see it, so an
        event still on its way is never overtaken: an alert open there but not here fires, one firing
        here but no longer open there resolves."""
        slugs = await self._slugs_of(set(open_now))
        firing: dict[tuple[str, str], Alert] = {}
        for kind in rules.RESOURCE_SEVERITY:
            for alert in await self._repo.open_alerts(f"resource.{kind}"):
                firing[(alert.labels.get("service", ""), kind)] = alert
        now = self._clock()
        seen_now: dict[tuple[str, str, bool], rules.ResourceAlertSeen] = {}
        for service_id, alerts in open_now.items():
            slug = slugs.get(service_id)
            if slug is None:
                continue
            kinds = {a.kind for a in alerts if a.kind in rules.RESOURCE_SEVERITY}
            for seen in alerts:
                if seen.kind in kinds and (slug, seen.kind) not in firing:
                    seen_now[(service_id, seen.kind, True)] = replace(seen, service_slug=slug)
            for (fired_slug, kind), alert in firing.items():
                if fired_slug == slug and kind not in kinds:
                    seen_now[(service_id, kind, False)] = rules.ResourceAlertSeen(
                        service_id=service_id,
                        kind=kind,
                        threshold=float(alert.current.annotations.get("threshold", "0") or 0),
                        actual=float(alert.current.annotations.get("actual", "0") or 0),
                        message="no longer breached (found by comparing with the latest figures)",
                        triggered_at=alert.current.started_at,
                        resolved_at=now,
                        service_slug=slug,
                    )
        confirmed = [seen for key, seen in seen_now.items() if key in self._resource_suspects]
        self._resource_suspects = set(seen_now)
        if confirmed:
            log.info("resource alerts reconciled with the latest figures", changes=len(confirmed))
        return await self.apply([rules.resource_signal(seen) for seen in confirmed])

    async def _slugs_of(self, service_ids: set[str]) -> dict[str, str]:
        """Slugs by service id, asked of the registry only for ids not seen before (slugs never change)."""
        missing = sorted(service_ids - self._slugs.keys())
        if missing:
            self._slugs.update(await self._repo.slugs(missing))
        return {i: self._slugs[i] for i in service_ids if i in self._slugs}

    # -- people ------------------------------------------------------------------------------------

    async def _visible(self, ref: str, tenant: str | None) -> str:
        alert_id = await self._repo.resolve_id(ref)
        if tenant is not None:
            alert = await self._repo.get(alert_id)
            if alert.tenant not in ("", tenant):
                raise NotFoundError(f"alert {ref} not found")
        return alert_id

    async def acknowledge(self, ref: str, who: str, comment: str = "", tenant: str | None = None) -> Alert:
        alert_id = await self._visible(ref, tenant)
        async with self._repo.transaction() as writer:
            alert = acknowledge(await writer.by_id(alert_id), who, comment, self._clock())
            await self._save(writer, alert, Change.ACKNOWLEDGED)
        log.info("alert acknowledged", alert_id=alert_id, by=who)
        await self._announcer.alerts_changed([(alert, Change.ACKNOWLEDGED)])
        return alert

    async def resolve(self, ref: str, who: str, comment: str = "", tenant: str | None = None) -> Alert:
        alert_id = await self._visible(ref, tenant)
        async with self._repo.transaction() as writer:
            alert = resolve_by_hand(await writer.by_id(alert_id), who, comment, self._clock())
            await self._save(writer, alert, Change.RESOLVED)
        log.info("alert resolved by hand", alert_id=alert_id, by=who)
        await self._announcer.alerts_changed([(alert, Change.RESOLVED)])
        return alert

    async def get(self, ref: str, tenant: str | None = None) -> AlertDetail:
        alert_id = await self._visible(ref, tenant)
        return AlertDetail(await self._repo.get(alert_id), await self._repo.episodes(alert_id))

    async def list_alerts(self, flt: AlertFilter, first: int = 50, after: str | None = None) -> AlertPage:
        if not 0 <= first <= MAX_PAGE:
            raise InvalidFieldError("first", f"must be from 1 to {MAX_PAGE} (got {first})")
        return await self._repo.page(flt, first or 50, after or None)

    async def notifications(self, ref: str, tenant: str | None = None) -> Sequence[NotificationAttempt]:
        return await self._sink.attempts(await self._visible(ref, tenant))

    def rules(self) -> list[rules.RuleInfo]:
        return rules.catalog(self.settings)

    async def test_channel(self, name: str) -> ChannelTestResult:
        if not name.strip():
            raise InvalidFieldError("name", "name the channel to test")
        return await self._sink.test_channel(name.strip())

    # -- silences ----------------------------------------------------------------------------------

    async def create_silence(
        self,
        matchers: Sequence[Matcher],
        duration: timedelta,
        who: str,
        comment: str,
        tenant: str | None = None,
    ) -> Silence:
        silence = new_silence(str(uuid.uuid4()), matchers, duration, who, comment, self._clock(), tenant or "")
        stored = await self._repo.insert_silence(silence)
        log.info("silence created", silence_id=stored.id, by=who, matchers=[str(m) for m in matchers])
        return stored

    async def expire_silence(self, silence_id: str, who: str, tenant: str | None = None) -> Silence:
        if tenant is not None and (await self._repo.silence(silence_id)).tenant != tenant:
            raise NotFoundError(f"silence {silence_id} not found")
        return await self._repo.expire_silence(silence_id, who, self._clock())

    async def silences(self, include_expired: bool = False, tenant: str | None = None) -> list[Silence]:
        return await self._repo.silences(self._clock(), include_expired=include_expired, tenant=tenant)

    # -- thresholds --------------------------------------------------------------------------------

    async def update_thresholds(self, service: str, changes: Mapping[str, float], who: str) -> tuple[str, Thresholds]:
        """Change some thresholds of a service (the rest keep their value); persisted over the file's."""
        unknown = sorted(set(changes) - _THRESHOLD_NAMES)
        if unknown:
            raise InvalidFieldError(f"thresholds.{unknown[0]}", "is not a threshold")
        if not changes:
            raise InvalidFieldError("thresholds", "give at least one threshold to change")
        service_id, slug, current = await self._repo.service_ref(service)
        values: dict[str, Any] = {}
        for name, value in changes.items():
            integral = name in ("cpu_sustained_seconds", "queue_depth")
            if integral and float(value) != int(value):
                raise InvalidFieldError(f"thresholds.{name}", f"must be a whole number (got {value:g})")
            values[name] = int(value) if integral else float(value)
        updated = check_thresholds(replace(current, **values))
        await self._repo.set_thresholds(service_id, updated, who, self._clock())
        log.info("thresholds updated", service=slug, by=who, changes=dict(changes))
        return slug, updated

    async def open_counts(self) -> dict[tuple[str, str], int]:
        """Alerts firing or acknowledged now, by (rule, severity)."""
        return await self._repo.open_counts()

    async def purge(self) -> int:
        now = self._clock()
        # Failures are kept a day, or the failure-rate window when that is longer.
        return await self._repo.purge(now - HISTORY, now - max(timedelta(days=1), self.settings.failure_window))
