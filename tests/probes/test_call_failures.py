"""A job's failed call, as the Job SDK reports it, classified and masked by the probes' own rules (pure)."""

from __future__ import annotations

import errno
from datetime import UTC, datetime

from services.probes.domain import CallFailure, CallFailureKind, ErrorType, JobOwner, ProbeKind, Severity, Target
from services.probes.probing.calls import error_from_call

TOKEN = "tok-5ecret-abc123"
TARGET = Target("svc-1", "crm", "CRM Integration", ProbeKind.HTTP, "https://crm.example/api/health")
OWNER = JobOwner("5f0c6f9e-0000-4000-8000-000000000001", "w-1", "tenant-a")


def _failure(kind: CallFailureKind, **fields: object) -> CallFailure:
    base: dict[str, object] = {
        "job_id": OWNER.job_id, "service": "crm", "occurred_at": datetime.now(UTC), "kind": kind,
        "http_method": "GET", "url": f"https://crm.example:8443/api/contacts?api_key={TOKEN}&page=2",
    }  # fmt: skip
    base.update(fields)
    return CallFailure(**base)  # type: ignore[arg-type]


def test_each_kind_of_failure_gets_the_type_a_probe_would_give_it() -> None:
    cases = [
        (_failure(CallFailureKind.CONNECT_ERROR, os_errno=errno.ECONNREFUSED), ErrorType.CONNECTION_REFUSED),
        (_failure(CallFailureKind.CONNECT_ERROR, os_errno=errno.EHOSTUNREACH), ErrorType.HOST_UNREACHABLE),
        (_failure(CallFailureKind.DNS_ERROR, error_message="Name or service not known"),
         ErrorType.DNS_RESOLUTION_FAILED),
        (_failure(CallFailureKind.CONNECT_TIMEOUT, timeout_seconds=3), ErrorType.CONNECTION_TIMEOUT),
        (_failure(CallFailureKind.READ_TIMEOUT, timeout_seconds=10), ErrorType.READ_TIMEOUT),
        (_failure(CallFailureKind.WRITE_TIMEOUT), ErrorType.WRITE_TIMEOUT),
        (_failure(CallFailureKind.TLS_ERROR, error_message="certificate verify failed"),
         ErrorType.SSL_HANDSHAKE_FAILED),
        (_failure(CallFailureKind.PROTOCOL_ERROR, error_message="illegal status line"), ErrorType.HTTP_PROTOCOL_ERROR),
        (_failure(CallFailureKind.HTTP_STATUS, status_code=429, response_headers=(("Retry-After", "60"),)),
         ErrorType.RATE_LIMITED),
        (_failure(CallFailureKind.HTTP_STATUS, status_code=500), ErrorType.UNKNOWN),
    ]  # fmt: skip
    for failure, expected in cases:
        error = error_from_call(failure, TARGET, OWNER, [])
        assert error.classification.error_type is expected, (failure.kind, error.classification)
        assert error.correlated_job_id == OWNER.job_id and error.tenant_id == "tenant-a"
        assert error.service_id == "svc-1" and error.service_slug == "crm"
        assert error.recommendations
    timeout = error_from_call(_failure(CallFailureKind.READ_TIMEOUT, timeout_seconds=10), TARGET, OWNER, [])
    assert timeout.classification.message == "connected to crm.example:8443, but no response within 10 s"


def test_an_expired_token_is_told_apart_and_every_secret_is_masked() -> None:
    """401 with an expiry challenge is TOKEN_EXPIRED; the token is gone from URL, headers and the echoed body,
    also a registry secret that no pattern would recognise. (The use case adds the call's own credentials to the
    known secrets: `credentials_in`.)"""
    failure = _failure(
        CallFailureKind.HTTP_STATUS,
        status_code=401,
        reason_phrase="Unauthorized",
        request_headers=(("Authorization", f"Bearer {TOKEN}"), ("X-Tenant-Key", "plainvalue-42")),
        response_headers=(("WWW-Authenticate", 'Bearer error="invalid_token", error_description="token expired"'),),
        response_body=f'{{"error": "token expired", "echo": "{TOKEN}", "note": "plainvalue-42"}}'.encode(),
    )
    error = error_from_call(failure, TARGET, OWNER, ["plainvalue-42", TOKEN])
    assert error.classification.error_type is ErrorType.TOKEN_EXPIRED
    assert error.classification.severity is Severity.ERROR
    everything = repr(error)
    assert TOKEN not in everything and "plainvalue-42" not in everything
    assert error.details.http_status_code == 401 and "page=2" in error.details.endpoint_url
    assert "token expired" in error.details.response_body_summary


def test_the_cli_points_from_a_correlated_error_to_its_job() -> None:
    from rich.console import Console

    from b2c.monitor.render import error_detail

    error = {"id": "e1", "errorType": "SERVICE_UNAVAILABLE", "errorGroup": "SERVICE", "severity": "ERROR",
             "timestamp": "2026-12-03T15:00:00Z", "message": "HTTP 503", "correlatedJobId": OWNER.job_id,
             "recommendations": []}  # fmt: skip
    console = Console(width=200, record=True)
    console.print(error_detail(error))
    assert f"Job {OWNER.job_id}   (b2c jobs show {OWNER.job_id})" in console.export_text()
    console = Console(width=200, record=True)
    console.print(error_detail({**error, "correlatedJobId": None}))
    assert "b2c jobs show" not in console.export_text()
