"""Connection tests and communication errors as the probes service sees them. No I/O here.

The names follow REQ-001: `ConnectionTestResult`, `CommunicationError`, `CommunicationErrorDetails`,
`NetworkTimingMetrics`, `RetryAttemptLog`, and the `CommunicationErrorType` enum with the badge group
(Network/Timeout/Protocol/Authentication/Data/Service) the dashboard shows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class ErrorType(StrEnum):
    """REQ-001 CommunicationErrorType (values equal the proto names without their prefix)."""

    DNS_RESOLUTION_FAILED = "DNS_RESOLUTION_FAILED"
    CONNECTION_REFUSED = "CONNECTION_REFUSED"
    NETWORK_UNREACHABLE = "NETWORK_UNREACHABLE"
    HOST_UNREACHABLE = "HOST_UNREACHABLE"
    CONNECTION_TIMEOUT = "CONNECTION_TIMEOUT"
    READ_TIMEOUT = "READ_TIMEOUT"
    WRITE_TIMEOUT = "WRITE_TIMEOUT"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    SSL_HANDSHAKE_FAILED = "SSL_HANDSHAKE_FAILED"
    CERTIFICATE_INVALID = "CERTIFICATE_INVALID"
    CERTIFICATE_EXPIRED = "CERTIFICATE_EXPIRED"
    HTTP_PROTOCOL_ERROR = "HTTP_PROTOCOL_ERROR"
    AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"  # noqa: S105 - an error type, not a secret
    PERMISSION_DENIED = "PERMISSION_DENIED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    SERIALIZATION_FAILED = "SERIALIZATION_FAILED"
    DESERIALIZATION_FAILED = "DESERIALIZATION_FAILED"
    SCHEMA_MISMATCH = "SCHEMA_MISMATCH"
    ENCODING_ERROR = "ENCODING_ERROR"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    RATE_LIMITED = "RATE_LIMITED"
    CIRCUIT_BREAKER_OPEN = "CIRCUIT_BREAKER_OPEN"
    UNKNOWN = "UNKNOWN"


class ErrorGroup(StrEnum):
    NETWORK = "NETWORK"
    TIMEOUT = "TIMEOUT"
    PROTOCOL = "PROTOCOL"
    AUTHENTICATION = "AUTHENTICATION"
    DATA = "DATA"
    SERVICE = "SERVICE"


class Severity(StrEnum):
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class SpeedRating(StrEnum):
    FAST = "FAST"
    NORMAL = "NORMAL"
    SLOW = "SLOW"


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class PhaseStatus(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class ProbeKind(StrEnum):
    HTTP = "HTTP"
    TCP = "TCP"
    POSTGRES = "POSTGRES"
    REDIS = "REDIS"
    GRPC_HEALTH = "GRPC_HEALTH"
    ELASTICSEARCH = "ELASTICSEARCH"


class PhaseName(StrEnum):
    """The steps of a test, in the order they happen; the UI draws them as a waterfall."""

    DNS = "dns"
    TCP_CONNECT = "tcp_connect"
    TLS_HANDSHAKE = "tls_handshake"
    TIME_TO_FIRST_BYTE = "time_to_first_byte"
    CONTENT_DOWNLOAD = "content_download"
    PROTOCOL_CHECK = "protocol_check"


@dataclass(frozen=True)
class ProbeOptions:
    """How to probe a target (health.proto ProbeOptions); header values may hold ${NAME} placeholders."""

    http_method: str = "GET"
    expected_statuses: tuple[int, ...] = ()
    body_contains: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    tls_skip_verify: bool = False
    ca_file: str = ""
    timeout_seconds: float = 0.0
    max_retries: int | None = None
    grpc_service: str = ""


@dataclass(frozen=True)
class Thresholds:
    """Limits above which a resource alert fires (health.proto ResourceThresholds); 0 turns one off."""

    cpu_percent: float = 80.0
    cpu_sustained_seconds: int = 300
    memory_percent: float = 90.0
    memory_critical_percent: float = 95.0
    pool_percent: float = 90.0
    queue_depth: int = 1000


HOST_PROCESS = "@host"


@dataclass(frozen=True)
class ResourceSource:
    """Where a target's resource figures come from (health.proto ProbeOptions).

    `process_name` `@host` samples the machine the agent runs on, and `@host:NAME` only an agent on
    the host called NAME, until the registry grows a key of its own for it.
    """

    metrics_url: str = ""
    process_name: str = ""
    process_pid: int = 0

    @property
    def configured(self) -> bool:
        return bool(self.metrics_url or self.process_name or self.process_pid)


@dataclass(frozen=True)
class Target:
    """A connected service to test, as the registry configured it (endpoint unexpanded, unmasked)."""

    service_id: str
    slug: str
    name: str
    kind: ProbeKind
    endpoint: str
    options: ProbeOptions = field(default_factory=ProbeOptions)
    interval_seconds: int = 30
    thresholds: Thresholds = field(default_factory=Thresholds)
    resources: ResourceSource = field(default_factory=ResourceSource)


@dataclass
class Timing:
    """REQ-001 NetworkTimingMetrics; None means the phase did not happen."""

    dns_ms: float | None = None
    tcp_ms: float | None = None
    tls_ms: float | None = None
    ttfb_ms: float | None = None
    download_ms: float | None = None
    total_ms: float = 0.0


@dataclass(frozen=True)
class Phase:
    name: PhaseName
    status: PhaseStatus
    duration_ms: float
    detail: str = ""
    attempt: int = 1


@dataclass(frozen=True)
class RetryAttempt:
    """REQ-001 RetryAttemptLog: one try of a test, and how long we waited before the next."""

    attempt_number: int
    attempted_at: datetime
    error_message: str
    duration_ms: float
    delay_before_retry_ms: float


@dataclass(frozen=True)
class Classification:
    """What went wrong, in the seed's terms, and whether trying again may help."""

    error_type: ErrorType
    group: ErrorGroup
    severity: Severity
    code: str
    message: str
    transient: bool


