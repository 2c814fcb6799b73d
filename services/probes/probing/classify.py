"""Failures → the seed's CommunicationErrorType, with group, severity, code and a transient flag.

Pure functions over exceptions and the phase they happened in; every decision is a row in one of the
tables below, so the mapping can be read (and tested) at a glance:

    socket.gaierror                      → DNS_RESOLUTION_FAILED (EAI_AGAIN is transient)
    OSError errno                        → _ERRNO_TYPES, or by phase for resets
    TimeoutError                         → _TIMEOUT_BY_PHASE (connect vs. read vs. write)
    CertificateRejected (verify code)    → CERTIFICATE_EXPIRED | CERTIFICATE_INVALID (certfindings.py)
    ssl.SSLError                         → SSL_HANDSHAKE_FAILED
    PostgreSQL SQLSTATE                  → _SQLSTATE_TYPES
    Redis errors                         → credentials / permission / data / service
    gRPC status codes                    → _GRPC_TYPES
    MissingVariable, ProtocolViolation, CheckFailed, ProbeMisconfigured → their own rows
    anything else                        → UNKNOWN, named by its type (a check never raises past the engine)
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import grpc
from redis import exceptions as redis_errors

from services.probes.domain import Classification, ErrorGroup, ErrorType, PhaseName, Severity
from services.probes.probing.certfindings import Finding, findings, verify_name
from services.probes.probing.certinfo import CertInfo
from services.probes.probing.faults import (
    CertificateRejected,
    CheckFailed,
    MissingVariable,
    ProbeFault,
    ProbeMisconfigured,
    ProtocolViolation,
)

E = ErrorType

GROUP: dict[ErrorType, ErrorGroup] = {
    **dict.fromkeys(
        (E.DNS_RESOLUTION_FAILED, E.CONNECTION_REFUSED, E.NETWORK_UNREACHABLE, E.HOST_UNREACHABLE), ErrorGroup.NETWORK
    ),
    **dict.fromkeys((E.CONNECTION_TIMEOUT, E.READ_TIMEOUT, E.WRITE_TIMEOUT, E.REQUEST_TIMEOUT), ErrorGroup.TIMEOUT),
    **dict.fromkeys(
        (E.SSL_HANDSHAKE_FAILED, E.CERTIFICATE_INVALID, E.CERTIFICATE_EXPIRED, E.HTTP_PROTOCOL_ERROR),
        ErrorGroup.PROTOCOL,
    ),
    **dict.fromkeys(
        (E.AUTHENTICATION_FAILED, E.TOKEN_EXPIRED, E.PERMISSION_DENIED, E.INVALID_CREDENTIALS),
        ErrorGroup.AUTHENTICATION,
    ),
    **dict.fromkeys(
        (E.SERIALIZATION_FAILED, E.DESERIALIZATION_FAILED, E.SCHEMA_MISMATCH, E.ENCODING_ERROR, E.PAYLOAD_TOO_LARGE),
        ErrorGroup.DATA,
    ),
    **dict.fromkeys((E.SERVICE_UNAVAILABLE, E.RATE_LIMITED, E.CIRCUIT_BREAKER_OPEN, E.UNKNOWN), ErrorGroup.SERVICE),
}

# Critical: nothing works until a person acts (a name gone, a certificate dead). Warning: the
# service protects itself and will recover on its own. Everything else is an error.
SEVERITY: dict[ErrorType, Severity] = {
    **dict.fromkeys(GROUP, Severity.ERROR),
    E.DNS_RESOLUTION_FAILED: Severity.CRITICAL,
    E.CERTIFICATE_EXPIRED: Severity.CRITICAL,
    E.CERTIFICATE_INVALID: Severity.CRITICAL,
    E.RATE_LIMITED: Severity.WARNING,
    E.CIRCUIT_BREAKER_OPEN: Severity.WARNING,
}

# Worth another try with backoff: the peer may be restarting, overloaded or briefly unreachable.
TRANSIENT = frozenset(
    {
        E.CONNECTION_REFUSED,
        E.CONNECTION_TIMEOUT,
        E.READ_TIMEOUT,
        E.WRITE_TIMEOUT,
        E.REQUEST_TIMEOUT,
        E.SERVICE_UNAVAILABLE,
        E.RATE_LIMITED,
    }
)

_ERRNO_TYPES: dict[int, ErrorType] = {
    errno.ECONNREFUSED: E.CONNECTION_REFUSED,
    errno.ENETUNREACH: E.NETWORK_UNREACHABLE,
    errno.ENETDOWN: E.NETWORK_UNREACHABLE,
    errno.EADDRNOTAVAIL: E.NETWORK_UNREACHABLE,
    errno.EACCES: E.NETWORK_UNREACHABLE,  # a local firewall rule refused the connect()
    errno.EPERM: E.NETWORK_UNREACHABLE,
    errno.EHOSTUNREACH: E.HOST_UNREACHABLE,
    errno.EHOSTDOWN: E.HOST_UNREACHABLE,
    errno.ETIMEDOUT: E.CONNECTION_TIMEOUT,
}
_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})
_RESET_BY_PHASE: dict[PhaseName, ErrorType] = {
    PhaseName.TCP_CONNECT: E.CONNECTION_REFUSED,
    PhaseName.TLS_HANDSHAKE: E.SSL_HANDSHAKE_FAILED,
}

_TIMEOUT_BY_PHASE: dict[PhaseName, ErrorType] = {
    PhaseName.DNS: E.DNS_RESOLUTION_FAILED,
    PhaseName.TCP_CONNECT: E.CONNECTION_TIMEOUT,
    # Connected, but the peer never answered our ClientHello / request / query.
    PhaseName.TLS_HANDSHAKE: E.READ_TIMEOUT,
    PhaseName.TIME_TO_FIRST_BYTE: E.READ_TIMEOUT,
    PhaseName.CONTENT_DOWNLOAD: E.READ_TIMEOUT,
    PhaseName.PROTOCOL_CHECK: E.READ_TIMEOUT,
}
_TIMEOUT_WORDS: dict[ErrorType, str] = {
    E.DNS_RESOLUTION_FAILED: "DNS lookup of {where} timed out after {timeout:g} s",
    E.CONNECTION_TIMEOUT: "no answer to the TCP connection request to {where} within {timeout:g} s",
    E.READ_TIMEOUT: "connected to {where}, but no response within {timeout:g} s",
    E.WRITE_TIMEOUT: "could not send the request to {where} within {timeout:g} s",
}

_GAI_NAMES = {
    getattr(socket, name): name
    for name in ("EAI_NONAME", "EAI_AGAIN", "EAI_FAIL", "EAI_NODATA", "EAI_SERVICE", "EAI_FAMILY", "EAI_ADDRFAMILY")
    if hasattr(socket, name)
}


_SQLSTATE_TYPES: dict[str, ErrorType] = {
    "28P01": E.INVALID_CREDENTIALS,  # invalid_password
    "28000": E.INVALID_CREDENTIALS,  # invalid_authorization_specification (unknown role, pg_hba)
    "3D000": E.SCHEMA_MISMATCH,  # invalid_catalog_name: the database does not exist
    "3F000": E.SCHEMA_MISMATCH,  # invalid_schema_name
    "42501": E.PERMISSION_DENIED,  # insufficient_privilege
    "53300": E.SERVICE_UNAVAILABLE,  # too_many_connections
    "57P01": E.SERVICE_UNAVAILABLE,  # admin_shutdown
    "57P03": E.SERVICE_UNAVAILABLE,  # cannot_connect_now (starting up, recovering)
    "57014": E.REQUEST_TIMEOUT,  # query_canceled (statement_timeout)
}

_GRPC_TYPES: dict[grpc.StatusCode, ErrorType] = {
    grpc.StatusCode.UNAVAILABLE: E.SERVICE_UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: E.READ_TIMEOUT,
    grpc.StatusCode.UNAUTHENTICATED: E.AUTHENTICATION_FAILED,
    grpc.StatusCode.PERMISSION_DENIED: E.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: E.RATE_LIMITED,
    grpc.StatusCode.UNIMPLEMENTED: E.HTTP_PROTOCOL_ERROR,  # the server has no grpc.health.v1
    grpc.StatusCode.INVALID_ARGUMENT: E.SERIALIZATION_FAILED,
    grpc.StatusCode.DATA_LOSS: E.DESERIALIZATION_FAILED,
}


@dataclass(frozen=True)
class Context:
    """Where the failure happened, for the message: `host:port`, the phase timeout, request state."""

    where: str
    timeout: float = 10.0
    request_written: bool = True


def make(error_type: ErrorType, code: str, message: str, *, transient: bool | None = None) -> Classification:
    """A classification with the group and severity of its type."""
    return Classification(
        error_type=error_type,
        group=GROUP[error_type],
        severity=SEVERITY[error_type],
        code=code,
        message=message,
        transient=error_type in TRANSIENT if transient is None else transient,
    )


def escalate(classification: Classification, retries_exhausted: bool) -> Classification:
    """A transient failure that survived every retry is one severity level worse."""
    if not (classification.transient and retries_exhausted):
        return classification
    worse = {Severity.WARNING: Severity.ERROR, Severity.ERROR: Severity.CRITICAL}
    severity = worse.get(classification.severity, classification.severity)
    return replace(classification, severity=severity)


def classify_exception(phase: PhaseName, error: BaseException, ctx: Context) -> Classification:
    """The classification of `error`, raised during `phase` of a check against `ctx.where`."""
    if isinstance(error, CertificateRejected):
        return _certificate(error)
    if isinstance(error, ProbeFault):
        return _fault(error, ctx)
    if isinstance(error, TimeoutError | redis_errors.TimeoutError):
        return _timeout(phase, ctx)
    if isinstance(error, ssl.SSLCertVerificationError):
        # Raised by a library (asyncpg, redis) that did the handshake itself: no certificate details.
        return _certificate(CertificateRejected(error, ctx.where.rsplit(":", 1)[0], None))
    if isinstance(error, ssl.SSLError):
        return _tls(error, ctx)
    if isinstance(error, grpc.aio.AioRpcError):
        return _grpc(error, ctx)
    if isinstance(error, redis_errors.RedisError):
        return _redis(phase, error, ctx)
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str):
        kind = _SQLSTATE_TYPES.get(sqlstate, E.UNKNOWN)
        return make(kind, f"SQLSTATE_{sqlstate}", f"PostgreSQL at {ctx.where}: {_first_line(error)}")
    if isinstance(error, socket.gaierror):
        name = _GAI_NAMES.get(error.errno, f"EAI_{error.errno}")
        transient = name == "EAI_AGAIN"
        message = f"DNS lookup of {ctx.where} failed: {error.strerror or error}"
        return make(E.DNS_RESOLUTION_FAILED, name, message, transient=transient)
    if isinstance(error, OSError) and error.errno is not None:
        return _os_error(phase, error, ctx)
    return make(E.UNKNOWN, type(error).__name__, f"{ctx.where}: {_first_line(error) or type(error).__name__}")


def _fault(error: ProbeFault, ctx: Context) -> Classification:
    """Our own faults (faults.py), each its own row."""
    if isinstance(error, CheckFailed):
        return error.classification
    if isinstance(error, MissingVariable):
        kind = E.INVALID_CREDENTIALS if error.credential else E.UNKNOWN
        return make(kind, "MISSING_VARIABLE", str(error), transient=False)
    if isinstance(error, ProbeMisconfigured):
        # Our side: TLS cannot even start, and another try will not change that.
        return make(E.SSL_HANDSHAKE_FAILED, error.code, str(error), transient=False)
    if isinstance(error, ProtocolViolation):
        return make(E.HTTP_PROTOCOL_ERROR, error.code, f"{ctx.where}: {error}")
    return make(E.UNKNOWN, type(error).__name__, f"{ctx.where}: {_first_line(error) or type(error).__name__}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _timeout(phase: PhaseName, ctx: Context) -> Classification:
    kind = _TIMEOUT_BY_PHASE.get(phase, E.REQUEST_TIMEOUT)
    if phase is PhaseName.TIME_TO_FIRST_BYTE and not ctx.request_written:
        kind = E.WRITE_TIMEOUT
    template = _TIMEOUT_WORDS.get(kind, "{where} did not finish within {timeout:g} s")
    # A resolver that does not answer is as likely to answer next time as a busy server.
    return make(kind, "TIMEOUT", template.format(where=ctx.where, timeout=ctx.timeout), transient=True)


def _os_error(phase: PhaseName, error: OSError, ctx: Context) -> Classification:
    code = errno.errorcode.get(error.errno or 0, f"ERRNO_{error.errno}")
    # strerror, not str(error): asyncio's message repeats the address in Python syntax.
    reason = os.strerror(error.errno) if error.errno else str(error)
    if error.errno in _RESET_ERRNOS:
        kind = _RESET_BY_PHASE.get(phase, E.HTTP_PROTOCOL_ERROR)
        return make(kind, code, f"{ctx.where} closed the connection during {phase.value}: {reason}", transient=True)
    kind = _ERRNO_TYPES.get(error.errno or 0, E.UNKNOWN)
    return make(kind, code, f"cannot connect to {ctx.where}: {reason}")


def _certificate(error: CertificateRejected) -> Classification:
    """The most useful finding is the verdict (expired before untrusted, names before the CA); the rest follow."""
    cert, host = error.cert, error.host
    verify_code = error.error.verify_code
    found = findings(verify_code, cert, host, datetime.now(UTC))
    primary, also = found[0], found[1:]
    if primary is Finding.EXPIRED:
        when = f" on {cert.not_after:%Y-%m-%d}" if cert and cert.not_after else ""
        verdict = f"the TLS certificate of {host} expired{when}"
    elif primary is Finding.NOT_YET_VALID:
        when = f" (valid from {cert.not_before:%Y-%m-%d})" if cert and cert.not_before else ""
        verdict = f"the TLS certificate of {host} is not valid yet{when}"
    elif primary is Finding.NAME_MISMATCH:
        verdict = f"the TLS certificate is not valid for the host name {host}{_issued_for(cert)}"
    elif primary is Finding.OTHER:
        verdict = f"the TLS certificate of {host} was rejected: {error.error.verify_message or error}"
    else:
        verdict = f"the TLS certificate of {host} {_ALSO[primary]}"
    extra = "".join(
        f"; it is also not valid for the host name {host}{_issued_for(cert)}"
        if finding is Finding.NAME_MISMATCH
        else f"; it also {_ALSO[finding]}"
        for finding in also
    )
    evidence = f" ({cert.describe()})" if cert else ""
    kind = E.CERTIFICATE_EXPIRED if primary is Finding.EXPIRED else E.CERTIFICATE_INVALID
    code = _CODE_OF.get(primary) or verify_name(verify_code, error.error.verify_message)
    return make(kind, code, verdict + extra + evidence)


_ALSO = {
    Finding.SELF_SIGNED: "is self-signed",
    Finding.UNTRUSTED_CA: "is issued by a CA this agent does not trust",
    Finding.EXPIRED: "has expired",
    Finding.NOT_YET_VALID: "is not valid yet",
}
_CODE_OF = {
    Finding.EXPIRED: "X509_V_ERR_CERT_HAS_EXPIRED",
    Finding.NOT_YET_VALID: "X509_V_ERR_CERT_NOT_YET_VALID",
    Finding.NAME_MISMATCH: "X509_V_ERR_HOSTNAME_MISMATCH",
}


def _issued_for(cert: CertInfo | None) -> str:
    names = (cert.names or ((cert.subject_cn,) if cert.subject_cn else ())) if cert else ()
    return f"; it is issued for {', '.join(names[:8])}" if names else ""


def _tls(error: ssl.SSLError, ctx: Context) -> Classification:
    reason = getattr(error, "reason", None) or type(error).__name__
    if isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        message = f"{ctx.where} closed the connection during the TLS handshake"
    elif reason == "WRONG_VERSION_NUMBER":
        message = f"{ctx.where} does not speak TLS on this port (plain HTTP?)"
    else:
        message = f"TLS handshake with {ctx.where} failed: {reason}"
    return make(E.SSL_HANDSHAKE_FAILED, str(reason), message)


def _grpc(error: grpc.aio.AioRpcError, ctx: Context) -> Classification:
    status = error.code()
    kind = _GRPC_TYPES.get(status, E.UNKNOWN)
    return make(kind, f"GRPC_{status.name}", f"gRPC {status.name} from {ctx.where}: {error.details() or ''}".rstrip())


def _root_cause(error: BaseException) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = error.__cause__ or error.__context__
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError | TimeoutError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _redis(phase: PhaseName, error: redis_errors.RedisError, ctx: Context) -> Classification:
    text = _first_line(error)
    upper = text.upper()
    if isinstance(error, redis_errors.AuthenticationError) or upper.startswith(("WRONGPASS", "NOAUTH")):
        return make(E.INVALID_CREDENTIALS, "REDIS_AUTH", f"Redis at {ctx.where} rejected the credentials: {text}")
    if isinstance(error, redis_errors.NoPermissionError) or upper.startswith("NOPERM"):
        return make(E.PERMISSION_DENIED, "REDIS_NOPERM", f"Redis at {ctx.where}: {text}")
    if isinstance(error, redis_errors.BusyLoadingError) or upper.startswith(("LOADING", "MASTERDOWN")):
        return make(E.SERVICE_UNAVAILABLE, "REDIS_LOADING", f"Redis at {ctx.where} is not ready: {text}")
    if "DB INDEX" in upper:
        return make(E.SCHEMA_MISMATCH, "REDIS_DB_INDEX", f"Redis at {ctx.where}: {text}")
    if isinstance(error, redis_errors.ConnectionError):
        cause = _root_cause(error)
        if cause is not None:
            return classify_exception(phase, cause, ctx)
    return make(E.UNKNOWN, type(error).__name__, f"Redis at {ctx.where}: {text}")
