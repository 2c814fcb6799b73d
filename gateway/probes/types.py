"""GraphQL types of connection tests and communication errors (REQ-001 models)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from b2x.monitoring.v1 import common_pb2, probes_pb2
from strawberry.scalars import JSON

from gateway.enums import mirror
from gateway.registry.types import ProbeKind

CommunicationErrorType = strawberry.enum(
    mirror("CommunicationErrorType", probes_pb2.CommunicationErrorType), description="REQ-001 CommunicationErrorType"
)
CommunicationErrorGroup = strawberry.enum(
    mirror("CommunicationErrorGroup", probes_pb2.CommunicationErrorGroup),
    description="The badge: Network, Timeout, Protocol, Authentication, Data, Service",
)
ErrorSeverity = strawberry.enum(
    mirror("ErrorSeverity", common_pb2.ErrorSeverity), description="Warning, Error, Critical"
)
SpeedRating = strawberry.enum(mirror("SpeedRating", probes_pb2.SpeedRating), description="Fast, Normal, Slow")
PhaseStatus = strawberry.enum(mirror("PhaseStatus", probes_pb2.PhaseStatus), description="Passed, failed, skipped")


@strawberry.type(description="Network timing breakdown; null phases did not happen (REQ-001 NetworkTimingMetrics)")
class NetworkTiming:
    dns_lookup_ms: float | None
    tcp_connection_ms: float | None
    tls_handshake_ms: float | None
    time_to_first_byte_ms: float | None
    content_download_ms: float | None
    total_time_ms: float


@strawberry.type(description="REQ-001 RetryAttemptLog")
class RetryAttempt:
    attempt_number: int
    attempted_at: datetime | None
    error_message: str
    duration_ms: float
    delay_before_retry_ms: float


@strawberry.type(description="Masked request/response evidence (REQ-001 CommunicationErrorDetails)")
class CommunicationDetails:
    http_method: str
    endpoint_url: str
    http_status_code: int | None
    request_headers: JSON
    request_payload_summary: str
    request_payload_size_bytes: float | None
    response_headers: JSON
    response_body_summary: str
    response_payload_size_bytes: float | None
    timing: NetworkTiming | None
    retry_attempt: int
    max_retries: int
    retry_history: list[RetryAttempt]
    correlation_id: str
    trace_id: str
    span_id: str


@strawberry.type(description="A classified communication failure with its evidence (REQ-001 CommunicationError)")
class CommunicationError:
    id: strawberry.ID
    service_id: strawberry.ID
    timestamp: datetime | None
    error_type: CommunicationErrorType | None  # type: ignore[valid-type]
    error_group: CommunicationErrorGroup | None  # type: ignore[valid-type]
    error_code: str
    message: str
    stack_trace: str | None
    severity: ErrorSeverity | None  # type: ignore[valid-type]
    correlated_job_id: strawberry.ID | None
    connection_test_id: strawberry.ID | None
    recommendations: list[str]
    details: CommunicationDetails | None


@strawberry.type
class CommunicationErrorPage:
    errors: list[CommunicationError]
    has_next_page: bool
    end_cursor: str | None
    total_count: int


@strawberry.type(description="REQ-001 ConnectionTestMetrics")
class ConnectionTestMetrics:
    dns_resolution_ms: float
    tcp_connection_ms: float
    tls_handshake_ms: float
    time_to_first_byte_ms: float
    content_download_ms: float
    response_ms: float
    total_latency_ms: float
    throughput_kbps: float
    bytes_downloaded: float
    requests_per_second: float


@strawberry.type(description="One phase of a connection test")
class ConnectionTestPhase:
    name: str
    status: PhaseStatus | None  # type: ignore[valid-type]
    duration_ms: float
    detail: str
    attempt: int


@strawberry.type(description="REQ-001 ConnectionTestResult")
class ConnectionTestResult:
    id: strawberry.ID
    service_id: strawberry.ID
    service_slug: str
    executed_at: datetime | None
    success: bool
    degraded: bool
    summary: str
    endpoint: str
    probe_kind: ProbeKind | None
    metrics: ConnectionTestMetrics | None
    phases: list[ConnectionTestPhase]
    speed_rating: SpeedRating | None  # type: ignore[valid-type]
    recommendations: list[str]
    error_message: str | None
    error_type: CommunicationErrorType | None  # type: ignore[valid-type]
    error_group: CommunicationErrorGroup | None  # type: ignore[valid-type]
    severity: ErrorSeverity | None  # type: ignore[valid-type]
    correlation_id: str
    communication_error_id: strawberry.ID | None
    evidence: CommunicationDetails | None


@strawberry.type
class ConnectionTestPage:
    results: list[ConnectionTestResult]
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="A running test's news: a phase as it completes, then the result")
class ConnectionTestUpdate:
    test_id: strawberry.ID
    service_id: strawberry.ID | None
    phase: ConnectionTestPhase | None
    result: ConnectionTestResult | None
