"""HTTP(S) probes against real servers on 127.0.0.1: phases, classification, evidence, retries, masking."""

from __future__ import annotations

from pathlib import Path

from services.probes.domain import ErrorType, PhaseName, PhaseStatus, SpeedRating
from services.probes.probing.engine import EngineConfig, ProbeEngine
from tests.probes.conftest import ENVIRON, SECRET_QUERY, assert_no_secrets, target
from tests.probes.servers import FullBacklog, HttpTestServer, Pki, Route, SilentServer, closed_port

E = ErrorType
AUTH = (("Authorization", "Bearer ${ERP_TOKEN}"), ("X-Tenant-Id", "tenant-123"))


def _phase(result: object, name: PhaseName) -> PhaseStatus | None:
    return next((p.status for p in result.phases if p.name is name), None)  # type: ignore[attr-defined]


async def test_a_healthy_https_endpoint_passes_with_every_phase_timed(engine: ProbeEngine, pki: Pki) -> None:
    """A fresh HTTPS connection reports DNS, connect, TLS, first byte and download, in order, and rates the speed."""
    body = b'{"articles": [' + b",".join([b'{"id": 1, "name": "article"}'] * 200) + b'], "status": "ok"}'
    async with HttpTestServer({"/api/health": Route(body=body, chunked=True)}, pki.valid()) as server:
        result = await engine.test(target(server.url("/api/health"), ca_file=str(pki.ca_file), headers=AUTH))
    assert result.success and result.error is None, result.summary
    assert [p.name for p in result.phases] == list(PhaseName)
    assert all(p.status is PhaseStatus.PASSED and p.duration_ms >= 0 for p in result.phases)
    timing = result.evidence.timing
    parts = [timing.dns_ms, timing.tcp_ms, timing.tls_ms, timing.ttfb_ms, timing.download_ms]
    assert all(v is not None and v >= 0 for v in parts) and timing.total_ms >= sum(parts)  # type: ignore[misc]
    assert result.metrics.bytes_downloaded == len(body) and result.metrics.throughput_kbps > 0
    assert result.speed_rating in set(SpeedRating) and result.evidence.http_status_code == 200
    assert "TLSv1" in result.phases[2].detail and result.summary.startswith("HTTP 200 OK in ")


async def test_evidence_is_masked_and_secrets_never_leave_the_engine(engine: ProbeEngine, pki: Pki) -> None:
    """Header tokens, URL passwords and ?token= values are masked in evidence, even when the server echoes them."""
    echo = Route(401, "Unauthorized", body=f'{{"seen": "Bearer {ENVIRON["ERP_TOKEN"]}", "password": "x"}}'.encode())
    async with HttpTestServer({"/sync": echo}, pki.valid()) as server:
        url = server.url(f"/sync?token={SECRET_QUERY}&page=2").replace("https://", "https://erp:${ERP_PASSWORD}@")
        result = await engine.test(target(url, ca_file=str(pki.ca_file), headers=AUTH))
        sent = server.requests[-1].headers
    assert sent["authorization"] == f"Bearer {ENVIRON['ERP_TOKEN']}"  # the server got the real credentials
    assert result.error is not None and result.error.error_type is E.AUTHENTICATION_FAILED
    evidence = result.evidence
    assert evidence.request_headers["Authorization"] == "****masked****"
    assert evidence.request_headers["X-Tenant-Id"] == "tenant-123"
    assert "token=****masked****" in evidence.endpoint_url and "page=2" in evidence.endpoint_url
    assert evidence.response_body_summary and evidence.http_status_code == 401
    assert evidence.correlation_id == result.correlation_id and sent["x-correlation-id"] == result.correlation_id
    assert len(evidence.trace_id) == 32 and len(evidence.span_id) == 16
    assert_no_secrets(repr(result))


