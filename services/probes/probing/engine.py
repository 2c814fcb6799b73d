"""Runs a check against a target: placeholders, attempts with backoff, classification, evidence, advice.

`ProbeEngine.test` is the whole diagnostic: it knows nothing about storage, events or gRPC, so the
periodic agent and the on-demand test share it, and it can be tested against real servers alone.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from services.common.logging import get_logger
from services.common.tracing import current_ids
from services.probes.domain import (
    Classification,
    ConnectionTestMetrics,
    ConnectionTestResult,
    ProbeKind,
    RetryAttempt,
    SpeedRating,
    Target,
)
from services.probes.probing.advice import FailureContext, failure_advice, slow_advice, speed_rating
from services.probes.probing.certfindings import Finding, findings
from services.probes.probing.checks.base import Attempt, Check, CheckOutcome, PhaseListener, StepFailed
from services.probes.probing.checks.elasticsearch import ElasticsearchCheck
from services.probes.probing.checks.grpc_health import GrpcHealthCheck
from services.probes.probing.checks.http import HttpCheck
from services.probes.probing.checks.http1 import BodyLimits
from services.probes.probing.checks.net import split_endpoint
from services.probes.probing.checks.postgres import PostgresCheck
from services.probes.probing.checks.redis_ping import RedisCheck
from services.probes.probing.checks.tcp import TcpCheck
from services.probes.probing.classify import Context, classify_exception, escalate
from services.probes.probing.evidence import Redactor, build_details
from services.probes.probing.faults import CertificateRejected, MissingVariable, ProbeFault
from services.probes.probing.placeholders import Expanded, expand

log = get_logger(__name__)

_HTTP_KINDS = frozenset({ProbeKind.HTTP, ProbeKind.ELASTICSEARCH})
# Longest wait a server's Retry-After may impose between two attempts of one test.
_MAX_RETRY_AFTER = 10.0


@dataclass(frozen=True)
class EngineConfig:
    fast_ms: float = 200.0
    slow_ms: float = 1000.0
    timeout_seconds: float = 10.0
    max_retries: int = 2
    backoff_seconds: float = 0.5
    max_body_bytes: int = 1024 * 1024  # kept for the checks and the evidence
    max_download_bytes: int = 64 * 1024 * 1024  # read at most, for the download time and throughput


def default_checks(config: EngineConfig) -> dict[ProbeKind, Check]:
    limits = BodyLimits(keep=config.max_body_bytes, download=config.max_download_bytes)
    checks: list[Check] = [
        HttpCheck(limits),
        TcpCheck(),
        PostgresCheck(),
        RedisCheck(),
        GrpcHealthCheck(),
        ElasticsearchCheck(limits),
    ]
    return {check.kind: check for check in checks}


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Run:
    """The outcome of one attempt."""

    attempt: Attempt
    redactor: Redactor
    outcome: CheckOutcome | None = None
    failure: Classification | None = None
    cause: BaseException | None = None


class ProbeEngine:
    """Tests targets on fresh connections; `environ` is where ${NAME} placeholders are looked up."""

    def __init__(
        self,
        config: EngineConfig,
        environ: Mapping[str, str],
        checks: Mapping[ProbeKind, Check] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self._environ = environ
        self._checks = dict(checks) if checks is not None else default_checks(config)
        self._clock = clock

    async def test(
        self, target: Target, *, test_id: str = "", timeout: float = 0.0, listener: PhaseListener | None = None
    ) -> ConnectionTestResult:
        """Test `target` now, retrying transient failures with exponential backoff."""
        timeout = timeout or target.options.timeout_seconds or self.config.timeout_seconds
        options_retries = target.options.max_retries
        max_retries = self.config.max_retries if options_retries is None else max(0, options_retries)
        correlation_id = str(uuid.uuid4())
        # Inside a traced request (tracing on, e.g. a connection test from the dashboard) the provider gets
        # our trace id, so the communication error's TraceId finds the whole request in the trace backend.
        trace_id, span_id = current_ids()
        traceparent = f"00-{trace_id or uuid.UUID(correlation_id).hex}-{span_id or uuid.uuid4().hex[:16]}-01"
        executed_at = self._clock()
        history: list[RetryAttempt] = []
        number = 0
        while True:
            number += 1
            started_at, started = self._clock(), time.perf_counter()
            run = await self._attempt(target, number, timeout, listener, correlation_id, traceparent)
            duration_ms = (time.perf_counter() - started) * 1000
            message = run.failure.message if run.failure else ""
            if run.failure is None or not run.failure.transient or number > max_retries:
                history.append(RetryAttempt(number, started_at, message, duration_ms, 0.0))
                break
            delay = self._delay(number, run)
            history.append(RetryAttempt(number, started_at, message, duration_ms, delay * 1000))
            log.info("probe attempt failed; retrying", service=target.slug, attempt=number, delay_s=delay)
            await asyncio.sleep(delay)
        return self._result(
            target, test_id or str(uuid.uuid4()), executed_at, run, history, max_retries, correlation_id, traceparent
        )

    def _delay(self, number: int, run: _Run) -> float:
        delay: float = self.config.backoff_seconds * 2.0 ** (number - 1)
        retry_after = _header(run, "retry-after")
        if retry_after.isdigit():
            delay = max(delay, min(float(retry_after), _MAX_RETRY_AFTER))
        return delay

    async def _attempt(
        self,
        target: Target,
        number: int,
        timeout: float,
        listener: PhaseListener | None,
        correlation_id: str,
        traceparent: str,
    ) -> _Run:
        attempt = Attempt(number, timeout)
        attempt.evidence.url = target.endpoint
        started = time.perf_counter()
        try:
            expanded = expand(target.endpoint, target.options.headers, self._environ)
        except MissingVariable as error:
            attempt.where = _where(target.endpoint)
            failure = classify_exception(attempt.last_phase, error, Context(attempt.where, timeout))
            return _Run(attempt, Redactor(), failure=failure, cause=error)
        redactor = Redactor(expanded.secrets)
        if listener is not None:
            attempt.listener = lambda phase: listener(replace(phase, detail=redactor.text(phase.detail, 300)))
        if target.kind in _HTTP_KINDS:
            expanded = _with_tracing(expanded, correlation_id, traceparent)
        run = _Run(attempt, redactor)
        check = self._checks[target.kind]
        try:
            run.outcome = await check.run(target, expanded, attempt)
        except StepFailed as failed:
            run.cause = failed.cause
            ctx = Context(attempt.where or _where(target.endpoint), timeout, attempt.evidence.request_written)
            run.failure = classify_exception(failed.phase, failed.cause, ctx)
        except ProbeFault as error:
            run.cause = error
            run.failure = classify_exception(attempt.last_phase, error, Context(attempt.where, timeout))
        except Exception as error:
            # A defect or an unforeseen library error: still a classified, failed result, so one target's
            # problem never surfaces as a crashed RPC or a periodic check that records nothing.
            log.exception("probe check raised unexpectedly", service=target.slug, kind=target.kind.value)
            run.cause = error
            ctx = Context(attempt.where or _where(target.endpoint), timeout)
            run.failure = classify_exception(attempt.last_phase, error, ctx)
        attempt.timing.total_ms = (time.perf_counter() - started) * 1000
        if run.failure is not None:
            run.failure = replace(run.failure, message=redactor.text(run.failure.message))
        return run

    def _result(
        self,
        target: Target,
        test_id: str,
        executed_at: datetime,
        run: _Run,
        history: list[RetryAttempt],
        max_retries: int,
        correlation_id: str,
        traceparent: str,
    ) -> ConnectionTestResult:
        attempt, redactor = run.attempt, run.redactor
        timing = attempt.timing
        size = attempt.evidence.bytes_downloaded
        metrics = ConnectionTestMetrics(
            dns_resolution_ms=timing.dns_ms or 0.0,
            tls_handshake_ms=timing.tls_ms or 0.0,
            connection_ms=timing.tcp_ms or 0.0,
            response_ms=(timing.ttfb_ms or 0.0) + (timing.download_ms or 0.0),
            total_latency_ms=timing.total_ms,
            # kilobits per second of what was transferred, over the whole test, as curl's speed_download is
            # over time_total.
            throughput_kbps=size * 8 / timing.total_ms if timing.total_ms > 0 else 0.0,
            # Sequential requests per second at this latency, each on a fresh connection as the test made it.
            requests_per_second=1000 / timing.total_ms if run.failure is None and timing.total_ms > 0 else 0.0,
            time_to_first_byte_ms=timing.ttfb_ms or 0.0,
            content_download_ms=timing.download_ms or 0.0,
            bytes_downloaded=size,
        )
        phases = [replace(p, detail=redactor.text(p.detail, 300)) for p in attempt.phases]
        details = build_details(attempt.evidence, timing, history, max_retries, correlation_id, traceparent, redactor)
        result = ConnectionTestResult(
            id=test_id,
            service_id=target.service_id,
            service_slug=target.slug,
            executed_at=executed_at,
            success=run.failure is None,
            kind=target.kind,
            endpoint=redactor.url(target.endpoint),
            correlation_id=correlation_id,
            metrics=metrics,
            evidence=details,
            phases=phases,
            tls_not_after=attempt.evidence.tls_not_after,
        )
        if run.failure is None:
            outcome = run.outcome or CheckOutcome(summary="passed")
            result.speed_rating = speed_rating(timing.total_ms, self.config.fast_ms, self.config.slow_ms)
            result.degraded = outcome.degraded
            result.summary = f"{outcome.summary} in {timing.total_ms:.0f} ms"
            advice = list(outcome.advice)
            if result.speed_rating is SpeedRating.SLOW:
                advice += slow_advice(
                    attempt.phases, timing.total_ms, self.config.slow_ms, attempt.where, size, metrics.throughput_kbps
                )
            result.recommendations = [redactor.text(a) for a in advice]
            return result
        exhausted = max_retries > 0 and len(history) > max_retries
        result.error = escalate(run.failure, exhausted)
        result.summary = run.failure.message
        context = FailureContext(
            host=attempt.where.rsplit(":", 1)[0],
            where=attempt.where,
            name=target.name,
            timeout=attempt.timeout,
            correlation_id=correlation_id,
            cert=run.cause.cert if isinstance(run.cause, CertificateRejected) else None,
            retry_after=_header(run, "retry-after")[:40],
            also=tuple(_certificate_findings(run.cause)[1:]),
        )
        result.recommendations = [redactor.text(a) for a in failure_advice(run.failure, context)]
        return result


def _certificate_findings(cause: BaseException | None) -> list[Finding]:
    if not isinstance(cause, CertificateRejected):
        return []
    return findings(cause.error.verify_code, cause.cert, cause.host, datetime.now(UTC))


def _header(run: _Run, name: str) -> str:
    for key, value in run.attempt.evidence.response_headers:
        if key.lower() == name:
            return value.strip()
    return ""


def _where(endpoint: str) -> str:
    """host:port of an endpoint template, for messages before it could be expanded."""
    try:
        _, host, port = split_endpoint(endpoint, 0)
    except ValueError:
        return endpoint.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{host}:{port}" if port else host


def _with_tracing(expanded: Expanded, correlation_id: str, traceparent: str) -> Expanded:
    """Send our correlation id and a W3C traceparent, so the provider can find this request in its logs."""
    names = {name.lower() for name, _ in expanded.headers}
    extra = [("X-Correlation-Id", correlation_id)] if "x-correlation-id" not in names else []
    if "traceparent" not in names:
        extra.append(("traceparent", traceparent))
    return replace(expanded, headers=(*expanded.headers, *extra))
