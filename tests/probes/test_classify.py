"""The classification tables: every failure lands in the seed's CommunicationErrorType with group and severity."""

from __future__ import annotations

import errno
import socket
import ssl
from datetime import UTC, datetime

import grpc
import pytest
from redis import exceptions as redis_errors

from services.probes.domain import ErrorGroup, ErrorType, PhaseName, Severity
from services.probes.probing.certinfo import CertInfo
from services.probes.probing.classify import GROUP, SEVERITY, TRANSIENT, Context, classify_exception, escalate, make
from services.probes.probing.classify_http import (
    check_body,
    classify_cluster_health,
    classify_status,
    decode_body,
    parse_json,
)
from services.probes.probing.faults import CertificateRejected, CheckFailed, MissingVariable, ProtocolViolation

E = ErrorType
P = PhaseName
CTX = Context("erp.example.com:443", timeout=5)


def test_every_error_type_has_a_group_and_a_severity() -> None:
    """No CommunicationErrorType is left without its dashboard badge or severity."""
    assert set(GROUP) == set(ErrorType) and set(SEVERITY) == set(ErrorType)
    assert {GROUP[t] for t in (E.DNS_RESOLUTION_FAILED, E.CONNECTION_REFUSED)} == {ErrorGroup.NETWORK}
    assert GROUP[E.READ_TIMEOUT] is ErrorGroup.TIMEOUT and GROUP[E.CERTIFICATE_EXPIRED] is ErrorGroup.PROTOCOL
    assert GROUP[E.TOKEN_EXPIRED] is ErrorGroup.AUTHENTICATION and GROUP[E.SCHEMA_MISMATCH] is ErrorGroup.DATA
    assert GROUP[E.RATE_LIMITED] is ErrorGroup.SERVICE


class _Rpc(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="details")


def _sql_error(sqlstate: str) -> Exception:
    error = Exception(f"server said {sqlstate}")
    error.sqlstate = sqlstate  # type: ignore[attr-defined]
    return error


def _cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, message)
    error.verify_code = code
    error.verify_message = message
    return error


def _wrapped_redis(cause: OSError) -> redis_errors.ConnectionError:
    try:
        try:
            raise cause
        except OSError:
            raise redis_errors.ConnectionError("Error connecting") from None
    except redis_errors.ConnectionError as error:
        error.__context__ = cause
        return error


CERT = CertInfo("", "", None, datetime(2026, 1, 2, tzinfo=UTC), ("erp.example.org",))