async def test_expired_certificate_names_its_expiry_date(engine: ProbeEngine, pki: Pki) -> None:
    """An expired certificate is CERTIFICATE_EXPIRED, fails the TLS phase and says when and what to renew."""
    async with HttpTestServer({"/": Route()}, pki.expired()) as server:
        result = await engine.test(target(server.url("/", "localhost"), ca_file=str(pki.ca_file)))
    assert result.error is not None and result.error.error_type is E.CERTIFICATE_EXPIRED
    assert _phase(result, PhaseName.TLS_HANDSHAKE) is PhaseStatus.FAILED
    assert result.evidence.timing.dns_ms is not None and result.evidence.timing.tcp_ms is not None
    assert result.evidence.timing.ttfb_ms is None and result.speed_rating is None
    assert "2026-01-02" in result.error.message
    assert any("expired on 2026-01-02" in r and "renew" in r for r in result.recommendations)
    assert len(result.evidence.retry_history) == 1  # a dead certificate is not retried


async def test_wrong_host_unknown_ca_and_self_signed_are_invalid_certificates(engine: ProbeEngine, pki: Pki) -> None:
    """A certificate for another name, from an untrusted CA, or self-signed is CERTIFICATE_INVALID with the reason."""
    reasons = {"wrong_host": "erp.example.org", "untrusted": "does not trust", "self_signed": "self-signed"}
    for context_name, reason in reasons.items():
        async with HttpTestServer({"/": Route()}, getattr(pki, context_name)()) as server:
            result = await engine.test(target(server.url("/", "localhost"), ca_file=str(pki.ca_file)))
        assert result.error is not None and result.error.error_type is E.CERTIFICATE_INVALID, context_name
        assert reason in result.error.message, (context_name, result.error.message)
        assert result.recommendations


async def test_tls_skip_verify_accepts_a_self_signed_endpoint(engine: ProbeEngine, pki: Pki) -> None:
    """With tls_skip_verify the same self-signed server passes: the option is honoured."""
    async with HttpTestServer({"/": Route()}, pki.self_signed()) as server:
        result = await engine.test(target(server.url("/", "localhost"), tls_skip_verify=True))
    assert result.success, result.summary


async def test_a_closed_port_is_refused_and_retried_with_backoff(engine: ProbeEngine) -> None:
    """ECONNREFUSED is CONNECTION_REFUSED, retried max_retries times with growing delays, each attempt logged."""
    result = await engine.test(target(f"http://127.0.0.1:{closed_port()}/health"))
    assert result.error is not None and result.error.error_type is E.CONNECTION_REFUSED
    history = result.evidence.retry_history
    assert [h.attempt_number for h in history] == [1, 2, 3]
    assert history[0].delay_before_retry_ms < history[1].delay_before_retry_ms and history[2].delay_before_retry_ms == 0
    assert all("refused" in h.error_message.lower() and h.duration_ms >= 0 for h in history)
    assert result.evidence.retry_attempt == 2 and result.evidence.max_retries == 2
    assert _phase(result, PhaseName.TCP_CONNECT) is PhaseStatus.FAILED
    assert result.error.severity.value == "CRITICAL"  # transient, but every retry failed


async def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    """Connected but silent is READ_TIMEOUT after the TCP phase passed, retried like any transient failure."""
    engine = ProbeEngine(EngineConfig(timeout_seconds=0.3, backoff_seconds=0.01, max_retries=1), ENVIRON)
    async with SilentServer() as server:
        result = await engine.test(target(f"http://127.0.0.1:{server.port}/"))
    assert result.error is not None and result.error.error_type is E.READ_TIMEOUT
    assert _phase(result, PhaseName.TCP_CONNECT) is PhaseStatus.PASSED
    assert _phase(result, PhaseName.TIME_TO_FIRST_BYTE) is PhaseStatus.FAILED
    assert len(result.evidence.retry_history) == 2 and "0.3 s" in result.error.message


