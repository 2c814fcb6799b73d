"""Routing and rendering without I/O: which routes and channels an alert reaches with which timing, and what
a message says on each channel."""

from __future__ import annotations

from pathlib import Path

from services.health.alerts.delivery import render
from services.health.alerts.delivery.domain import Message, MessageAlert, Router
from services.health.registry.config import parse_config

CONFIG = """
notifications:
  dashboard_url: https://mon.example.test/
  channels:
    ops: {type: email, to: [ops@example.test]}
    erp: {type: webhook, url: 'https://hooks.example.test/erp'}
    chat: {type: slack, webhook_url: '${SLACK}'}
    am: {type: alertmanager, url: 'http://am:9093', resend_interval: 45s}
  route:
    channels: [ops]
    group_by: [rule]
    routes:
      - {match: {severity: critical}, channels: [chat, am], group_wait: 2s, continue: true}
      - {match_re: {service: 'erp|pim'}, channels: [erp], group_by: [rule, service], repeat_interval: 1h}
      - {match: {tenant: acme}, channels: [ops]}
"""


def _router() -> Router:
    return Router(parse_config(CONFIG, Path("x")).notifications)


def test_the_first_matching_route_wins_and_continue_looks_further() -> None:
    """critical+erp: the critical route (continue) and the erp route; acme alone: its route; others: the root."""
    router = _router()
    both = router.destinations({"rule": "r", "severity": "critical", "service": "erp"})
    assert [(d.route, d.channel) for d in both] == [("routes[0]", "chat"), ("routes[0]", "am"), ("routes[1]", "erp")]
    assert [(d.route, d.channel) for d in router.destinations({"severity": "error", "tenant": "acme"})] == [
        ("routes[2]", "ops")
    ]
    assert [(d.route, d.channel) for d in router.destinations({"severity": "error", "service": "erpx"})] == [
        ("root", "ops")
    ]


def test_child_routes_inherit_timing_and_alertmanager_gets_alerts_at_once() -> None:
    """A child route keeps the root's values it does not set; the Alertmanager channel has no wait and
    re-sends every resend_interval, acknowledged alerts included."""
    chat, am, erp = _router().destinations({"rule": "r", "severity": "critical", "service": "pim"})
    assert (chat.timing.group_wait, chat.timing.group_interval, chat.timing.repeat_interval) == (2, 300, 14400)
    assert (am.timing.group_wait, am.timing.repeat_interval, am.timing.keepalive) == (0, 45, True)
    assert (erp.timing.group_by, erp.timing.group_wait, erp.timing.repeat_interval) == (("rule", "service"), 10, 3600)


def _message(*alerts: MessageAlert) -> Message:
    return Message("g1/1", "ops", "root:ops:{}", {"rule": "job_failed"}, list(alerts), "https://mon.example.test")


def _alert(alert_id: str, status: str = "firing", **extra: str) -> MessageAlert:
    return MessageAlert(alert_id, f"fp-{alert_id}", status, extra.pop("state", status), "critical",
                        f"Job {alert_id} failed", "exit 1 <script>", {"rule": "job_failed", **extra}, {},
                        "2026-12-03T10:00:00Z", "2026-12-03T10:05:00Z" if status == "resolved" else None)  # fmt: skip


def test_an_email_lists_firing_then_resolved_with_pointers_and_escapes_html() -> None:
    message = _message(_alert("a1"), _alert("a2", state="acknowledged"), _alert("a3", "resolved"))
    assert render.subject(message) == "[B2X FIRING:2] job_failed — 3 alerts"
    text = render.email_text(message)
    assert text.index("Firing (2)") < text.index("Resolved (1)")
    assert "https://mon.example.test/#/alerts/a1" in text and "ACKNOWLEDGED by ?" in text
    html = render.email_html(message)
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_a_resolved_only_message_says_resolved() -> None:
    message = _message(_alert("a3", "resolved"))
    assert render.subject(message) == "[B2X RESOLVED:1] Job a3 failed"
    assert render.webhook_payload(message, "ops")["status"] == "resolved"


def test_the_webhook_truncates_to_max_alerts_like_alertmanager() -> None:
    payload = render.webhook_payload(_message(*(_alert(f"a{i}") for i in range(5))), "ops", max_alerts=2)
    assert len(payload["alerts"]) == 2 and payload["truncatedAlerts"] == 3


def test_alertmanager_alerts_carry_alertname_and_end_only_when_resolved() -> None:
    firing, resolved = render.alertmanager_alerts(_message(_alert("a1"), _alert("a2", "resolved")))
    assert firing["labels"]["alertname"] == "job_failed" and "endsAt" not in firing
    assert resolved["endsAt"] == "2026-12-03T10:05:00Z" and firing["generatorURL"].endswith("/#/alerts/a1")


def test_slack_shows_at_most_twenty_alerts_then_counts_the_rest() -> None:
    blocks = render.slack_payload(_message(*(_alert(f"a{i}") for i in range(25))))["blocks"]
    assert len(blocks) <= 50 and blocks[-3]["elements"][0]["text"] == "…and 5 more"
