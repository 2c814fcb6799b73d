"""Speed rating and recommendations: what a support engineer should look at, naming the phase.

Recommendations are concrete sentences built from the evidence ("DNS took 850 ms — check the
resolver configured for this host"); the tables below hold one sentence per phase and per error type.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.probes.domain import Classification, ErrorType, Phase, PhaseName, PhaseStatus, SpeedRating
from services.probes.probing.certfindings import Finding
from services.probes.probing.certinfo import CertInfo

E = ErrorType

# A phase is called out when it takes this share of a slow test, or half of the slow threshold.
_DOMINANT_SHARE = 0.4

_PHASE_ADVICE: dict[PhaseName, str] = {
    PhaseName.DNS: "DNS took {ms} — check the resolver configured for this host (resolv.conf) or cache the name",
    PhaseName.TCP_CONNECT: (
        "TCP connect took {ms} — the network path to {where} is slow or congested; compare with ping and "
        "traceroute from the probe host"
    ),
    PhaseName.TLS_HANDSHAKE: (
        "TLS handshake took {ms} — enable session resumption and OCSP stapling on the server and keep the "
        "certificate chain short"
    ),
    PhaseName.TIME_TO_FIRST_BYTE: (
        "the service took {ms} to start answering — it is slow itself; check its load, worker pool and database"
    ),
    PhaseName.CONTENT_DOWNLOAD: (
        "downloading {size} took {ms} ({kbps}) — low bandwidth or a large response; enable compression or paginate"
    ),
    PhaseName.PROTOCOL_CHECK: "the protocol check took {ms} — the service is slow to answer queries",
}

_FAILURE_ADVICE: dict[ErrorType, str] = {
    E.DNS_RESOLUTION_FAILED: (
        "the name {host} does not resolve — check its spelling in the endpoint and the DNS records (or hosts "
        "file) seen by the probe host"
    ),
    E.CONNECTION_REFUSED: (
        "nothing accepts connections on {where} — check that the service is running and listening on this port, "
        "and that no firewall rejects the connection"
    ),
    E.NETWORK_UNREACHABLE: "there is no route from the probe host to {where} — check routing, VPN and interfaces",
    E.HOST_UNREACHABLE: "{where} does not answer on the network — the host is down or a firewall blocks it",
    E.CONNECTION_TIMEOUT: (
        "no answer to the connection request within {timeout} — a firewall drops the packets, the host is down "
        "or its listen queue is full"
    ),
    E.READ_TIMEOUT: (
        "the connection to {where} opened but no answer came within {timeout} — the service hangs; check its "
        "worker pool, thread dumps and logs"
    ),
    E.WRITE_TIMEOUT: "the request could not be sent to {where} within {timeout} — the peer stopped reading",
    E.REQUEST_TIMEOUT: "the request did not complete within {timeout} — the service is overloaded or stuck",
    E.SSL_HANDSHAKE_FAILED: (
        "the TLS handshake with {where} failed — check that the port speaks TLS and that both sides share a "
        "TLS version and cipher"
    ),
    E.CERTIFICATE_EXPIRED: "certificate expired{on} — renew it on the {name} side",
    E.CERTIFICATE_INVALID: (
        "the certificate of {host} is not trusted{names} — install a certificate for this name from a trusted CA "
        "on the {name} side, or point ca_file at the CA that issued it"
    ),
    E.HTTP_PROTOCOL_ERROR: (
        "{where} does not answer as expected for this protocol — check the port and path; another service may "
        "be listening there"
    ),
    E.AUTHENTICATION_FAILED: (
        "the credentials were rejected — check the Authorization header or ${{VARIABLE}} the probe uses and the "
        "account on the {name} side"
    ),
    # Worded so that masking (which hides "Token <value>") leaves the sentence intact.
    E.TOKEN_EXPIRED: "the access token has expired — renew it and update the variable the probe agent reads",
    E.PERMISSION_DENIED: "the account is authenticated but not allowed — grant it access to this resource",
    E.INVALID_CREDENTIALS: "the user or password is wrong — check the endpoint's credentials or the agent's variable",
    E.SERIALIZATION_FAILED: "the service could not read the request — check the method, headers and content type",
    E.DESERIALIZATION_FAILED: "the service sent malformed data — report it to the provider with this evidence",
    E.SCHEMA_MISMATCH: (
        "the answer does not have the expected content — check the endpoint path or database name and the "
        "expected body text"
    ),
    E.ENCODING_ERROR: "the response is not in the charset it declares — report it to the provider",
    E.PAYLOAD_TOO_LARGE: "the service refused the request size — lower the batch size or raise its limit",
    E.SERVICE_UNAVAILABLE: (
        "the service or its gateway reports it is unavailable{retry_after} — check for maintenance, overload or "
        "an unhealthy backend"
    ),
    E.RATE_LIMITED: "the service is rate limiting this client{retry_after} — lower the request rate or raise the quota",
    E.CIRCUIT_BREAKER_OPEN: "calls are suspended by a circuit breaker — wait for it to close, then test again",
    E.UNKNOWN: "see the message and evidence; report it to the provider with correlation id {correlation_id}",
}


def speed_rating(total_ms: float, fast_ms: float, slow_ms: float) -> SpeedRating:
    """Fast up to `fast_ms`, slow from `slow_ms`, normal between."""
    if total_ms <= fast_ms:
        return SpeedRating.FAST
    if total_ms >= slow_ms:
        return SpeedRating.SLOW
    return SpeedRating.NORMAL


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _size(value: int) -> str:
    if value >= 1024 * 1024:
        return f"{value / 1024 / 1024:.1f} MiB"
    return f"{value / 1024:.1f} KiB" if value >= 1024 else f"{value} bytes"


def slow_advice(phases: list[Phase], total_ms: float, slow_ms: float, where: str, size: int, kbps: float) -> list[str]:
    """For a slow test: one sentence per phase that made it slow (the largest one at least)."""
    timed = [p for p in phases if p.status is PhaseStatus.PASSED]
    if not timed:
        return []
    limit = min(_DOMINANT_SHARE * total_ms, slow_ms / 2)
    chosen = [p for p in timed if p.duration_ms >= limit] or [max(timed, key=lambda p: p.duration_ms)]
    values = {"where": where, "size": _size(size), "kbps": f"{kbps:.0f} kbps"}
    return [_PHASE_ADVICE[p.name].format(ms=_ms(p.duration_ms), **values) for p in chosen]


@dataclass(frozen=True)
class FailureContext:
    host: str
    where: str
    name: str
    timeout: float
    correlation_id: str
    cert: CertInfo | None = None
    retry_after: str = ""
    # Certificate problems beside the verdict (certfindings.findings after the first).
    also: tuple[Finding, ...] = ()


def failure_advice(failure: Classification, ctx: FailureContext) -> list[str]:
    """What to do about a failure, with the evidence it rests on; one sentence per certificate finding."""
    cert = ctx.cert
    advice = _failure_advice(failure, ctx)
    for finding in ctx.also:
        if finding is Finding.NAME_MISMATCH:
            names = ", ".join(cert.names[:5]) if cert and cert.names else "other names"
            advice.append(f"the certificate is also issued for {names}, not {ctx.host} — use a host name it covers")
        elif finding in (Finding.SELF_SIGNED, Finding.UNTRUSTED_CA):
            advice.append(
                "the certificate is also not from a CA this agent trusts — point ca_file at the CA that issued it, "
                f"or install a certificate from a trusted CA on the {ctx.name or ctx.host} side"
            )
    return advice


def _failure_advice(failure: Classification, ctx: FailureContext) -> list[str]:
    cert = ctx.cert
    if failure.code == "MISSING_VARIABLE":
        return [f"{failure.message} — set it in the probe agent's environment and restart the agent"]
    if failure.code == "CA_FILE_UNUSABLE":
        return [f"{failure.message} — point ca_file at a readable PEM bundle on the probe agent's host; nothing "
                "was sent to the service"]  # fmt: skip
    if failure.code == "X509_V_ERR_HOSTNAME_MISMATCH" and cert is not None and cert.names:
        return [
            f"the certificate is issued for {', '.join(cert.names[:5])}, not {ctx.host} — use a host name it covers "
            f"in the endpoint, or install a certificate for {ctx.host} on the {ctx.name or ctx.host} side"
        ]
    values = {
        "host": ctx.host,
        "where": ctx.where,
        "name": ctx.name or ctx.host,
        "timeout": f"{ctx.timeout:g} s",
        "correlation_id": ctx.correlation_id,
        "on": f" on {cert.not_after:%Y-%m-%d}" if cert and cert.not_after else "",
        "names": f" (it is issued for {', '.join(cert.names[:5])})" if cert and cert.names else "",
        "retry_after": f" (it asks to retry after {ctx.retry_after})" if ctx.retry_after else "",
    }
    return [_FAILURE_ADVICE[failure.error_type].format(**values)]