async def test_a_full_listen_queue_is_a_connection_timeout() -> None:
    """A connection request nobody answers is CONNECTION_TIMEOUT in the TCP phase."""
    engine = ProbeEngine(EngineConfig(timeout_seconds=0.3, max_retries=0), ENVIRON)
    with FullBacklog() as backlog:
        result = await engine.test(target(f"http://127.0.0.1:{backlog.port}/"))
    assert result.error is not None and result.error.error_type is E.CONNECTION_TIMEOUT
    assert _phase(result, PhaseName.TCP_CONNECT) is PhaseStatus.FAILED
    assert result.evidence.retry_history[0].error_message


async def test_a_slow_first_byte_shows_in_its_phase(engine: ProbeEngine) -> None:
    """A server that thinks before answering shows it in time to first byte, and a slow test names that phase."""
    slow = ProbeEngine(EngineConfig(fast_ms=1, slow_ms=50), ENVIRON)
    async with HttpTestServer({"/": Route(delay=0.15)}) as server:
        result = await slow.test(target(server.url("/")))
    assert result.success and result.speed_rating is SpeedRating.SLOW
    assert result.evidence.timing.ttfb_ms is not None and result.evidence.timing.ttfb_ms >= 150
    assert any(r.startswith("the service took") for r in result.recommendations)


async def test_http_error_answers_land_in_their_types(engine: ProbeEngine) -> None:
    """401, 401 with an expired token, 403, 429 and 503 answers are classified, with status and retries as fitting."""
    routes = {
        "/401": Route(401, "Unauthorized"),
        "/expired": Route(401, "Unauthorized", headers=[("WWW-Authenticate", 'Bearer error="invalid_token", '
                                                         'error_description="The access token expired"')]),
        "/403": Route(403, "Forbidden"),
        "/429": Route(429, "Too Many Requests", headers=[("Retry-After", "0")]),
        "/503": Route(503, "Service Unavailable", headers=[("traceparent", "00-" + "a" * 32 + "-" + "b" * 16 + "-01")]),
    }  # fmt: skip
    expected = {
        "/401": (E.AUTHENTICATION_FAILED, 1),
        "/expired": (E.TOKEN_EXPIRED, 1),
        "/403": (E.PERMISSION_DENIED, 1),
        "/429": (E.RATE_LIMITED, 3),
        "/503": (E.SERVICE_UNAVAILABLE, 3),
    }
    async with HttpTestServer(routes) as server:
        for path, (kind, attempts) in expected.items():
            result = await engine.test(target(server.url(path)))
            assert result.error is not None and result.error.error_type is kind, path
            assert result.evidence.http_status_code == int(routes[path].status), path
            assert len(result.evidence.retry_history) == attempts, path
            assert _phase(result, PhaseName.PROTOCOL_CHECK) is PhaseStatus.FAILED
            assert result.evidence.timing.download_ms is not None
            if path == "/503":
                assert result.evidence.trace_id == "a" * 32 and result.evidence.span_id == "b" * 16


async def test_garbage_that_is_not_http_is_a_protocol_error(engine: ProbeEngine) -> None:
    """An SSH banner on an HTTP port is HTTP_PROTOCOL_ERROR, and what it sent is in the evidence."""
    async with HttpTestServer({"/": Route(raw=b"SSH-2.0-OpenSSH_9.6\r\n")}) as server:
        result = await engine.test(target(server.url("/")))
    assert result.error is not None and result.error.error_type is E.HTTP_PROTOCOL_ERROR
    assert "SSH-2.0" in result.evidence.response_body_summary and "not HTTP" in result.error.message
    assert len(result.evidence.retry_history) == 1


async def test_body_checks_fail_as_data_errors(engine: ProbeEngine) -> None:
    """Undecodable JSON is DESERIALIZATION_FAILED and a missing expected text is SCHEMA_MISMATCH."""
    routes = {"/bad-json": Route(body=b'{"status": '), "/text": Route(body=b"status: down", content_type="text/plain")}
    async with HttpTestServer(routes) as server:
        bad = await engine.test(target(server.url("/bad-json")))
        missing = await engine.test(target(server.url("/text"), body_contains="status: up"))
        present = await engine.test(target(server.url("/text"), body_contains="status: down"))
    assert bad.error is not None and bad.error.error_type is E.DESERIALIZATION_FAILED
    assert missing.error is not None and missing.error.error_type is E.SCHEMA_MISMATCH
    assert present.success


