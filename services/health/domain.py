"""The registry of connected services: what a service is, where its definition comes from. No I/O here.

A `ServiceDefinition` is what an operator configures (declarative file or RegisterService); it is
always valid, because the only way to build one from outside input is `registry.rules.define_service`. A
`ConnectedService` is a stored definition plus the status the health aggregation maintains.

Endpoints and header values may hold `${NAME}` placeholders. They are references to the probe
agent's environment, expanded only at probe time, so they are kept visible in responses; literal
secrets are masked on the way out (`visible_endpoint`, `visible_headers`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from services.common.errors import InvalidArgumentError
from services.common.masking import MASK, is_secret_parameter, is_sensitive_key, mask_text, sanitize_url


class ServiceType(StrEnum):
    """REQ-001 ServiceType, plus OTHER for what fits none of them."""

    ERP = "ERP"
    PIM = "PIM"
    CRM = "CRM"
    DATABASE = "DATABASE"
    MESSAGE_QUEUE = "MESSAGE_QUEUE"
    CACHE = "CACHE"
    OTHER = "OTHER"


class ServiceStatus(StrEnum):
    """REQ-001 ServiceStatus. Every service starts UNKNOWN until it has been checked."""

    ONLINE = "ONLINE"
    DEGRADED = "DEGRADED"
    OFFLINE = "OFFLINE"
    UNKNOWN = "UNKNOWN"


class ProbeKind(StrEnum):
    """How a probe agent checks a service."""

    HTTP = "http"
    TCP = "tcp"
    POSTGRES = "postgres"
    REDIS = "redis"
    GRPC = "grpc"
    ELASTICSEARCH = "elasticsearch"


class Source(StrEnum):
    """Who owns a definition: the declarative file (changed only there), the API, or self-monitoring."""

    FILE = "file"
    API = "api"
    SELF = "self"  # B2X's own PostgreSQL, Redis and services, kept by the health service itself


class InvalidFieldError(InvalidArgumentError):
    """A definition field is invalid; `field` is its dotted name in the API (`probe.headers`)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


DEFAULT_INTERVAL_SECONDS = 30
MIN_INTERVAL_SECONDS = 5
MAX_INTERVAL_SECONDS = 86_400
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_RETRIES = 2


@dataclass(frozen=True)
class Thresholds:
    """Limits above which a resource alert fires (REQ-001 ResourceAlertType); 0 turns a limit off."""

    cpu_percent: float = 80.0
    cpu_sustained_seconds: int = 300
    memory_percent: float = 90.0
    memory_critical_percent: float = 95.0
    pool_percent: float = 90.0
    queue_depth: int = 1000


@dataclass(frozen=True)
class ProbeOptions:
    """How to probe a service and where its resource figures come from."""

    http_method: str = "GET"
    # Empty: any 2xx or 3xx counts as up.
    expected_statuses: tuple[int, ...] = ()
    body_contains: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    tls_skip_verify: bool = False
    ca_file: str = ""
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_retries: int = DEFAULT_MAX_RETRIES
    grpc_service: str = ""
    metrics_url: str = ""
    process_name: str = ""
    process_pid: int = 0


@dataclass(frozen=True)
class ServiceDefinition:
    """A connected service as configured. Equal definitions mean "nothing to write"."""

    slug: str
    name: str
    type: ServiceType
    # As configured: may hold credentials or ${NAME} placeholders. Only probe agents see it raw.
    endpoint: str
    probe_kind: ProbeKind
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    check_interval_seconds: int = DEFAULT_INTERVAL_SECONDS
    thresholds: Thresholds = field(default_factory=Thresholds)
    enabled: bool = True
    probe: ProbeOptions = field(default_factory=ProbeOptions)


