"""The declarative file: its format, and how a broken file stops start-up with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from services.common.errors import StartupError
from services.health.domain import ProbeKind, ServiceType
from services.health.main import build_server
from services.health.registry.config import EmailChannelModel, SlackChannelModel, load_config, parse_config
from services.health.settings import HealthSettings
from tests.support import ROOT, ServiceHarness

EXAMPLE = ROOT / "config" / "services.example.yaml"


def _error(text: str) -> str:
    with pytest.raises(StartupError) as caught:
        parse_config(text, Path("/etc/b2x/services.yaml"))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_documented_example_file_is_valid() -> None:
    """config/services.example.yaml loads, so the documentation cannot drift from the format."""
    config = load_config(EXAMPLE)
    by_slug = {d.slug: d for d in config.services}
    assert set(by_slug) >= {"erp", "pim", "crm", "postgres", "elasticsearch", "redis", "rabbitmq", "pricing"}
    assert by_slug["erp"].probe.headers["Authorization"] == "Bearer ${ERP_TOKEN}"
    assert by_slug["elasticsearch"].probe_kind is ProbeKind.ELASTICSEARCH
    assert by_slug["rabbitmq"].thresholds.queue_depth == 5000
    assert by_slug["pricing"].enabled is False
    assert set(config.notifications.channels) == {"email", "slack", "webhook", "pager"}
    assert config.notifications.route.routes[0].channels == ["email", "slack", "pager"]


def test_a_minimal_entry_takes_every_default() -> None:
    """slug, type and endpoint are enough; the type is read in any case and the probe comes from the scheme."""
    config = parse_config("services:\n  - {slug: crm, type: crm, endpoint: 'redis://crm-cache:6379'}\n", Path("x"))
    (crm,) = config.services
    assert (crm.type, crm.probe_kind, crm.name, crm.check_interval_seconds) == (
        ServiceType.CRM,
        ProbeKind.REDIS,
        "crm",
        30,
    )


def test_an_empty_file_declares_no_services() -> None:
    """An empty file is valid and means "no file-owned services"."""
    assert parse_config("", Path("x")).services == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "services:\n"
            "  - {slug: a, type: ERP, endpoint: 'https://a.test'}\n"
            "  - {slug: b, type: ERP, endpoint: 'https://b.test'}\n"
            "  - {slug: c, type: ERP, endpoint: 'erp-host'}\n",
            "services[2].endpoint: must be a URL",
        ),
        ("services:\n  - {slug: a, type: ERP, endpoint: 'https://a.test', interval: 10}\n", "did you mean 'interval_seconds'"),
        ("services:\n  - {slug: a, type: ERP, endpoint: 'https://a.test', interval_seconds: 2}\n", "services[0].interval_seconds: must be between 5"),
        ("services:\n  - {slug: a, endpoint: 'https://a.test'}\n", "services[0].type: is required"),
        ("services:\n  - {slug: a, type: ERP, endpoint: 'tcp://a:1', http: {headers: {A: b}}}\n", "services[0].http.headers: only applies"),
        ("services:\n  - {slug: a, type: ERP, endpoint: 'https://a', http: {expect_status: [999]}}\n", "services[0].http.expect_status: must be"),
        ("services:\n  - {slug: a, type: ERP, endpoint: 'https://a', resources: {metrics_url: x}}\n", "services[0].resources.metrics_url: must be"),
        ("services:\n  - {slug: a, type: ERP, endpoint: 'https://a', thresholds: {cpu_percent: 101}}\n", "services[0].thresholds.cpu_percent: must be a percentage"),
        ("services:\n  - {slug: a, type: ERP, endpoint: 'https://a', labels: {tier: [1]}}\n", "services[0].labels.tier: Input should be a valid string"),
        ("services:\n  - {slug: a, type: ERP, endpoint: 'https://a'}\n  - {slug: a, type: PIM, endpoint: 'https://b'}\n", "services[1].slug: 'a' is already used by services[0]"),
        ("services:\n  - slug: a\n    slug: b\n", "line 3, column 5: duplicate key 'slug'"),
        ("services: [\n", "line 2, column 1:"),
        ("- just a list\n", "must be a mapping"),
        ("version: 2\n", "version: Input should be 1"),
        ("notifications:\n  channels:\n    sms: {to: x}\n", "notifications.channels: 'sms' needs a type: email, slack, webhook, alertmanager"),
        ("notifications:\n  channels:\n    sms: {type: sms, to: x}\n", "notifications.channels.sms: Input tag 'sms' found using 'type' does not match"),
        ("notifications:\n  channels:\n    email: {to: [a@b.test], password: hunter2}\n", "notifications.channels.email.password: must be a reference such as ${SMTP_PASSWORD}"),
        ("notifications:\n  channels:\n    email: {to: [a@b.test], security: ssl}\n", "notifications.channels.email.security: Input should be 'auto', 'starttls', 'tls' or 'none'"),
        ("notifications:\n  channels:\n    email: {to: [a@b.test], colour: red}\n", "notifications.channels.email.colour: unknown key"),
        ("notifications:\n  route: {group_wait: soon}\n", "notifications.route.group_wait: 'soon' is not a duration such as 30s, 5m or 4h"),
        ("notifications:\n  route: {channels: [pager]}\n", "notifications: route.channels: 'pager' is not a channel (defined: none)"),
        ("notifications:\n  channels: {email: {to: [a@b.test]}}\n  route: {routes: [{match: {severity: critical}, channels: [mail]}]}\n", "notifications: route.routes[0].channels: 'mail' is not a channel (defined: email)"),
        ("notifications:\n  route: {routes: [{match_re: {service: '('}, channels: []}]}\n", "notifications.route.routes[0].match_re: service: '(' is not a regular expression"),
        ("notifications:\n  channels: {am: {type: alertmanager, url: 'http://am:9093', resend_interval: 10m}}\n", "notifications.channels.am.resend_interval: must be between 1s and 4m"),
        ("notifications:\n  channels:\n    email: {to: []}\n", "notifications.channels.email.to: List should have at least 1 item"),
        ("notifications:\n  channels:\n    email: {to: [ops]}\n", "notifications.channels.email.to: 'ops' is not an e-mail address"),
        ("notifications:\n  channels:\n    slack: {webhook_url: 'http://hooks.slack.test/x'}\n", "notifications.channels.slack.webhook_url: scheme 'http://' is not supported"),
        ("notifications:\n  channels:\n    webhook: {url: 'https://h.test', headers: {'Bad Name': x}}\n", "notifications.channels.webhook.headers: 'Bad Name' is not a valid header name"),
        ("notifications:\n  channels:\n    webhook: {}\n", "notifications.channels.webhook.url: is required"),
    ],
)  # fmt: skip
def test_a_broken_file_is_reported_in_one_line_naming_file_and_field(text: str, expected: str) -> None:
    """Every kind of mistake yields `B2X_CONFIG_FILE <path>: <path to field>: <reason>` on one line."""
    message = _error(text)
    assert message.startswith("B2X_CONFIG_FILE /etc/b2x/services.yaml: ")
    assert expected in message


def test_an_unusable_ca_file_and_a_zero_timeout_are_refused_at_load(tmp_path: Path) -> None:
    """A ca_file that does not exist or is not PEM, and timeout_seconds: 0, stop the load naming the field;
    a real PEM file and a left-out timeout load (the timeout then takes its default)."""
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("hello\n")
    entry = "services:\n  - {{slug: a, type: ERP, endpoint: 'https://a.test', {}}}\n"
    assert "services[0].http.ca_file: cannot read" in _error(entry.format(f"http: {{ca_file: '{tmp_path}/x.pem'}}"))
    assert "services[0].http.ca_file: " in _error(entry.format(f"http: {{ca_file: '{not_pem}'}}"))
    assert "holds no PEM certificate" in _error(entry.format(f"http: {{ca_file: '{not_pem}'}}"))
    assert "services[0].timeout_seconds: must be more than 0" in _error(entry.format("timeout_seconds: 0"))
    pem = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(pem))
    (loaded,) = parse_config(entry.format(f"http: {{ca_file: '{pem}'}}"), Path("x")).services
    assert loaded.probe.ca_file == str(pem) and loaded.probe.timeout_seconds == 10


def test_a_shell_style_variable_in_a_header_is_refused_with_the_placeholder_hint() -> None:
    """`Bearer $ERP_TOKEN` would be sent literally; the error says to write ${ERP_TOKEN}."""
    text = "services:\n  - {slug: a, type: ERP, endpoint: 'https://a.test', http: {headers: {Authorization: 'Bearer $ERP_TOKEN'}}}\n"
    message = _error(text)
    assert "services[0].http.headers: header 'Authorization': $ERP_TOKEN would be sent literally" in message
    assert "write ${ERP_TOKEN}" in message


def test_notification_secrets_may_be_references() -> None:
    """A Slack webhook URL is a secret itself, so `${NAME}` alone is accepted in its place."""
    text = "notifications:\n  channels:\n    slack: {webhook_url: '${SLACK_WEBHOOK_URL}'}\n"
    slack = parse_config(text, Path("x")).notifications.channels["slack"]
    assert isinstance(slack, SlackChannelModel) and slack.webhook_url == "${SLACK_WEBHOOK_URL}"


def test_notification_defaults_follow_alertmanager_except_a_shorter_group_wait() -> None:
    """With no route in the file: group by rule, wait 10s, then 5m between updates and 4h between repeats."""
    notifications = parse_config("notifications:\n  channels: {email: {to: [ops@b.test]}}\n", Path("x")).notifications
    route = notifications.route
    assert (route.group_by, route.group_wait, route.group_interval, route.repeat_interval) == (["rule"], 10, 300, 14400)
    email = notifications.channels["email"]
    assert isinstance(email, EmailChannelModel) and (email.host, email.effective_port, email.security) == (
        "localhost",
        25,
        "auto",
    )


def test_several_channels_of_one_type_are_told_apart_by_name() -> None:
    """Named channels say their type; durations read 1h30m as Alertmanager does."""
    text = (
        "notifications:\n  channels:\n"
        "    ops-mail: {type: email, to: [ops@b.test], security: tls}\n"
        "    erp-mail: {type: email, to: [erp@b.test], security: starttls}\n"
        "  route: {channels: [ops-mail], repeat_interval: 1h30m, routes: [{match: {service: erp}, channels: [erp-mail], continue: true}]}\n"
    )
    notifications = parse_config(text, Path("x")).notifications
    ops, erp = notifications.channels["ops-mail"], notifications.channels["erp-mail"]
    assert isinstance(ops, EmailChannelModel) and ops.effective_port == 465
    assert isinstance(erp, EmailChannelModel) and erp.effective_port == 587
    assert notifications.route.repeat_interval == 5400
    assert notifications.route.routes[0].continue_ is True


def test_a_missing_file_is_a_startup_error() -> None:
    """A path that does not exist is named along with the reason."""
    with pytest.raises(StartupError, match=r"^B2X_CONFIG_FILE /nonexistent/b2x.yaml: cannot read: No such file"):
        load_config(Path("/nonexistent/b2x.yaml"))


async def test_the_service_refuses_to_start_with_an_invalid_file(harness: ServiceHarness, tmp_path: Path) -> None:
    """Building the server with a broken B2X_CONFIG_FILE raises StartupError before anything is served."""
    path = tmp_path / "services.yaml"
    path.write_text("services:\n  - {slug: erp, type: ERP, endpoint: 'https://admin:Hunter22@erp'}\n  - {slug: x}\n")
    with pytest.raises(StartupError) as caught:
        await harness.serve("health", build_server, harness.settings_for(HealthSettings, config_file=path))
    assert str(caught.value) == f"B2X_CONFIG_FILE {path}: services[1].type: is required"


def test_the_file_comes_from_b2x_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """B2X_CONFIG_FILE sets the path; set but empty, it turns the file off instead of meaning "."."""
    monkeypatch.setenv("B2X_DATABASE_URL", "postgresql://db.test/b2x")
    monkeypatch.setenv("B2X_REDIS_URL", "redis://:pw@redis.test")
    monkeypatch.setenv("B2X_CONFIG_FILE", "/etc/b2x/services.yaml")
    settings = HealthSettings()
    assert settings.config_file == Path("/etc/b2x/services.yaml")
    assert (settings.health_port, settings.health_metrics_port) == (50052, 9102)
    monkeypatch.setenv("B2X_CONFIG_FILE", "")
    assert HealthSettings().config_file is None
