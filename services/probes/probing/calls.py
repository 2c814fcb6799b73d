"""A job's failed call (reported by the Job SDK) → a classified, masked `CommunicationError`.

The same rules as a probe's failures: HTTP answers go through `classify_http.classify_status`, network
failures are rebuilt as the exception the probe would have seen (an `OSError` with its errno, a
`socket.gaierror`, a `TimeoutError` in its phase, an `ssl.SSLError`) and go through
`classify.classify_exception`; the evidence goes through `evidence.build_details` with a `Redactor`, and
the advice through `advice.failure_advice`. Nothing here trusts the SDK to have masked anything.
"""

from __future__ import annotations

import socket
import ssl
import uuid
from urllib.parse import urlsplit

from services.probes.domain import (
    CallFailure,
    CallFailureKind,
    Classification,
    CommunicationError,
    ErrorType,
    JobOwner,
    PhaseName,
    Target,
    Timing,
)
from services.probes.probing.advice import FailureContext, failure_advice
from services.probes.probing.checks.base import RawEvidence
from services.probes.probing.classify import Context, classify_exception, make
from services.probes.probing.classify_http import classify_status
from services.probes.probing.evidence import Redactor, build_details

K = CallFailureKind

# The phase a failure of each kind happened in, for the classifier's phase tables.
_PHASE: dict[CallFailureKind, PhaseName] = {
    K.DNS_ERROR: PhaseName.DNS,
    K.CONNECT_ERROR: PhaseName.TCP_CONNECT,
    K.CONNECT_TIMEOUT: PhaseName.TCP_CONNECT,
    K.POOL_TIMEOUT: PhaseName.TCP_CONNECT,
    K.TLS_ERROR: PhaseName.TLS_HANDSHAKE,
    K.WRITE_TIMEOUT: PhaseName.TIME_TO_FIRST_BYTE,
    K.READ_TIMEOUT: PhaseName.TIME_TO_FIRST_BYTE,
    K.PROTOCOL_ERROR: PhaseName.TIME_TO_FIRST_BYTE,
    K.HTTP_STATUS: PhaseName.TIME_TO_FIRST_BYTE,
}


def _where(url: str) -> tuple[str, str]:
    """(host, host:port) of a URL, without credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    return host, f"{host}:{port}" if port else host


def _exception(failure: CallFailure) -> BaseException:
    """The exception a probe would have caught for this kind of failure."""
    message = failure.error_message or failure.kind.value.lower().replace("_", " ")
    if failure.kind is K.DNS_ERROR:
        return socket.gaierror(failure.os_errno or socket.EAI_NONAME, message)
    if failure.kind in (K.CONNECT_TIMEOUT, K.READ_TIMEOUT, K.WRITE_TIMEOUT, K.POOL_TIMEOUT):
        return TimeoutError(message)
    if failure.kind is K.TLS_ERROR:
        return ssl.SSLError(message)
    if failure.os_errno:
        return OSError(failure.os_errno, message)
    return ConnectionError(message)


def classify_call(failure: CallFailure, where: str, redactor: Redactor) -> Classification:
    """What the failure means, in the seed's terms; its message is masked."""
    if failure.kind is K.HTTP_STATUS:
        headers = {name.lower(): redactor.raw(value) for name, value in failure.response_headers}
        body = redactor.raw(failure.response_body[:4096].decode("utf-8", "replace"))
        found = classify_status(failure.status_code or 0, failure.reason_phrase, headers, body)
        if found is None:  # the SDK reports statuses >= 400 only; a 2xx/3xx here is a protocol error
            found = make(ErrorType.HTTP_PROTOCOL_ERROR, f"HTTP_{failure.status_code}",
                         f"HTTP {failure.status_code} reported as a failed call")  # fmt: skip
        return _masked(found, redactor)
    phase = _PHASE[failure.kind]
    ctx = Context(where=where, timeout=failure.timeout_seconds or 10.0,
                  request_written=failure.kind is not K.WRITE_TIMEOUT)  # fmt: skip
    found = classify_exception(phase, _exception(failure), ctx)
    if failure.kind is K.WRITE_TIMEOUT:
        message = f"could not send the request to {where} within {ctx.timeout:g} s"
        found = make(ErrorType.WRITE_TIMEOUT, "TIMEOUT", message, transient=True)
    elif failure.kind is K.POOL_TIMEOUT:
        found = make(found.error_type, "POOL_TIMEOUT",
                     f"no free connection to {where} in the job's client pool within {ctx.timeout:g} s")  # fmt: skip
    elif failure.kind is K.PROTOCOL_ERROR and not failure.os_errno:
        message = f"{where} broke the HTTP exchange: {failure.error_message}"
        found = make(ErrorType.HTTP_PROTOCOL_ERROR, "PROTOCOL_ERROR", message)
    return _masked(found, redactor)


def _masked(found: Classification, redactor: Redactor) -> Classification:
    return make(found.error_type, found.code, redactor.text(found.message), transient=found.transient)


def error_from_call(failure: CallFailure, target: Target, owner: JobOwner, secrets: list[str]) -> CommunicationError:
    """The communication error a failed call records, correlated to its job and tenant."""
    redactor = Redactor(secrets)
    host, where = _where(failure.url)
    classification = classify_call(failure, where, redactor)
    correlation_id = str(uuid.uuid4())
    raw = RawEvidence(
        method=failure.http_method.upper(),
        url=failure.url,
        request_headers=list(failure.request_headers),
        status=failure.status_code,
        reason=failure.reason_phrase,
        response_headers=list(failure.response_headers),
        response_body=failure.response_body,
        response_size=failure.response_size_bytes,
    )
    details = build_details(raw, Timing(total_ms=failure.duration_ms), [], 0, correlation_id,
                            failure.traceparent, redactor)  # fmt: skip
    details.request_payload_size_bytes = failure.request_size_bytes
    retry_after = next((v for n, v in failure.response_headers if n.lower() == "retry-after"), "")
    advice = failure_advice(
        classification,
        FailureContext(host=host, where=where, name=target.name, timeout=failure.timeout_seconds or 10.0,
                       correlation_id=correlation_id, retry_after=redactor.text(retry_after, 40)),
    )  # fmt: skip
    return CommunicationError(
        id=failure.failure_id or str(uuid.uuid4()),
        service_id=target.service_id,
        service_slug=target.slug,
        timestamp=failure.occurred_at,
        classification=classification,
        details=details,
        correlated_job_id=owner.job_id,
        recommendations=[redactor.text(line) for line in advice],
        tenant_id=owner.tenant_id or None,
    )