CASES: list[tuple[str, PhaseName, BaseException, ErrorType, bool]] = [
    ("nxdomain", P.DNS, socket.gaierror(socket.EAI_NONAME, "Name or service not known"), E.DNS_RESOLUTION_FAILED, False),
    ("resolver busy", P.DNS, socket.gaierror(socket.EAI_AGAIN, "Temporary failure"), E.DNS_RESOLUTION_FAILED, True),
    ("dns timeout", P.DNS, TimeoutError(), E.DNS_RESOLUTION_FAILED, True),
    ("refused", P.TCP_CONNECT, ConnectionRefusedError(errno.ECONNREFUSED, "refused"), E.CONNECTION_REFUSED, True),
    ("net unreachable", P.TCP_CONNECT, OSError(errno.ENETUNREACH, "x"), E.NETWORK_UNREACHABLE, False),
    ("host unreachable", P.TCP_CONNECT, OSError(errno.EHOSTUNREACH, "x"), E.HOST_UNREACHABLE, False),
    ("host down", P.TCP_CONNECT, OSError(errno.EHOSTDOWN, "x"), E.HOST_UNREACHABLE, False),
    ("kernel connect timeout", P.TCP_CONNECT, OSError(errno.ETIMEDOUT, "x"), E.CONNECTION_TIMEOUT, True),
    ("connect timeout", P.TCP_CONNECT, TimeoutError(), E.CONNECTION_TIMEOUT, True),
    ("silent after connect (tls)", P.TLS_HANDSHAKE, TimeoutError(), E.READ_TIMEOUT, True),
    ("silent after request", P.TIME_TO_FIRST_BYTE, TimeoutError(), E.READ_TIMEOUT, True),
    ("stalled body", P.CONTENT_DOWNLOAD, TimeoutError(), E.READ_TIMEOUT, True),
    ("reset in handshake", P.TLS_HANDSHAKE, ConnectionResetError(errno.ECONNRESET, "x"), E.SSL_HANDSHAKE_FAILED, True),
    ("reset on connect", P.TCP_CONNECT, ConnectionResetError(errno.ECONNRESET, "x"), E.CONNECTION_REFUSED, True),
    ("reset mid-answer", P.CONTENT_DOWNLOAD, ConnectionResetError(errno.ECONNRESET, "x"), E.HTTP_PROTOCOL_ERROR, True),
    ("odd errno", P.TCP_CONNECT, OSError(errno.ENOBUFS, "x"), E.UNKNOWN, False),
    ("expired", P.TLS_HANDSHAKE, CertificateRejected(_cert_error(10, "certificate has expired"), "erp", CERT),
     E.CERTIFICATE_EXPIRED, False),
    ("wrong host", P.TLS_HANDSHAKE, CertificateRejected(_cert_error(62, "Hostname mismatch"), "erp", CERT),
     E.CERTIFICATE_INVALID, False),
    ("self-signed", P.TLS_HANDSHAKE, CertificateRejected(_cert_error(18, "self-signed"), "erp", None),
     E.CERTIFICATE_INVALID, False),
    ("unknown ca", P.TLS_HANDSHAKE, CertificateRejected(_cert_error(20, "unable to get issuer"), "erp", None),
     E.CERTIFICATE_INVALID, False),
    ("not yet valid", P.TLS_HANDSHAKE, CertificateRejected(_cert_error(9, "not yet valid"), "erp", None),
     E.CERTIFICATE_INVALID, False),
    ("library cert error", P.TCP_CONNECT, _cert_error(10, "certificate has expired"), E.CERTIFICATE_EXPIRED, False),
    ("tls alert", P.TLS_HANDSHAKE, ssl.SSLError(1, "[SSL: TLSV1_ALERT_PROTOCOL_VERSION]"), E.SSL_HANDSHAKE_FAILED,
     False),
    ("tls eof", P.TLS_HANDSHAKE, ssl.SSLEOFError(8, "EOF"), E.SSL_HANDSHAKE_FAILED, False),
    ("not http", P.CONTENT_DOWNLOAD, ProtocolViolation("SSH-2.0"), E.HTTP_PROTOCOL_ERROR, False),
    ("secret variable unset", P.DNS, MissingVariable("ERP_TOKEN", "header Authorization", credential=True),
     E.INVALID_CREDENTIALS, False),
    ("host variable unset", P.DNS, MissingVariable("ERP_HOST", "the endpoint", credential=False), E.UNKNOWN, False),
    ("pg password", P.TCP_CONNECT, _sql_error("28P01"), E.INVALID_CREDENTIALS, False),
    ("pg role", P.TCP_CONNECT, _sql_error("28000"), E.INVALID_CREDENTIALS, False),
    ("pg database", P.TCP_CONNECT, _sql_error("3D000"), E.SCHEMA_MISMATCH, False),
    ("pg privilege", P.TIME_TO_FIRST_BYTE, _sql_error("42501"), E.PERMISSION_DENIED, False),
    ("pg full", P.TCP_CONNECT, _sql_error("53300"), E.SERVICE_UNAVAILABLE, True),
    ("pg starting", P.TCP_CONNECT, _sql_error("57P03"), E.SERVICE_UNAVAILABLE, True),
    ("pg other", P.TIME_TO_FIRST_BYTE, _sql_error("XX000"), E.UNKNOWN, False),
    ("redis wrongpass", P.TCP_CONNECT, redis_errors.AuthenticationError("WRONGPASS invalid"), E.INVALID_CREDENTIALS,
     False),
    ("redis noauth", P.TIME_TO_FIRST_BYTE, redis_errors.ResponseError("NOAUTH Authentication required."),
     E.INVALID_CREDENTIALS, False),
    ("redis noperm", P.TIME_TO_FIRST_BYTE, redis_errors.NoPermissionError("NOPERM no"), E.PERMISSION_DENIED, False),
    ("redis loading", P.TIME_TO_FIRST_BYTE, redis_errors.BusyLoadingError("LOADING"), E.SERVICE_UNAVAILABLE, True),
    ("redis db index", P.TCP_CONNECT, redis_errors.ResponseError("ERR DB index is out of range"), E.SCHEMA_MISMATCH,
     False),
    ("redis refused", P.TCP_CONNECT, _wrapped_redis(ConnectionRefusedError(errno.ECONNREFUSED, "x")),
     E.CONNECTION_REFUSED, True),
    ("redis timeout", P.TIME_TO_FIRST_BYTE, redis_errors.TimeoutError("Timeout reading"), E.READ_TIMEOUT, True),
    ("grpc unavailable", P.TIME_TO_FIRST_BYTE, _Rpc(grpc.StatusCode.UNAVAILABLE), E.SERVICE_UNAVAILABLE, True),
    ("grpc deadline", P.TIME_TO_FIRST_BYTE, _Rpc(grpc.StatusCode.DEADLINE_EXCEEDED), E.READ_TIMEOUT, True),
    ("grpc unauthenticated", P.TIME_TO_FIRST_BYTE, _Rpc(grpc.StatusCode.UNAUTHENTICATED), E.AUTHENTICATION_FAILED,
     False),
    ("grpc denied", P.TIME_TO_FIRST_BYTE, _Rpc(grpc.StatusCode.PERMISSION_DENIED), E.PERMISSION_DENIED, False),
    ("grpc exhausted", P.TIME_TO_FIRST_BYTE, _Rpc(grpc.StatusCode.RESOURCE_EXHAUSTED), E.RATE_LIMITED, True),
    ("grpc no health", P.TIME_TO_FIRST_BYTE, _Rpc(grpc.StatusCode.UNIMPLEMENTED), E.HTTP_PROTOCOL_ERROR, False),
    ("grpc internal", P.TIME_TO_FIRST_BYTE, _Rpc(grpc.StatusCode.INTERNAL), E.UNKNOWN, False),
    ("anything else", P.PROTOCOL_CHECK, RuntimeError("boom"), E.UNKNOWN, False),
]  # fmt: skip


