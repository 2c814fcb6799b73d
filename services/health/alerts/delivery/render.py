"""What a message looks like on each channel: e-mail text and HTML, Slack Block Kit, Alertmanager's JSON."""

from __future__ import annotations

import html
from typing import Any

from services.health.alerts.delivery.domain import ZERO_TIME, Message, MessageAlert

CLI_HINT = "b2c monitor alerts"
_SLACK_MAX_ALERTS = 20  # Slack allows 50 blocks per message; the rest is counted
_SLACK_TEXT_LIMIT = 2900  # a section's text may hold 3000 characters


def subject(message: Message) -> str:
    """Alertmanager's `[FIRING:N] group labels` with the names people read first."""
    if message.test:
        return "[B2X] Test notification"
    firing, resolved = len(message.firing), len(message.resolved)
    state = f"FIRING:{firing}" if firing else f"RESOLVED:{resolved}"
    first = message.alerts[0] if message.alerts else None
    title = first.summary if first is not None and len(message.alerts) == 1 else _group_title(message)
    again = " (reminder)" if message.repeat else ""
    return f"[B2X {state}] {title}{again}"


def _group_title(message: Message) -> str:
    values = [v for v in message.group_labels.values() if v]
    count = len(message.alerts)
    return f"{' '.join(values) or 'alerts'} — {count} alert{'s' if count != 1 else ''}"


def _state_words(alert: MessageAlert) -> str:
    if alert.state == "acknowledged":
        return f"ACKNOWLEDGED by {alert.acknowledged_by or '?'}"
    return alert.state.upper()


def _pointer(message: Message, alert: MessageAlert) -> str:
    link = message.link(alert)
    cli = f"{CLI_HINT} | grep {alert.alert_id[:8]}" if alert.alert_id else CLI_HINT
    return f"{link}  ·  {cli}" if link else cli


def email_text(message: Message) -> str:
    if message.test:
        return f"This is a test notification from B2X Monitoring over the channel {message.channel!r}.\n"
    lines = [subject(message), ""]
    for heading, alerts in (("Firing", message.firing), ("Resolved", message.resolved)):
        if not alerts:
            continue
        lines += [f"{heading} ({len(alerts)}):", ""]
        for alert in alerts:
            lines.append(f"* [{alert.severity.upper()}] {alert.summary} — {_state_words(alert)}")
            if alert.description:
                lines.append(f"  {alert.description}")
            labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
            lines.append(f"  labels: {labels}")
            since = f"since {alert.started_at}" + (f", resolved {alert.ended_at}" if alert.ended_at else "")
            count = f", {alert.occurrences} occurrences" if alert.occurrences > 1 else ""
            lines.append(f"  {since}{count}")
            lines.append(f"  see: {_pointer(message, alert)}")
            lines.append("")
    lines.append(f"List active alerts: {CLI_HINT}   Acknowledge: b2c monitor alerts ack <id>")
    return "\n".join(lines) + "\n"


def email_html(message: Message) -> str:
    esc = html.escape
    if message.test:
        return f"<p>This is a test notification from B2X Monitoring over the channel <b>{esc(message.channel)}</b>.</p>"
    colour = {"critical": "#b00020", "error": "#d9480f", "warning": "#e6a700", "info": "#1864ab"}
    parts = [f"<h2>{esc(subject(message))}</h2>"]
    for heading, alerts in (("Firing", message.firing), ("Resolved", message.resolved)):
        if not alerts:
            continue
        parts.append(f"<h3>{heading} ({len(alerts)})</h3><table cellpadding='4' style='border-collapse:collapse'>")
        parts.append("<tr><th align='left'>Severity</th><th align='left'>Alert</th><th align='left'>Labels</th>"
                     "<th align='left'>Since</th><th align='left'>Where</th></tr>")  # fmt: skip
        for alert in alerts:
            link = message.link(alert)
            where = f"<a href='{esc(link)}'>dashboard</a><br>" if link else ""
            labels = "<br>".join(f"{esc(k)}={esc(v)}" for k, v in sorted(alert.labels.items()))
            parts.append(
                f"<tr><td style='color:{colour.get(alert.severity, '#333')}'><b>{esc(alert.severity.upper())}</b>"
                f"<br>{esc(_state_words(alert))}</td>"
                f"<td><b>{esc(alert.summary)}</b><br>{esc(alert.description)}</td><td>{labels}</td>"
                f"<td>{esc(alert.started_at)}{'<br>resolved ' + esc(alert.ended_at) if alert.ended_at else ''}</td>"
                f"<td>{where}<code>{esc(CLI_HINT)}</code></td></tr>"
            )
        parts.append("</table>")
    parts.append(f"<p>List active alerts: <code>{CLI_HINT}</code> · acknowledge: "
                 "<code>b2c monitor alerts ack &lt;id&gt;</code></p>")  # fmt: skip
    return "<html><body>" + "".join(parts) + "</body></html>"


