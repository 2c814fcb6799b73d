"""HTTP(S) probe: method, expected statuses (default 2xx/3xx), optional body match, headers.

The exchange (`exchange`) is shared with the Elasticsearch probe: DNS, TCP connect, TLS handshake,
time to first byte and content download are each a timed phase on a fresh connection.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from services.probes.domain import ErrorType, PhaseName, ProbeKind, Target
from services.probes.probing.certinfo import parse_certificate
from services.probes.probing.checks.base import Attempt, CheckOutcome, StepFailed
from services.probes.probing.checks.http1 import BodyLimits, Http1Exchange, HttpResponse, build_request
from services.probes.probing.checks.net import Channel, TlsSettings, connect, peer_certificate, resolve, tls_context
from services.probes.probing.classify import make
from services.probes.probing.classify_http import check_body, classify_status, decode_body, is_json, parse_json
from services.probes.probing.faults import CertificateRejected, CheckFailed, ProtocolViolation
from services.probes.probing.placeholders import Expanded

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    tls: TlsSettings


def _host_header(host: str, port: int, scheme: str) -> str:
    shown = f"[{host}]" if _is_ipv6(host) else host
    return shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _with_basic_auth(url: str, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """URL userinfo becomes an Authorization header unless the probe sets one itself."""
    parts = urlsplit(url)
    if parts.username is None or any(name.lower() == "authorization" for name, _ in headers):
        return headers
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return [*headers, ("Authorization", "Basic " + base64.b64encode(pair).decode("ascii"))]


async def exchange(attempt: Attempt, request: HttpRequest, limits: BodyLimits) -> HttpResponse:
    """One request on a fresh connection, every phase timed; StepFailed names the phase that failed."""
    parts = urlsplit(request.url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ProtocolViolation(f"not an http(s) URL: {scheme or '?'}://", "BAD_URL")
    host = parts.hostname
    port = parts.port or _DEFAULT_PORTS[scheme]
    attempt.where = f"{host}:{port}"
    headers = _with_basic_auth(request.url, request.headers)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    evidence = attempt.evidence
    evidence.method, evidence.url, evidence.request_headers = request.method, request.url, headers

    addresses = await attempt.step(PhaseName.DNS, resolve(host, port), lambda infos: f"{host} → {infos[0][4][0]}")
    sock = await attempt.step(
        PhaseName.TCP_CONNECT, connect(addresses), lambda s: "connected to {}:{}".format(*s.getpeername()[:2])
    )
    channel = Channel(sock)
    try:
        if scheme == "https":
            try:
                await attempt.step(
                    PhaseName.TLS_HANDSHAKE,
                    channel.start_tls(tls_context(request.tls), host),
                    lambda _: f"{channel.tls_version} {channel.cipher}",
                )
                der = channel.peer_certificate_der()
                cert = parse_certificate(der) if der else None
                evidence.tls_not_after = cert.not_after if cert else None
            except StepFailed as failed:
                if isinstance(failed.cause, CertificateRejected):
                    # Evidence for the operator: what the rejected certificate actually says.
                    cert = await peer_certificate(addresses, host)
                    raise StepFailed(failed.phase, CertificateRejected(failed.cause.error, host, cert)) from None
                raise
        else:
            attempt.skip(PhaseName.TLS_HANDSHAKE, "plain HTTP")
        http = Http1Exchange(channel, limits)
        payload = build_request(request.method, _host_header(host, port, scheme), target, headers)
        try:
            await attempt.step(PhaseName.TIME_TO_FIRST_BYTE, http.send_and_wait(payload))
        finally:
            evidence.request_written = http.request_written
        try:
            response = await attempt.step(
                PhaseName.CONTENT_DOWNLOAD,
                http.read_response(request.method),
                lambda r: (
                    f"{r.received} bytes"
                    + (f" (stopped at the download cap of {limits.download} bytes)" if r.capped else "")
                ),
            )
        except StepFailed:
            evidence.response_body = http.partial_bytes()
            evidence.response_size = len(evidence.response_body)
            raise
    finally:
        channel.close()
    evidence.status, evidence.reason = response.status, response.reason
    evidence.response_headers = response.headers
    evidence.response_body = response.body
    evidence.bytes_downloaded = response.received
    evidence.response_size = response.declared_size if response.declared_size is not None else response.received
    return response


def validate(response: HttpResponse, expected: tuple[int, ...], must_contain: str) -> str:
    """Status, charset, JSON and body checks; CheckFailed with the first problem, else the body text."""
    text, encoding_error = decode_body(response.body, response.header_map)
    failure = classify_status(response.status, response.reason, response.header_map, text, expected)
    if failure is None and encoding_error is not None:
        failure = encoding_error
    if failure is None and is_json(response.header_map) and not response.truncated:
        failure = parse_json(text)[1]
    if failure is None:
        failure = check_body(text, must_contain)
    if failure is not None:
        raise CheckFailed(failure)
    return text


class HttpCheck:
    kind = ProbeKind.HTTP

    def __init__(self, limits: BodyLimits) -> None:
        self._limits = limits

    async def run(self, target: Target, expanded: Expanded, attempt: Attempt) -> CheckOutcome:
        options = target.options
        method = (options.http_method or "GET").upper()
        if not method.isalpha():
            raise CheckFailed(make(ErrorType.SERIALIZATION_FAILED, "BAD_METHOD", f"invalid HTTP method {method!r}"))
        request = HttpRequest(
            method,
            expanded.endpoint,
            list(expanded.headers),
            TlsSettings(verify=not options.tls_skip_verify, ca_file=options.ca_file),
        )
        response = await exchange(attempt, request, self._limits)
        await attempt.step(
            PhaseName.PROTOCOL_CHECK,
            _validate_async(response, options.expected_statuses, options.body_contains),
            f"HTTP {response.status} {response.reason}".strip(),
        )
        return CheckOutcome(summary=f"HTTP {response.status} {response.reason}".strip(), advice=capped_advice(response))


def capped_advice(response: HttpResponse) -> list[str]:
    """Say so when the download cap, not the end of the body, ended the download phase."""
    if not response.capped:
        return []
    declared = f" of {response.declared_size} declared" if response.declared_size is not None else ""
    return [
        f"only the first {response.received} bytes{declared} were downloaded (B2X_PROBES_MAX_DOWNLOAD_BYTES): "
        "download time and throughput describe that part; probe a smaller resource or raise the cap"
    ]


async def _validate_async(response: HttpResponse, expected: tuple[int, ...], must_contain: str) -> str:
    return validate(response, expected, must_contain)