@pytest.mark.parametrize(("name", "phase", "error", "expected", "transient"), CASES, ids=[c[0] for c in CASES])
def test_exceptions_map_to_their_error_type(
    name: str, phase: PhaseName, error: BaseException, expected: ErrorType, transient: bool
) -> None:
    """Each failure, in the phase it happened, gets the seed's type, its group and the right retry decision."""
    result = classify_exception(phase, error, CTX)
    assert result.error_type is expected
    assert result.group is GROUP[expected]
    assert result.transient is transient
    assert result.message and result.code


def test_a_timeout_before_the_request_was_written_is_a_write_timeout() -> None:
    """A stall while sending the request is told apart from a stall waiting for the answer."""
    stalled = classify_exception(P.TIME_TO_FIRST_BYTE, TimeoutError(), Context("h:1", 3, request_written=False))
    assert stalled.error_type is E.WRITE_TIMEOUT and "3 s" in stalled.message


def test_certificate_messages_carry_the_evidence() -> None:
    """An expired certificate names its expiry date; a wrong host names the names it covers."""
    expired = classify_exception(P.TLS_HANDSHAKE, CertificateRejected(_cert_error(10, "x"), "erp", CERT), CTX)
    assert "expired on 2026-01-02" in expired.message and expired.severity is Severity.CRITICAL
    wrong = classify_exception(P.TLS_HANDSHAKE, CertificateRejected(_cert_error(62, "x"), "erp", CERT), CTX)
    assert "erp.example.org" in wrong.message


def test_a_check_failure_keeps_its_own_classification() -> None:
    """A content check that already knows the type is passed through unchanged."""
    own = make(E.SCHEMA_MISMATCH, "BODY_MISMATCH", "body lacks 'ok'")
    assert classify_exception(P.PROTOCOL_CHECK, CheckFailed(own), CTX) is own