@dataclass
class ErrorDetails:
    """REQ-001 CommunicationErrorDetails: masked evidence of one attempt. Built only by `probing/evidence.py`."""

    http_method: str = ""
    endpoint_url: str = ""
    http_status_code: int | None = None
    request_headers: dict[str, str] = field(default_factory=dict)
    request_payload_summary: str = ""
    request_payload_size_bytes: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body_summary: str = ""
    response_payload_size_bytes: int | None = None
    timing: Timing = field(default_factory=Timing)
    retry_attempt: int = 0
    max_retries: int = 0
    retry_history: list[RetryAttempt] = field(default_factory=list)
    correlation_id: str = ""
    trace_id: str = ""
    span_id: str = ""


@dataclass
class ConnectionTestMetrics:
    """REQ-001 ConnectionTestMetrics plus the phases curl reports."""

    dns_resolution_ms: float = 0.0
    tls_handshake_ms: float = 0.0
    connection_ms: float = 0.0
    response_ms: float = 0.0
    total_latency_ms: float = 0.0
    throughput_kbps: float = 0.0
    time_to_first_byte_ms: float = 0.0
    content_download_ms: float = 0.0
    bytes_downloaded: int = 0
    requests_per_second: float = 0.0


@dataclass
class CommunicationError:
    """REQ-001 CommunicationError."""

    id: str
    service_id: str
    service_slug: str
    timestamp: datetime
    classification: Classification
    details: ErrorDetails
    connection_test_id: str | None = None
    correlated_job_id: str | None = None
    recommendations: list[str] = field(default_factory=list)
    # The tenant of the correlated job; None for what the probes found and for jobs without a tenant.
    tenant_id: str | None = None


@dataclass
class ConnectionTestResult:
    """REQ-001 ConnectionTestResult, with the evidence of its last attempt."""

    id: str
    service_id: str
    service_slug: str
    executed_at: datetime
    success: bool
    kind: ProbeKind
    endpoint: str
    correlation_id: str
    metrics: ConnectionTestMetrics
    evidence: ErrorDetails
    phases: list[Phase] = field(default_factory=list)
    speed_rating: SpeedRating | None = None
    recommendations: list[str] = field(default_factory=list)
    degraded: bool = False
    summary: str = ""
    error: Classification | None = None
    communication_error_id: str | None = None
    # The periodic checks' breaker when the test ran (None: never checked periodically).
    breaker: BreakerState | None = None
    # When the server's certificate expires (HTTPS checks whose handshake passed).
    tls_not_after: datetime | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    total_count: int


@dataclass(frozen=True)
class ErrorFilter:
    service: str = ""
    types: tuple[ErrorType, ...] = ()
    groups: tuple[ErrorGroup, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    severities: tuple[Severity, ...] = ()
    # A tenant scope: errors correlated to other tenants' jobs are left out.
    tenant_id: str = ""
    correlated_job_id: str = ""


class CallFailureKind(StrEnum):
    """How a job's call to a connected service failed, as the Job SDK saw it (probes.proto CallFailureKind)."""

    HTTP_STATUS = "HTTP_STATUS"
    CONNECT_ERROR = "CONNECT_ERROR"
    DNS_ERROR = "DNS_ERROR"
    CONNECT_TIMEOUT = "CONNECT_TIMEOUT"
    READ_TIMEOUT = "READ_TIMEOUT"
    WRITE_TIMEOUT = "WRITE_TIMEOUT"
    POOL_TIMEOUT = "POOL_TIMEOUT"
    TLS_ERROR = "TLS_ERROR"
    PROTOCOL_ERROR = "PROTOCOL_ERROR"


@dataclass(frozen=True)
class CallFailure:
    """One failed call of a running job to a connected service (probes.proto CallFailure), unclassified."""

    job_id: str
    service: str
    occurred_at: datetime
    kind: CallFailureKind
    http_method: str
    url: str
    request_headers: tuple[tuple[str, str], ...] = ()
    status_code: int | None = None
    reason_phrase: str = ""
    response_headers: tuple[tuple[str, str], ...] = ()
    response_body: bytes = b""
    response_size_bytes: int | None = None
    request_size_bytes: int | None = None
    error_message: str = ""
    os_errno: int = 0
    duration_ms: float = 0.0
    traceparent: str = ""
    timeout_seconds: float = 0.0
    # The reporter's id for it (becomes the error's id; a resend with the same id is stored once).
    failure_id: str = ""


@dataclass(frozen=True)
class JobOwner:
    """What the probes service needs to know of a correlated job: who runs it and for which tenant."""

    job_id: str
    worker_id: str
    tenant_id: str


MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


def error_from_result(result: ConnectionTestResult) -> CommunicationError | None:
    """The communication error a failed test records (and links the result to it); None when it passed."""
    if result.error is None:
        return None
    error = CommunicationError(
        id=str(uuid.uuid4()),
        service_id=result.service_id,
        service_slug=result.service_slug,
        timestamp=result.executed_at,
        classification=result.error,
        details=result.evidence,
        connection_test_id=result.id,
        recommendations=list(result.recommendations),
    )
    result.communication_error_id = error.id
    return error
