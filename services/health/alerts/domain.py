"""The alert lifecycle, pure: alerts, episodes, silences and the transitions between states.

    rule signal (firing)  ──►  no alert / last episode resolved  →  new episode, FIRING
                               episode open                      →  occurrences + 1 (same episode)
    rule signal (cleared) ──►  episode open                      →  RESOLVED (automatically)
    acknowledge           ──►  FIRING → ACKNOWLEDGED (who, when, comment)
    resolve by hand       ──►  FIRING | ACKNOWLEDGED → RESOLVED (who, when, comment)

An alert is identified by its fingerprint (the rule and its identifying labels), so the same problem
seen again is one alert with a higher occurrence count, and a problem that comes back after it was
resolved is a new episode of the same alert. Silences suppress notifications, never the alert.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from services.common.errors import FailedPreconditionError
from services.health.alerts.notice import AlertNotice, AlertState, Severity
from services.health.domain import InvalidFieldError

# Labels every alert may carry; `rule` and `severity` always, the others where they apply.
LABEL_NAMES = ("rule", "severity", "service", "tenant", "job_type")
MAX_COMMENT = 1000
MAX_SILENCE = timedelta(days=365)
_LABEL_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    """The identity of an alert: its rule and labels, severity aside (a rule decides its severity)."""
    identity = {k: v for k, v in labels.items() if k != "severity" and v}
    identity["rule"] = rule
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return digest[:16]


@dataclass(frozen=True)
class Signal:
    """What a rule saw: its condition holds (`firing`) or has cleared, for one set of labels."""

    rule: str
    severity: Severity
    labels: Mapping[str, str]
    summary: str
    description: str
    at: datetime
    firing: bool = True
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.labels)

    def all_labels(self) -> dict[str, str]:
        labels = {k: v for k, v in self.labels.items() if v}
        labels["rule"] = self.rule
        labels["severity"] = self.severity.value
        return labels


@dataclass(frozen=True)
class Episode:
    """One firing of an alert, from its first signal to its resolution."""

    number: int
    state: AlertState
    severity: Severity
    summary: str
    description: str
    occurrences: int
    started_at: datetime
    last_fired_at: datetime
    changed_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    ack_comment: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None  # None with resolved_at set: resolved automatically
    resolve_comment: str | None = None
    silenced_by: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.state is not AlertState.RESOLVED


@dataclass(frozen=True)
class Alert:
    """An alert (one fingerprint) with its current episode."""

    id: str
    fingerprint: str
    rule: str
    labels: Mapping[str, str]
    created_at: datetime
    current: Episode

    @property
    def tenant(self) -> str:
        return self.labels.get("tenant", "")

    @property
    def service(self) -> str:
        return self.labels.get("service", "")

    def notice(self) -> AlertNotice:
        e = self.current
        return AlertNotice(
            alert_id=self.id,
            fingerprint=self.fingerprint,
            episode=e.number,
            state=e.state,
            severity=e.severity,
            summary=e.summary,
            description=e.description,
            labels=dict(self.labels),
            started_at=e.started_at,
            changed_at=e.changed_at,
            occurrences=e.occurrences,
            resolved_at=e.resolved_at,
            acknowledged_by=e.acknowledged_by,
            comment=e.ack_comment if e.state is AlertState.ACKNOWLEDGED else e.resolve_comment,
            silenced_by=e.silenced_by,
            # Who resolved it by hand (absent: it resolved itself when the condition cleared).
            annotations={**e.annotations, **({"resolved_by": e.resolved_by} if e.resolved_by else {})},
        )


class Change(StrEnum):
    """What a step of the lifecycle did to an alert."""

    FIRED = "fired"  # a new alert or a new episode
    REPEATED = "repeated"  # one more occurrence of an open episode
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"

    @property
    def notifies(self) -> bool:
        """Repeats raise the count on the dashboard; they do not page anyone again."""
        return self is not Change.REPEATED


def fire(alert: Alert | None, signal: Signal, new_id: str) -> tuple[Alert, Change]:
    """The alert after a firing signal: a new alert, a new episode, or one more occurrence."""
    now = signal.at
    if alert is not None and alert.current.open:
        episode = replace(
            alert.current,
            occurrences=alert.current.occurrences + 1,
            last_fired_at=now,
            summary=signal.summary,
            description=signal.description,
            severity=signal.severity,
            annotations=dict(signal.annotations),
        )
        return replace(alert, current=episode), Change.REPEATED
    episode = Episode(
        number=alert.current.number + 1 if alert else 1,
        state=AlertState.FIRING,
        severity=signal.severity,
        summary=signal.summary,
        description=signal.description,
        occurrences=1,
        started_at=now,
        last_fired_at=now,
        changed_at=now,
        annotations=dict(signal.annotations),
    )
    if alert is None:
        alert = Alert(new_id, signal.fingerprint, signal.rule, signal.all_labels(), now, episode)
        return alert, Change.FIRED
    return replace(alert, labels=signal.all_labels(), current=episode), Change.FIRED


def clear(alert: Alert, at: datetime) -> Alert | None:
    """The alert resolved automatically because its condition cleared; None when it was not open."""
    if not alert.current.open:
        return None
    return replace(alert, current=replace(alert.current, state=AlertState.RESOLVED, resolved_at=at, changed_at=at))


def acknowledge(alert: Alert, who: str, comment: str, at: datetime) -> Alert:
    e = alert.current
    if e.state is AlertState.RESOLVED:
        raise FailedPreconditionError(f"alert {alert.id} is resolved; there is nothing to acknowledge")
    if e.state is AlertState.ACKNOWLEDGED:
        raise FailedPreconditionError(f"alert {alert.id} was already acknowledged by {e.acknowledged_by}")
    episode = replace(
        e,
        state=AlertState.ACKNOWLEDGED,
        acknowledged_at=at,
        acknowledged_by=who,
        ack_comment=check_comment(comment) or None,
        changed_at=at,
    )
    return replace(alert, current=episode)


def resolve(alert: Alert, who: str, comment: str, at: datetime) -> Alert:
    e = alert.current
    if e.state is AlertState.RESOLVED:
        raise FailedPreconditionError(f"alert {alert.id} is already resolved")
    episode = replace(
        e,
        state=AlertState.RESOLVED,
        resolved_at=at,
        resolved_by=who,
        resolve_comment=check_comment(comment) or None,
        changed_at=at,
    )
    return replace(alert, current=episode)


def check_comment(comment: str, name: str = "comment") -> str:
    text = comment.strip()
    if len(text) > MAX_COMMENT:
        raise InvalidFieldError(name, f"must be at most {MAX_COMMENT} characters (got {len(text)})")
    if "\x00" in text:
        raise InvalidFieldError(name, "must not contain NUL characters")
    return text


# -- silences ---------------------------------------------------------------------------------------


class MatchOp(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    """One label condition of a silence, as in Alertmanager (`service=crm`, `job_type=~ERP_.*`)."""

    name: str
    op: MatchOp
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op is MatchOp.EQUAL:
            return actual == self.value
        if self.op is MatchOp.NOT_EQUAL:
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op is MatchOp.REGEX else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op.value}{self.value}"


def parse_matcher(text: str, name: str = "matchers") -> Matcher:
    """`service=crm` → Matcher; InvalidFieldError naming `name` for anything else."""
    found = _MATCHER.match(text)
    if found is None:
        raise InvalidFieldError(name, f"{text!r} is not a matcher like service=crm (operators = != =~ !~)")
    label, op, value = found.group(1), MatchOp(found.group(2)), found.group(3)
    return make_matcher(label, op, value, name)


def make_matcher(label: str, op: MatchOp, value: str, name: str = "matchers") -> Matcher:
    if not _LABEL_NAME.match(label):
        raise InvalidFieldError(name, f"{label!r} is not a label name (lower case letters, digits, _)")
    if len(value) > 200:
        raise InvalidFieldError(name, "a matcher value must be at most 200 characters")
    if op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
        try:
            re.compile(value)
        except re.error as error:
            raise InvalidFieldError(name, f"{value!r} is not a regular expression: {error}") from None
    return Matcher(label, op, value)


@dataclass(frozen=True)
class Silence:
    """Notifications for alerts whose labels match every matcher are suppressed until `ends_at`."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    tenant: str = ""  # made by a tenant-scoped key: matches that tenant's alerts only
    expired_by: str | None = None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str], now: datetime) -> bool:
        if not self.active(now):
            return False
        if self.tenant and labels.get("tenant", "") != self.tenant:
            return False
        return all(m.matches(labels) for m in self.matchers)