@dataclass(frozen=True)
class ResourceSnapshot:
    """The latest resource sample of a service (REQ-001 ResourceMetrics), as a probe agent announced it."""

    sampled_at: datetime
    cpu_percent: float = 0.0
    cpu_average: float = 0.0  # last hour
    cpu_peak: float = 0.0  # last 24 h
    memory_used_bytes: int = 0
    memory_total_bytes: int = 0
    memory_percent: float = 0.0
    memory_peak_bytes: int = 0
    connection_pool_active: int = 0
    connection_pool_total: int = 0
    thread_count: int = 0
    queue_depth: int = 0
    processing_rate_per_minute: float = 0.0


@dataclass(frozen=True)
class ConnectedService:
    """A row of health.services: the definition, who owns it, and the aggregated status."""

    id: str
    definition: ServiceDefinition
    source: Source
    created_at: datetime
    updated_at: datetime
    status: ServiceStatus = ServiceStatus.UNKNOWN
    status_reason: str = ""
    last_checked: datetime | None = None
    last_successful: datetime | None = None
    # None until the rollups have data; the wire shows 0.
    average_latency_ms: float | None = None
    uptime_percent: float | None = None
    removed_at: datetime | None = None
    resources: ResourceSnapshot | None = None
    status_changed_at: datetime | None = None

    @property
    def slug(self) -> str:
        return self.definition.slug

    @property
    def removed(self) -> bool:
        return self.removed_at is not None


@dataclass(frozen=True)
class StatusChange:
    """A service's status moved; announced as HealthStatusChanged."""

    service_id: str
    slug: str
    name: str
    status: ServiceStatus
    previous_status: ServiceStatus
    reason: str
    changed_at: datetime


class StatusAnnouncer(Protocol):
    """Where status changes go (the bus in production); the registry and the aggregation both announce."""

    async def status_changed(self, changes: Sequence[StatusChange]) -> None: ...


@dataclass(frozen=True)
class SyncReport:
    """What a config-file sync changed, by slug."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)


# ${NAME}: a reference to the probe agent's environment.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# What may surround placeholders in a value that is still "only a reference": an auth scheme word
# and separators ("Bearer ${TOKEN}", "${USER}:${PASSWORD}").
_REFERENCE_REST = re.compile(r"^\s*(?:(?:Bearer|Basic|Digest|Token|ApiKey)\b)?[\s:=,;]*$", re.IGNORECASE)


def is_reference_only(value: str) -> bool:
    """True when a value holds placeholders and nothing secret besides them, e.g. `Bearer ${ERP_TOKEN}`."""
    if not PLACEHOLDER.search(value):
        return False
    return bool(_REFERENCE_REST.match(PLACEHOLDER.sub("", value)))


def visible_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header values safe to show: literal secrets masked, placeholder references kept."""
    shown: dict[str, str] = {}
    for name, value in headers.items():
        if is_reference_only(value):
            shown[name] = value
        elif is_sensitive_key(name):
            shown[name] = MASK
        else:
            shown[name] = mask_text(value)
    return shown


def agent_endpoint(endpoint: str) -> str:
    """An endpoint for probe agents: `${NAME}` references kept as written (the agent expands them), literal
    passwords and secret query values masked. Unlike `visible_endpoint` nothing else is rewritten, so the
    references survive unencoded."""
    if not endpoint:
        return ""
    head, sep, query = endpoint.partition("?")
    scheme, slashes, rest = head.partition("://")
    if slashes and "@" in rest.split("/", 1)[0]:
        authority, slash, path = rest.partition("/")
        userinfo, host = authority.rsplit("@", 1)
        user, colon, password = userinfo.partition(":")
        if colon and not is_reference_only(password):
            password = MASK
        head = f"{scheme}://{user}{colon}{password}@{host}{slash}{path}"
    if sep:
        pairs = []
        for pair in query.split("#", 1)[0].split("&"):
            name, equals, value = pair.partition("=")
            if equals and is_secret_parameter(name) and value and not is_reference_only(value):
                value = MASK
            pairs.append(f"{name}{equals}{value}")
        query = "&".join(pairs)
    return f"{head}{sep}{query}"


def visible_endpoint(endpoint: str) -> str:
    """An endpoint safe to show (no password, secret query values masked)."""
    return sanitize_url(endpoint) if endpoint else ""