STATUSES: list[tuple[int, dict[str, str], str, ErrorType | None]] = [
    (200, {}, "", None),
    (302, {}, "", None),
    (401, {}, "", E.AUTHENTICATION_FAILED),
    (401, {"www-authenticate": 'Bearer error="invalid_token", error_description="The access token expired"'}, "",
     E.TOKEN_EXPIRED),
    (401, {}, '{"error": "jwt expired"}', E.TOKEN_EXPIRED),
    (403, {}, "", E.PERMISSION_DENIED),
    (407, {}, "", E.AUTHENTICATION_FAILED),
    (408, {}, "", E.REQUEST_TIMEOUT),
    (413, {}, "", E.PAYLOAD_TOO_LARGE),
    (415, {}, "", E.SERIALIZATION_FAILED),
    (422, {}, "", E.SCHEMA_MISMATCH),
    (429, {"retry-after": "30"}, "", E.RATE_LIMITED),
    (502, {}, "", E.SERVICE_UNAVAILABLE),
    (503, {}, "", E.SERVICE_UNAVAILABLE),
    (504, {}, "", E.SERVICE_UNAVAILABLE),
    (500, {}, "", E.UNKNOWN),
    (404, {}, "", E.HTTP_PROTOCOL_ERROR),
]  # fmt: skip


@pytest.mark.parametrize(("status", "headers", "body", "expected"), STATUSES)
def test_http_statuses_map_to_their_error_type(
    status: int, headers: dict[str, str], body: str, expected: ErrorType | None
) -> None:
    """Unexpected HTTP statuses land in the seed's types; 2xx/3xx pass by default."""
    result = classify_status(status, "Reason", headers, body)
    assert (result.error_type if result else None) is expected
    if result is not None:
        assert result.code == f"HTTP_{status}"


def test_retry_after_is_quoted_and_transient_statuses_are_retried() -> None:
    """429 and 503 are retried and quote the server's Retry-After; 401 is not retried."""
    limited = classify_status(429, "Too Many Requests", {"retry-after": "30"}, "")
    assert limited is not None and limited.transient and "Retry-After: 30" in limited.message
    denied = classify_status(401, "Unauthorized", {}, "")
    assert denied is not None and not denied.transient
    assert E.SERVICE_UNAVAILABLE in TRANSIENT and E.AUTHENTICATION_FAILED not in TRANSIENT


def test_configured_statuses_replace_the_default_range() -> None:
    """With expected statuses set, a 200 that is not among them fails and a listed 404 passes."""
    assert classify_status(404, "Not Found", {}, "", (404,)) is None
    wrong = classify_status(200, "OK", {}, "", (204,))
    assert wrong is not None and wrong.error_type is E.HTTP_PROTOCOL_ERROR and "expected 204" in wrong.message


def test_body_json_and_charset_checks() -> None:
    """Bad JSON is DESERIALIZATION_FAILED, missing text SCHEMA_MISMATCH, bytes outside the charset ENCODING_ERROR."""
    assert parse_json('{"a": ')[1] is not None and parse_json('{"a": 1}')[1] is None
    assert parse_json("{")[1].error_type is E.DESERIALIZATION_FAILED  # type: ignore[union-attr]
    mismatch = check_body("status: down", "status: up")
    assert mismatch is not None and mismatch.error_type is E.SCHEMA_MISMATCH
    assert check_body("status: up", "status: up") is None
    _, bad = decode_body(b"\xff\xfe ok", {"content-type": "text/plain; charset=utf-8"})
    assert bad is not None and bad.error_type is E.ENCODING_ERROR
    assert decode_body(b"\xff\xfe ok", {"content-type": "application/octet-stream"})[1] is None


def test_elasticsearch_cluster_colours() -> None:
    """green passes, yellow passes degraded, red fails as SERVICE_UNAVAILABLE, no status is SCHEMA_MISMATCH."""
    assert classify_cluster_health({"status": "green"}) == ("pass", None)
    assert classify_cluster_health({"status": "yellow"}) == ("degraded", None)
    verdict, red = classify_cluster_health({"status": "red", "unassigned_shards": 4})
    assert verdict == "fail" and red is not None and red.error_type is E.SERVICE_UNAVAILABLE
    assert classify_cluster_health({"nodes": 1})[1].error_type is E.SCHEMA_MISMATCH  # type: ignore[union-attr]


def test_a_transient_failure_that_survived_every_retry_is_escalated() -> None:
    """Refused after all retries becomes critical; a permanent failure keeps its severity."""
    refused = make(E.CONNECTION_REFUSED, "ECONNREFUSED", "x")
    assert escalate(refused, retries_exhausted=True).severity is Severity.CRITICAL
    assert escalate(refused, retries_exhausted=False).severity is Severity.ERROR
    denied = make(E.PERMISSION_DENIED, "HTTP_403", "x")
    assert escalate(denied, retries_exhausted=True).severity is Severity.ERROR