async def test_an_unresolvable_name_fails_in_dns(engine: ProbeEngine) -> None:
    """A `.invalid` host is DNS_RESOLUTION_FAILED in the DNS phase, and no later phase ran."""
    result = await engine.test(target("https://something.invalid/health"))
    assert result.error is not None and result.error.error_type is E.DNS_RESOLUTION_FAILED
    assert [p.name for p in result.phases if p.attempt == 1] == [PhaseName.DNS]
    assert result.evidence.timing.dns_ms is not None and result.evidence.timing.tcp_ms is None
    assert "something.invalid" in result.recommendations[0]


async def test_an_unset_placeholder_variable_fails_before_connecting(engine: ProbeEngine) -> None:
    """${NAME} that is not in the agent's environment is INVALID_CREDENTIALS naming the variable, with no phase run."""
    result = await engine.test(target("https://erp.example.com/", headers=(("Authorization", "Bearer ${NOT_SET}"),)))
    assert result.error is not None and result.error.error_type is E.INVALID_CREDENTIALS
    assert "NOT_SET" in result.error.message and "header Authorization" in result.error.message
    assert result.phases == [] and "NOT_SET" in result.recommendations[0]


async def test_a_passing_https_check_reports_when_the_certificate_expires(engine: ProbeEngine, pki: Pki) -> None:
    """The verified certificate's not_after travels with the result (the health service's tls.expiring rule)."""
    from datetime import UTC, datetime, timedelta

    not_after = (datetime.now(UTC) + timedelta(days=6)).replace(microsecond=0)
    async with HttpTestServer({"/": Route()}, pki.expiring(not_after)) as server:
        result = await engine.test(target(server.url("/"), ca_file=str(pki.ca_file)))
    assert result.success, result.summary
    assert result.tls_not_after == not_after
    async with HttpTestServer({"/": Route()}) as plain:
        assert (await engine.test(target(plain.url("/")))).tls_not_after is None


async def test_an_unusable_ca_file_is_a_classified_failure_not_a_crash(
    engine: ProbeEngine, pki: Pki, tmp_path: Path
) -> None:
    """A ca_file that is missing or holds no PEM certificate fails the test as SSL_HANDSHAKE_FAILED /
    CA_FILE_UNUSABLE naming the file, without a retry and before anything is sent."""
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("this is not a certificate\n")
    async with HttpTestServer({"/": Route()}, pki.valid()) as server:
        for path, reason in ((tmp_path / "missing.pem", "No such file"), (not_pem, "no PEM certificate")):
            result = await engine.test(target(server.url("/", "localhost"), ca_file=str(path)))
            assert result.error is not None and result.error.error_type is E.SSL_HANDSHAKE_FAILED, result.summary
            assert result.error.code == "CA_FILE_UNUSABLE" and str(path) in result.error.message
            assert reason in result.error.message and len(result.evidence.retry_history) == 1
            assert "readable PEM bundle" in result.recommendations[0]
        assert server.requests == []


async def test_an_expired_certificate_from_an_untrusted_ca_is_expired_first(engine: ProbeEngine, pki: Pki) -> None:
    """OpenSSL only says "unable to get local issuer"; the verdict is still CERTIFICATE_EXPIRED with its date,
    the untrusted issuer is the second finding (message and advice), and no code is a bare number."""
    async with HttpTestServer({"/": Route()}, pki.expired_untrusted()) as server:
        result = await engine.test(target(server.url("/", "localhost"), ca_file=str(pki.ca_file)))
    assert result.error is not None and result.error.error_type is E.CERTIFICATE_EXPIRED, result.summary
    assert result.error.code == "X509_V_ERR_CERT_HAS_EXPIRED"
    assert "expired on 2026-01-02" in result.error.message and "does not trust" in result.error.message
    assert any("renew" in r for r in result.recommendations)
    assert any("ca_file" in r for r in result.recommendations)


