"""What delivery works with: the message made from a group, the channels it goes over, and the routing
that decides which groups an alert joins. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from services.health.registry.config import (
    AlertmanagerChannelModel,
    NotificationsModel,
    RouteModel,
)

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "no end yet"


class DeliveryError(Exception):
    """A channel could not deliver; the message says why (shown in the attempt history, never a secret)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class MessageAlert:
    """One alert as a message shows it."""

    alert_id: str
    fingerprint: str
    status: str  # "firing" or "resolved" (Alertmanager's two)
    state: str  # firing, acknowledged or resolved (ours)
    severity: str
    summary: str
    description: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    started_at: str  # RFC 3339
    ended_at: str | None
    occurrences: int = 1
    acknowledged_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id, "fingerprint": self.fingerprint, "status": self.status, "state": self.state,
            "severity": self.severity, "summary": self.summary, "description": self.description,
            "labels": dict(self.labels), "annotations": dict(self.annotations), "started_at": self.started_at,
            "ended_at": self.ended_at, "occurrences": self.occurrences, "acknowledged_by": self.acknowledged_by,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MessageAlert:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Message:
    """What one notification says: a group's alerts at the moment it was flushed (stored as the payload)."""

    idempotency_key: str
    channel: str
    group_key: str
    group_labels: Mapping[str, str]
    alerts: Sequence[MessageAlert]
    dashboard_url: str = ""
    repeat: bool = False
    test: bool = False

    @property
    def status(self) -> str:
        """Alertmanager's: firing while any alert in it fires."""
        return "firing" if any(a.status == "firing" for a in self.alerts) else "resolved"

    @property
    def firing(self) -> list[MessageAlert]:
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def resolved(self) -> list[MessageAlert]:
        return [a for a in self.alerts if a.status == "resolved"]

    @property
    def common_labels(self) -> dict[str, str]:
        return _common([a.labels for a in self.alerts])

    @property
    def common_annotations(self) -> dict[str, str]:
        return _common([a.annotations for a in self.alerts])

    def link(self, alert: MessageAlert) -> str:
        return f"{self.dashboard_url}/#/alerts/{alert.alert_id}" if self.dashboard_url else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "group_labels": dict(self.group_labels),
            "alerts": [a.to_json() for a in self.alerts],
            "dashboard_url": self.dashboard_url,
            "repeat": self.repeat,
        }

    @classmethod
    def from_row(cls, idempotency_key: str, channel: str, group_key: str, payload: Mapping[str, Any]) -> Message:
        return cls(
            idempotency_key=idempotency_key,
            channel=channel,
            group_key=group_key,
            group_labels=payload["group_labels"],
            alerts=[MessageAlert.from_json(a) for a in payload["alerts"]],
            dashboard_url=payload.get("dashboard_url", ""),
            repeat=payload.get("repeat", False),
        )


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common


class Channel(Protocol):
    """One configured channel; `send` raises DeliveryError when the other side did not take the message."""

    name: str
    kind: str
    # How long a sender holds a claimed notification: longer than a send can take, so no other replica
    # takes it over while it is still being sent.
    lease_seconds: float

    async def send(self, message: Message) -> str:
        """Deliver; returns a short detail (the server's answer) for the attempt history."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Timing:
    """A route's grouping for one channel, in seconds."""

    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    # Alertmanager forwarding: acknowledged alerts are still re-sent (ack is ours, not Alertmanager's).
    keepalive: bool = False


@dataclass(frozen=True, slots=True)
class Destination:
    """One (route, channel) an alert is delivered to, with that route's timing."""

    route: str
    channel: str
    timing: Timing


@dataclass(frozen=True)
class Router:
    """Alertmanager's routing, one level deep: the first matching child route (or every one marked
    `continue` before it) takes the alert, else the root does."""

    config: NotificationsModel
    _cache: dict[tuple[tuple[str, str], ...], tuple[Destination, ...]] = field(default_factory=dict)

    def destinations(self, labels: Mapping[str, str]) -> tuple[Destination, ...]:
        key = tuple(sorted(labels.items()))
        found = self._cache.get(key)
        if found is None:
            found = self._route(labels)
            if len(self._cache) < 10_000:
                self._cache[key] = found
        return found

    def _route(self, labels: Mapping[str, str]) -> tuple[Destination, ...]:
        root = self.config.route
        chosen: list[tuple[str, RouteModel | None]] = []
        for index, route in enumerate(root.routes):
            if route.matches(labels):
                chosen.append((f"routes[{index}]", route))
                if not route.continue_:
                    break
        if not chosen:
            chosen = [("root", None)]
        found: list[Destination] = []
        for name, picked in chosen:
            found += self._destinations(name, picked)
        return tuple(found)

    def _destinations(self, name: str, route: RouteModel | None) -> list[Destination]:
        channels = route.channels if route is not None else (self.config.route.channels or sorted(self.config.channels))
        return [Destination(name, channel, timing_for(self.config, name, channel)) for channel in channels]


def _pick(route: RouteModel | None, name: str, default: float) -> float:
    value = getattr(route, name, None) if route is not None else None
    return float(value) if value is not None else default


def rfc3339(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def timing_for(config: NotificationsModel, route: str, channel: str) -> Timing:
    """The timing a stored group was made with, from its route's name ("root" or "routes[N]")."""
    root = config.route
    child: RouteModel | None = None
    if route.startswith("routes[") and route.endswith("]"):
        index = int(route[7:-1])
        child = root.routes[index] if index < len(root.routes) else None
    group_by = tuple(child.group_by if child is not None and child.group_by is not None else root.group_by)
    model = config.channels.get(channel)
    if isinstance(model, AlertmanagerChannelModel):
        # Alertmanager groups for itself: hand alerts over at once and keep them alive.
        return Timing(group_by, 0.0, 0.0, model.resend_interval, keepalive=True)
    return Timing(
        group_by=group_by,
        group_wait=_pick(child, "group_wait", root.group_wait),
        group_interval=_pick(child, "group_interval", root.group_interval),
        repeat_interval=_pick(child, "repeat_interval", root.repeat_interval),
    )
