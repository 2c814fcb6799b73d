"""The GraphQL of `b2c monitor alerts` and `b2c monitor thresholds`, and their tables (80 columns)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from b2c import output

if TYPE_CHECKING:
    from rich.table import Table

ALERT_FIELDS = """id rule severity status summary description occurrences episode tenantId service jobType
  episodeStartedAt lastFiredAt changedAt acknowledgedBy acknowledgeComment resolvedAt resolvedBy silencedBy labels"""
ALERTS = f"""query($f: AlertFilter, $first: Int) {{
  alerts(filter: $f, first: $first) {{ totalCount nodes {{ {ALERT_FIELDS} }} }}
}}"""
ACK = f"mutation($id: ID!, $c: String) {{ acknowledgeAlert(id: $id, comment: $c) {{ {ALERT_FIELDS} }} }}"
RESOLVE = f"mutation($id: ID!, $c: String) {{ resolveAlert(id: $id, comment: $c) {{ {ALERT_FIELDS} }} }}"
SILENCE_FIELDS = "id matchers { name op value } startsAt endsAt createdBy comment tenantId active expiredBy"
SILENCE = f"""mutation($m: [String!]!, $d: String!, $c: String!) {{
  createSilence(input: {{matchers: $m, duration: $d, comment: $c}}) {{ {SILENCE_FIELDS} }}
}}"""
SILENCES = f"query($all: Boolean!) {{ silences(includeExpired: $all) {{ {SILENCE_FIELDS} }} }}"
EXPIRE = f"mutation($id: ID!) {{ expireSilence(id: $id) {{ {SILENCE_FIELDS} }} }}"
THRESHOLD_FIELDS = "cpuPercent cpuSustainedSeconds memoryPercent memoryCriticalPercent poolPercent queueDepth"
THRESHOLDS = f"query {{ services {{ slug id thresholds {{ {THRESHOLD_FIELDS} }} }} }}"
UPDATE_THRESHOLDS = f"""mutation($s: String!, $t: ThresholdsInput!) {{
  updateThresholds(service: $s, thresholds: $t) {{ service thresholds {{ {THRESHOLD_FIELDS} }} }}
}}"""

SEVERITY_STYLE = {"CRITICAL": "bold red", "ERROR": "red", "WARNING": "yellow", "INFO": "cyan"}
STATE = {
    "FIRING": ("●", "firing", "red"),
    "ACKNOWLEDGED": ("◐", "acked", "yellow"),
    "RESOLVED": ("○", "resolved", "green"),
}


def short(alert_id: str) -> str:
    return alert_id[:8]


# Borders, padding and every column but the summary take 55 characters.
FIXED_WIDTH = 55


def alerts_table(rows: list[dict[str, Any]], title: str, width: int = 80) -> Table:
    """ID, severity, state, what, count and age; as wide as the terminal, at most 80 columns."""
    from rich.text import Text  # noqa: PLC0415

    table = output.new_table(title)
    table.add_column("ID", no_wrap=True, min_width=8)
    table.add_column("Sev", no_wrap=True, min_width=8)
    table.add_column("State", no_wrap=True, min_width=10)
    table.add_column("Alert", no_wrap=True, overflow="ellipsis", width=max(12, min(width, 80) - FIXED_WIDTH))
    table.add_column("#", justify="right", no_wrap=True, min_width=4)
    table.add_column("Since", no_wrap=True, min_width=8)
    for alert in rows:
        icon, label, style = STATE.get(alert["status"] or "", ("?", str(alert["status"]).lower(), "white"))
        severity = alert["severity"] or "?"
        state = Text(f"{icon} {label}", style=style)
        if alert["silencedBy"]:
            state.append(" s", style="dim")  # silenced: nobody is notified
        table.add_row(
            short(alert["id"]),
            Text(severity.lower(), style=SEVERITY_STYLE.get(severity, "")),
            state,
            alert["summary"],
            str(alert["occurrences"]),
            output.ago(alert["episodeStartedAt"]).replace(" ago", "").replace(" min", "m"),
        )
    return table


def alert_line(alert: dict[str, Any]) -> str:
    state = (alert["status"] or "").lower()
    who = alert.get("acknowledgedBy") if state == "acknowledged" else alert.get("resolvedBy")
    return f"alert {short(alert['id'])} is {state}{' by ' + who if who else ''}: {alert['summary']}"


def silences_table(rows: list[dict[str, Any]]) -> Table:
    table = output.new_table("Silences")
    table.add_column("ID", no_wrap=True, width=8)
    table.add_column("Matchers", overflow="fold", max_width=28)
    table.add_column("Until", no_wrap=True, width=16)
    table.add_column("By", overflow="ellipsis", no_wrap=True, max_width=12)
    table.add_column("Comment", overflow="ellipsis", no_wrap=True, max_width=14)
    for s in rows:
        matchers = ", ".join(f"{m['name']}{m['op']}{m['value']}" for m in s["matchers"])
        until = output.clock(s["endsAt"]) if s["active"] else "expired"
        table.add_row(short(s["id"]), matchers, until, s["createdBy"].split(" (")[0], s["comment"])
    return table


THRESHOLD_LABELS = (
    ("cpuPercent", "CPU high", "%"),
    ("cpuSustainedSeconds", "CPU sustained for", " s"),
    ("memoryPercent", "Memory high", "%"),
    ("memoryCriticalPercent", "Memory critical", "%"),
    ("poolPercent", "Connection pool", "%"),
    ("queueDepth", "Queue backlog", " items"),
)


def thresholds_table(service: str, thresholds: dict[str, Any]) -> Table:
    table = output.new_table(f"Resource thresholds of {service} (0 = off)")
    table.add_column("Alert")
    table.add_column("Threshold", justify="right")
    for key, label, unit in THRESHOLD_LABELS:
        value = thresholds[key]
        table.add_row(label, "off" if not value else f"{value:g}{unit}")
    return table
