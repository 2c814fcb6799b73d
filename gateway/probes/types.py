"""GraphQL types of the probes service: connection tests and communication errors (REQ-001 models), error
patterns, histories, check states, resources and probe agents."""

from __future__ import annotations

from datetime import datetime

import strawberry
from b2x.monitoring.v1 import common_pb2, health_pb2, probes_pb2
from strawberry.scalars import JSON

from gateway.enums import mirror
from gateway.registry.types import ProbeKind, ResourceMetrics, ResourceThresholds

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


ErrorTrend = strawberry.enum(mirror("ErrorTrend", probes_pb2.ErrorTrend), description="New, rising, steady, falling")
HistoryBucket = strawberry.enum(mirror("HistoryBucket", probes_pb2.HistoryBucket), description="Minute, hour, day")
ExportFormat = strawberry.enum(mirror("ExportFormat", probes_pb2.ExportFormat), description="JSON, TEXT, PDF")
CircuitBreakerState = strawberry.enum(mirror("CircuitBreakerState", probes_pb2.CircuitBreakerState))
ResourceAlertType = strawberry.enum(mirror("ResourceAlertType", health_pb2.ResourceAlertType))


@strawberry.type(description="Errors grouped by service, type and endpoint")
class ErrorFingerprint:
    fingerprint: str
    service_id: strawberry.ID
    service_slug: str
    error_type: CommunicationErrorType | None  # type: ignore[valid-type]
    error_group: CommunicationErrorGroup | None  # type: ignore[valid-type]
    endpoint: str
    count: int
    previous_count: int
    first_seen: datetime | None
    last_seen: datetime | None
    trend: ErrorTrend | None  # type: ignore[valid-type]
    change_percent: float


@strawberry.type(description="Errors in one hour of one weekday (ISO weekday: 1 = Monday)")
class HeatmapCell:
    weekday: int
    hour: int
    count: int


@strawberry.type
class ErrorTypeShare:
    error_type: CommunicationErrorType | None  # type: ignore[valid-type]
    error_group: CommunicationErrorGroup | None  # type: ignore[valid-type]
    count: int
    share_percent: float


@strawberry.type
class ErrorGroupShare:
    error_group: CommunicationErrorGroup | None  # type: ignore[valid-type]
    count: int
    share_percent: float


@strawberry.type
class ErrorTrendPoint:
    start: datetime | None
    count: int


@strawberry.type(description="A recurring pattern, phrased for people")
class DetectedPattern:
    kind: str
    service_id: strawberry.ID | None
    service_slug: str
    error_group: CommunicationErrorGroup | None  # type: ignore[valid-type]
    start_hour: int
    end_hour: int
    days_matched: int
    days_considered: int
    ratio: float
    text: str
    advice: str


@strawberry.type(description="REQ-001 GET /services/{id}/communication-errors/patterns")
class ErrorPatterns:
    fingerprints: list[ErrorFingerprint]
    heatmap: list[HeatmapCell]
    top_types: list[ErrorTypeShare]
    top_groups: list[ErrorGroupShare]
    trend: list[ErrorTrendPoint]
    patterns: list[DetectedPattern]
    total_errors: int
    previous_total_errors: int
    since: datetime | None
    until: datetime | None
    timezone: str


@strawberry.type(description="An export; `content` is text, or base64 when `base64` is true (PDF)")
class ExportFile:
    filename: str
    content_type: str
    content: str
    base64: bool
    item_count: int
    truncated: bool


@strawberry.type
class LatencyPoint:
    start: datetime | None
    checks: int
    failures: int
    skipped: int
    availability_percent: float
    avg_latency_ms: float
    p95_latency_ms: float
    max_latency_ms: float


@strawberry.type(description="REQ-001 GET /services/{id}/latency, read from rollups")
class LatencyHistory:
    service_id: strawberry.ID
    bucket: HistoryBucket | None  # type: ignore[valid-type]
    points: list[LatencyPoint]
    summary: LatencyPoint | None


@strawberry.type(description="The latest periodic check of a service and its circuit breaker")
class CheckState:
    service_id: strawberry.ID
    service_slug: str
    checked_at: datetime | None
    success: bool
    degraded: bool
    error_type: CommunicationErrorType | None  # type: ignore[valid-type]
    error_group: CommunicationErrorGroup | None  # type: ignore[valid-type]
    summary: str
    total_latency_ms: float
    speed_rating: SpeedRating | None  # type: ignore[valid-type]
    consecutive_failures: int
    circuit_breaker: CircuitBreakerState | None  # type: ignore[valid-type]
    breaker_retry_at: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    agent_id: str
    interval_seconds: int


@strawberry.type(description="REQ-001 ResourceAlert")
class ResourceAlert:
    id: strawberry.ID
    service_id: strawberry.ID
    alert_type: ResourceAlertType | None  # type: ignore[valid-type]
    threshold_value: float
    actual_value: float
    triggered_at: datetime | None
    resolved_at: datetime | None
    message: str


@strawberry.type(description="A service's resources now (REQ-001 GET /services/{id}/resources)")
class ServiceResources:
    service_id: strawberry.ID
    service_slug: str
    metrics: ResourceMetrics | None
    thresholds: ResourceThresholds | None
    source: str
    active_alerts: list[ResourceAlert]
    stale: bool
    sample_error: str


@strawberry.type
class ResourcePoint:
    start: datetime | None
    samples: int
    cpu_avg: float
    cpu_max: float
    memory_percent_avg: float
    memory_percent_max: float
    memory_used_avg_bytes: float
    memory_used_max_bytes: float
    memory_total_bytes: float
    pool_active_max: int
    pool_total: int
    threads_max: int
    queue_depth_avg: float
    queue_depth_max: int


@strawberry.type(description="REQ-001 GET /services/{id}/resources/history")
class ResourceHistory:
    service_id: strawberry.ID
    bucket: HistoryBucket | None  # type: ignore[valid-type]
    points: list[ResourcePoint]


@strawberry.type
class ResourceAlertPage:
    alerts: list[ResourceAlert]
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="A probe agent that is alive, with the targets it holds leases for")
class ProbeAgent:
    agent_id: str
    hostname: str
    pid: int
    started_at: datetime | None
    heartbeat_at: datetime | None
    checks: list[str]
    resources: list[str]
    checks_run: int
    samples_taken: int


@strawberry.type(description="Live resource figures of a service (SignalR ResourceMetricsUpdated)")
class ResourceMetricsEvent:
    service_id: strawberry.ID
    metrics: ResourceMetrics


@strawberry.type(description="A resource threshold breach (SignalR ResourceAlertTriggered)")
class ResourceAlertEvent:
    service_id: strawberry.ID
    alert: ResourceAlert
