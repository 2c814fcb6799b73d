"""Validation and masking rules of connected-service definitions, without I/O."""

from __future__ import annotations

import pytest

from services.common.masking import MASK
from services.health.domain import InvalidFieldError, ProbeKind, ProbeOptions, ServiceType, Thresholds, visible_headers
from services.health.registry.rules import define_service, parse_ref


@pytest.mark.parametrize(
    ("endpoint", "kind"),
    [
        ("http://erp.test/health", ProbeKind.HTTP),
        ("https://erp.test", ProbeKind.HTTP),
        ("tcp://mq.test:5672", ProbeKind.TCP),
        ("postgres://db.test/app", ProbeKind.POSTGRES),
        ("postgresql://user:${PG_PASSWORD}@db.test:5432/app", ProbeKind.POSTGRES),
        ("redis://cache.test:6379/0", ProbeKind.REDIS),
        ("rediss://cache.test", ProbeKind.REDIS),
        ("grpc://pricing.test:50051", ProbeKind.GRPC),
        ("https://${ERP_HOST}/api", ProbeKind.HTTP),
    ],
)
def test_the_probe_is_inferred_from_the_endpoint_scheme(endpoint: str, kind: ProbeKind) -> None:
    """Without an explicit probe, the endpoint's scheme picks it, placeholders and all."""
    assert define_service(slug="svc", type="erp", endpoint=endpoint).probe_kind is kind


def test_defaults_fill_what_a_definition_leaves_out() -> None:
    """Name falls back to the slug, the interval to 30 s, thresholds and probe options to their defaults."""
    d = define_service(slug="pim", type=ServiceType.PIM, endpoint="https://pim.test")
    assert (d.name, d.check_interval_seconds, d.enabled) == ("pim", 30, True)
    assert d.thresholds == Thresholds(80, 300, 90, 95, 90, 1000)
    assert (d.probe.http_method, d.probe.timeout_seconds, d.probe.max_retries) == ("GET", 10.0, 2)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"slug": "ERP"}, "slug", "lowercase"),
        ({"slug": "-erp"}, "slug", "lowercase"),
        ({"slug": "7d1f2a3e-0000-4000-8000-000000000000"}, "slug", "UUID"),
        ({"type": "MAINFRAME"}, "type", "ERP, PIM, CRM"),
        ({"type": None}, "type", "is required"),
        ({"endpoint": "erp.test:443"}, "endpoint", "must be a URL"),
        ({"endpoint": "ftp://erp.test"}, "endpoint", "'ftp://' is not supported"),
        ({"endpoint": "tcp://mq.test"}, "endpoint", "needs a port"),
        ({"endpoint": "https://erp.test:99999"}, "endpoint", "invalid port"),
        ({"endpoint": "https://${ERP_HOST/x"}, "endpoint", "malformed placeholder"),
        ({"probe_kind": "redis"}, "endpoint", "use one of redis://, rediss://"),
        ({"probe_kind": "smtp"}, "probe_kind", "not a probe"),
        ({"check_interval_seconds": 4}, "check_interval_seconds", "between 5 and 86400"),
        ({"labels": {"bad key": "x"}}, "labels", "label 'bad key'"),
        ({"thresholds": Thresholds(cpu_percent=120)}, "thresholds.cpu_percent", "percentage"),
        ({"thresholds": Thresholds(memory_percent=96)}, "thresholds.memory_critical_percent", "below"),
        ({"probe": ProbeOptions(headers={"X-Key": "a\r\nInjected: 1"})}, "probe.headers", "line breaks"),
        ({"probe": ProbeOptions(http_method="DELETE")}, "probe.http_method", "GET, HEAD"),
        ({"probe": ProbeOptions(expected_statuses=(200, 700))}, "probe.expected_statuses", "100-599"),
        ({"probe": ProbeOptions(max_retries=11)}, "probe.max_retries", "0-10"),
        ({"probe": ProbeOptions(metrics_url="ftp://m.test")}, "probe.metrics_url", "not supported"),
        ({"probe": ProbeOptions(grpc_service="x.v1.X")}, "probe.grpc_service", "only applies to grpc"),
    ],
)
def test_each_bad_field_is_named_with_a_reason(fields: dict[str, object], field: str, reason: str) -> None:
    """An invalid definition raises InvalidFieldError naming the field (API name) and saying what is wrong."""
    values: dict[str, object] = {"slug": "erp", "type": "ERP", "endpoint": "https://erp.test/health"}
    values.update(fields)
    with pytest.raises(InvalidFieldError) as caught:
        define_service(**values)
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_http_options_on_a_tcp_probe_are_refused_instead_of_ignored() -> None:
    """Headers on a probe that sends none would silently do nothing, so they are an error."""
    with pytest.raises(InvalidFieldError) as caught:
        define_service(
            slug="mq", type="MESSAGE_QUEUE", endpoint="tcp://mq.test:5672", probe=ProbeOptions(headers={"A": "b"})
        )
    assert caught.value.field == "probe.headers"


def test_endpoint_errors_never_repeat_the_endpoint() -> None:
    """A rejected endpoint may hold credentials, so the message does not quote it."""
    with pytest.raises(InvalidFieldError) as caught:
        define_service(slug="erp", type="ERP", endpoint="ftp://admin:TopSecret1@erp.test/")
    assert "TopSecret1" not in str(caught.value)


def test_header_values_are_masked_unless_they_only_reference_variables() -> None:
    """Literal secrets under sensitive names are masked; `Bearer ${NAME}` references stay readable."""
    shown = visible_headers(
        {
            "Authorization": "Bearer ${ERP_TOKEN}",
            "X-Api-Key": "k-12345-literal",
            "Proxy-Authorization": "Basic ${USER}:${PASSWORD}",
            "Cookie": "session=${SESSION} extra-literal",
            "X-Tenant": "b2x",
        }
    )
    assert shown == {
        "Authorization": "Bearer ${ERP_TOKEN}",
        "X-Api-Key": MASK,
        "Proxy-Authorization": "Basic ${USER}:${PASSWORD}",
        "Cookie": MASK,
        "X-Tenant": "b2x",
    }


def test_a_reference_is_an_id_a_slug_or_an_error() -> None:
    """GetService accepts ids and slugs (any case) and rejects anything else as INVALID_ARGUMENT."""
    assert parse_ref("7D1F2A3E-0000-4000-8000-000000000000") == ("7d1f2a3e-0000-4000-8000-000000000000", None)
    assert parse_ref(" ERP ") == (None, "erp")
    with pytest.raises(InvalidFieldError):
        parse_ref("erp/../x")
    with pytest.raises(InvalidFieldError):
        parse_ref("")