def slack_payload(message: Message) -> dict[str, Any]:
    """An incoming-webhook body with Block Kit blocks and a plain `text` fallback for notifications."""
    title = subject(message)
    if message.test:
        text = f"Test notification from B2X Monitoring over the channel `{message.channel}`."
        return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    icon = {"critical": ":red_circle:", "error": ":large_orange_circle:", "warning": ":large_yellow_circle:"}
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}}]
    for alert in message.alerts[:_SLACK_MAX_ALERTS]:
        mark = ":white_check_mark:" if alert.status == "resolved" else icon.get(alert.severity, ":large_blue_circle:")
        link = message.link(alert)
        name = f"<{link}|{alert.summary}>" if link else alert.summary
        text = f"{mark} *{alert.severity.upper()}* {name} — {_state_words(alert)}"
        if alert.description:
            text += f"\n{alert.description}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:_SLACK_TEXT_LIMIT]}})
        labels = " · ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": labels[:_SLACK_TEXT_LIMIT] or "-"}]})
    if len(message.alerts) > _SLACK_MAX_ALERTS:
        more = len(message.alerts) - _SLACK_MAX_ALERTS
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {more} more"}]})
    blocks.append({"type": "divider"})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"`{CLI_HINT}` to list, "
                                                    "`b2c monitor alerts ack <id>` to acknowledge"}]})  # fmt: skip
    return {"text": title, "blocks": blocks}


def _am_labels(alert: MessageAlert) -> dict[str, str]:
    # Alertmanager identifies an alert by its labels; `alertname` is the one every receiver expects.
    return {"alertname": alert.labels.get("rule", "b2x"), **alert.labels, "severity": alert.severity}


def _am_annotations(message: Message, alert: MessageAlert) -> dict[str, str]:
    notes = {"summary": alert.summary, **alert.annotations}
    if alert.description:
        notes["description"] = alert.description
    if link := message.link(alert):
        notes["dashboard_url"] = link
    notes["alert_id"] = alert.alert_id
    if alert.state == "acknowledged" and alert.acknowledged_by:
        notes["acknowledged_by"] = alert.acknowledged_by
    return notes


def webhook_payload(message: Message, receiver: str, max_alerts: int = 0) -> dict[str, Any]:
    """Alertmanager's webhook body, version 4, field for field."""
    alerts = list(message.alerts)
    shown = alerts[:max_alerts] if max_alerts else alerts
    return {
        "version": "4",
        "groupKey": message.group_key,
        "truncatedAlerts": len(alerts) - len(shown),
        "status": message.status,
        "receiver": receiver,
        "groupLabels": dict(message.group_labels),
        "commonLabels": _common_am_labels(alerts),
        "commonAnnotations": message.common_annotations,
        "externalURL": message.dashboard_url,
        "alerts": [
            {
                "status": alert.status,
                "labels": _am_labels(alert),
                "annotations": _am_annotations(message, alert),
                "startsAt": alert.started_at,
                "endsAt": alert.ended_at or ZERO_TIME,
                "generatorURL": message.link(alert),
                "fingerprint": alert.fingerprint,
            }
            for alert in shown
        ],
    }


def _common_am_labels(alerts: list[MessageAlert]) -> dict[str, str]:
    if not alerts:
        return {}
    common = _am_labels(alerts[0])
    for alert in alerts[1:]:
        labels = _am_labels(alert)
        common = {k: v for k, v in common.items() if labels.get(k) == v}
    return common


def alertmanager_alerts(message: Message) -> list[dict[str, Any]]:
    """The body of Alertmanager's `POST /api/v2/alerts` (postableAlerts)."""
    posted = []
    for alert in message.alerts:
        item: dict[str, Any] = {
            "labels": _am_labels(alert),
            "annotations": _am_annotations(message, alert),
            "startsAt": alert.started_at,
        }
        if link := message.link(alert):
            item["generatorURL"] = link
        if alert.ended_at:
            item["endsAt"] = alert.ended_at
        posted.append(item)
    return posted