def new_silence(
    silence_id: str,
    matchers: Sequence[Matcher],
    duration: timedelta,
    created_by: str,
    comment: str,
    now: datetime,
    tenant: str = "",
    starts_at: datetime | None = None,
) -> Silence:
    if not matchers:
        raise InvalidFieldError("matchers", "at least one matcher is needed (a silence of everything is refused)")
    if duration <= timedelta(0):
        raise InvalidFieldError("duration", "must be positive (for example 2h)")
    if duration > MAX_SILENCE:
        raise InvalidFieldError("duration", "must be at most 365 days")
    text = check_comment(comment)
    if not text:
        raise InvalidFieldError("comment", "say why the alerts are silenced")
    start = starts_at or now
    return Silence(silence_id, tuple(matchers), start, start + duration, created_by, text, now, tenant)


def silence_for(labels: Mapping[str, str], silences: Sequence[Silence], now: datetime) -> str | None:
    """The id of the first active silence matching the labels, if any."""
    for silence in silences:
        if silence.matches(labels, now):
            return silence.id
    return None


_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$")


def parse_duration(text: str, name: str = "duration") -> timedelta:
    """`2h`, `90m`, `1d12h`, `30s` → timedelta; InvalidFieldError naming `name` otherwise."""
    found = _DURATION.match(text or "")
    if not text or not text.strip() or found is None or not any(found.groups()):
        raise InvalidFieldError(name, f"{text!r} is not a duration like 30m, 2h or 1d")
    days, hours, minutes, seconds = (int(g or 0) for g in found.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


# -- reads ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertFilter:
    """Empty fields match everything. `tenant` set: that tenant's alerts and those of no tenant."""

    states: tuple[AlertState, ...] = ()
    severities: tuple[Severity, ...] = ()
    rules: tuple[str, ...] = ()
    service: str = ""
    since: datetime | None = None
    tenant: str | None = None


@dataclass(frozen=True)
class AlertPage:
    alerts: list[Alert]
    next_cursor: str | None
    total: int