async def test_a_wrong_host_behind_an_untrusted_ca_blames_the_names(engine: ProbeEngine, pki: Pki) -> None:
    """A certificate for erp.example.org from an unknown CA is reported as a host-name mismatch naming the
    certificate's names, with the untrusted CA beside it."""
    async with HttpTestServer({"/": Route()}, pki.wrong_host_untrusted()) as server:
        result = await engine.test(target(server.url("/", "localhost"), ca_file=str(pki.ca_file)))
    assert result.error is not None and result.error.error_type is E.CERTIFICATE_INVALID
    assert result.error.code == "X509_V_ERR_HOSTNAME_MISMATCH"
    message = result.error.message
    assert message.startswith("the TLS certificate is not valid for the host name localhost; it is issued for erp")
    assert "also is issued by a CA this agent does not trust" in message
    assert any("erp.example.org, not localhost" in r for r in result.recommendations)


async def test_verify_failures_are_named_never_numbered(engine: ProbeEngine, pki: Pki) -> None:
    """Every certificate failure's code is an X509_V_ERR_ name, not X509_V_ERR_<number>."""
    for context_name in ("untrusted", "self_signed", "wrong_host", "expired"):
        async with HttpTestServer({"/": Route()}, getattr(pki, context_name)()) as server:
            result = await engine.test(target(server.url("/", "localhost"), ca_file=str(pki.ca_file)))
        assert result.error is not None and result.error.code.startswith("X509_V_ERR_"), context_name
        assert not result.error.code.removeprefix("X509_V_ERR_").isdigit(), (context_name, result.error.code)


async def test_a_challenge_and_its_prose_stay_readable_while_credentials_are_masked(engine: ProbeEngine) -> None:
    """The evidence of a TOKEN_EXPIRED answer keeps WWW-Authenticate's realm and error description readable and
    the body's prose; the Authorization header we sent and a token the server echoes stay masked."""
    challenge = 'Bearer realm="erp", error="invalid_token", error_description="The access token expired"'
    body = f'{{"message": "The access token expired", "seen": "Bearer {ENVIRON["ERP_TOKEN"]}"}}'.encode()
    routes = {"/": Route(401, "Unauthorized", headers=[("WWW-Authenticate", challenge)], body=body)}
    async with HttpTestServer(routes) as server:
        result = await engine.test(target(server.url("/"), headers=AUTH))
    assert result.error is not None and result.error.error_type is E.TOKEN_EXPIRED
    evidence = result.evidence
    assert evidence.response_headers["WWW-Authenticate"] == challenge
    assert "The access token expired" in evidence.response_body_summary
    assert evidence.request_headers["Authorization"] == "****masked****"
    assert_no_secrets(repr(result))


async def test_http1_framing_interim_answers_until_close_bodies_and_truncation(engine: ProbeEngine) -> None:
    """A 100 Continue before the answer is skipped; a body without length is read until close; a chunked body
    with trailers is joined; a body shorter than its Content-Length is HTTP_PROTOCOL_ERROR (TRUNCATED)."""
    routes = {
        "/interim": Route(raw=b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        "/close": Route(raw=b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 70_000),
        "/trailers": Route(raw=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n"
                           b"X-Checksum: 1\r\n\r\n"),
        "/short": Route(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"),
    }  # fmt: skip
    async with HttpTestServer(routes) as server:
        results = {path: await engine.test(target(server.url(path))) for path in routes}
    assert results["/interim"].success and results["/interim"].metrics.bytes_downloaded == 2
    assert results["/close"].success and results["/close"].metrics.bytes_downloaded == 70_000
    assert results["/trailers"].success and results["/trailers"].metrics.bytes_downloaded == 5
    short = results["/short"]
    assert short.error is not None and short.error.error_type is E.HTTP_PROTOCOL_ERROR
    assert short.error.code == "TRUNCATED" and _phase(short, PhaseName.CONTENT_DOWNLOAD) is PhaseStatus.FAILED
