"""Placeholders, certificate reading, speed rating and advice, and the HTTP body cap, each on its own."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

import pytest
import trustme

from services.probes.domain import ErrorType, Phase, PhaseName, PhaseStatus, SpeedRating
from services.probes.probing.advice import FailureContext, failure_advice, slow_advice, speed_rating
from services.probes.probing.certinfo import parse_certificate
from services.probes.probing.classify import make
from services.probes.probing.engine import EngineConfig, ProbeEngine
from services.probes.probing.evidence import Redactor
from services.probes.probing.faults import MissingVariable
from services.probes.probing.placeholders import expand
from tests.probes.conftest import ENVIRON, target
from tests.probes.servers import HttpTestServer, Route


def test_placeholders_expand_and_secrets_are_collected_but_host_names_are_not() -> None:
    """Header and query substitutions are secrets to scrub; a substituted host name stays visible."""
    env = {"ERP_HOST": "erp.example.com", "ERP_TOKEN": "tok-123456", "ERP_KEY": "key-abcdef"}
    expanded = expand(
        "https://${ERP_HOST}:8443/api?apikey=${ERP_KEY}", (("Authorization", "Bearer ${ERP_TOKEN}"),), env
    )
    assert expanded.endpoint == "https://erp.example.com:8443/api?apikey=key-abcdef"
    assert expanded.headers == (("Authorization", "Bearer tok-123456"),)
    assert {"tok-123456", "key-abcdef"} <= expanded.secrets and "erp.example.com" not in expanded.secrets


def test_a_missing_variable_names_itself_and_where_it_is_used() -> None:
    """An unset variable in a header is a credential problem; in the host it is not."""
    with pytest.raises(MissingVariable) as header:
        expand("https://erp", (("X-Api-Key", "${NOPE}"),), {})
    assert header.value.name == "NOPE" and header.value.credential and "header X-Api-Key" in str(header.value)
    with pytest.raises(MissingVariable) as host:
        expand("https://${ERP_HOST}/", (), {})
    assert not host.value.credential and "the endpoint" in str(host.value)


def test_the_redactor_removes_known_secrets_everywhere() -> None:
    """A known secret is removed from free text, URLs, headers and JSON bodies alike."""
    redactor = Redactor({"s3cr3t-value"})
    assert "s3cr3t-value" not in redactor.text("server said s3cr3t-value is wrong")
    assert "s3cr3t-value" not in redactor.url("https://erp/s3cr3t-value/x?user=me")
    assert "s3cr3t-value" not in repr(redactor.headers([("X-Echo", "s3cr3t-value")]))
    body = redactor.body(b'{"password": "hunter2", "echo": "s3cr3t-value", "n": 1}')
    assert "hunter2" not in body and "s3cr3t-value" not in body and '"n": 1' in body


def test_certificates_are_read_without_verification() -> None:
    """Subject names, validity and self-signedness are read from the DER bytes of any certificate."""
    ca = trustme.CA()
    leaf = ca.issue_cert("erp.example.org", "10.0.0.7", not_after=datetime(2026, 1, 2, tzinfo=UTC))
    info = parse_certificate(ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode()))
    assert info is not None and info.names == ("erp.example.org", "10.0.0.7")
    assert info.not_after == datetime(2026, 1, 2, tzinfo=UTC) and not info.self_signed
    root = parse_certificate(ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode()))
    assert root is not None and root.self_signed
    assert parse_certificate(b"\x30\x03garbage") is None


def test_speed_rating_uses_the_configured_thresholds() -> None:
    """Fast up to the fast threshold, slow from the slow threshold, normal between."""
    assert speed_rating(200, 200, 1000) is SpeedRating.FAST
    assert speed_rating(201, 200, 1000) is SpeedRating.NORMAL
    assert speed_rating(1000, 200, 1000) is SpeedRating.SLOW


def test_slow_advice_names_the_phase_that_made_the_test_slow() -> None:
    """A slow DNS lookup is called out with its duration and what to check; the fast phases are not."""
    phases = [
        Phase(PhaseName.DNS, PhaseStatus.PASSED, 850.0),
        Phase(PhaseName.TCP_CONNECT, PhaseStatus.PASSED, 5.0),
        Phase(PhaseName.TIME_TO_FIRST_BYTE, PhaseStatus.PASSED, 40.0),
    ]
    advice = slow_advice(phases, 900.0, 1000.0, "erp:443", 1000, 8.0)
    assert advice == ["DNS took 850 ms — check the resolver configured for this host (resolv.conf) or cache the name"]


def test_failure_advice_is_specific() -> None:
    """Refused names the address, rate limiting quotes Retry-After, unknown errors give the correlation id."""
    ctx = FailureContext("erp", "erp:443", "enventa ERP", 10, "corr-1", retry_after="30")
    assert "erp:443" in failure_advice(make(ErrorType.CONNECTION_REFUSED, "ECONNREFUSED", "x"), ctx)[0]
    assert "retry after 30" in failure_advice(make(ErrorType.RATE_LIMITED, "HTTP_429", "x"), ctx)[0]
    assert "corr-1" in failure_advice(make(ErrorType.UNKNOWN, "X", "x"), ctx)[0]


async def test_the_whole_body_is_downloaded_and_only_the_evidence_is_cut() -> None:
    """A body larger than what is kept is still read to its end: bytes downloaded, throughput and the
    download phase describe all of it; the evidence keeps the first bytes and the declared size; a passing
    test has a requests-per-second figure."""
    engine = ProbeEngine(EngineConfig(max_body_bytes=1024), ENVIRON)
    body = b"a" * 3_000_000
    async with HttpTestServer({"/big": Route(body=body, content_type="text/plain")}) as server:
        result = await engine.test(target(server.url("/big")))
    assert result.success, result.summary
    assert result.metrics.bytes_downloaded == 3_000_000 and result.evidence.response_payload_size_bytes == 3_000_000
    download = next(p for p in result.phases if p.name is PhaseName.CONTENT_DOWNLOAD)
    assert download.detail == "3000000 bytes"
    expected_kbps = 3_000_000 * 8 / result.metrics.total_latency_ms
    assert result.metrics.throughput_kbps == pytest.approx(expected_kbps)
    assert result.metrics.requests_per_second == pytest.approx(1000 / result.metrics.total_latency_ms)


async def test_the_download_cap_stops_a_huge_body_and_says_so() -> None:
    """With a 64 KiB download cap, sized, chunked and until-close bodies stop at the cap, and the download
    phase and the advice report it."""
    engine = ProbeEngine(EngineConfig(max_body_bytes=1024, max_download_bytes=65_536), ENVIRON)
    routes = {
        "/sized": Route(body=b"b" * 500_000, content_type="text/plain"),
        "/chunked": Route(body=b"c" * 500_000, content_type="text/plain", chunked=True),
    }
    async with HttpTestServer(routes) as server:
        for path in routes:
            result = await engine.test(target(server.url(path)))
            assert result.success, (path, result.summary)
            assert result.metrics.bytes_downloaded == 65_536, path
            download = next(p for p in result.phases if p.name is PhaseName.CONTENT_DOWNLOAD)
            assert "stopped at the download cap of 65536 bytes" in download.detail, path
            assert any("B2X_PROBES_MAX_DOWNLOAD_BYTES" in r for r in result.recommendations), path
