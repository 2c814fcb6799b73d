"""How services, connection tests and communication errors look in a terminal."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from b2c import output

PHASE_LABEL = {
    "dns": "DNS Resolution",
    "tcp_connect": "TCP Connection",
    "tls_handshake": "TLS Handshake",
    "time_to_first_byte": "Time to First Byte",
    "content_download": "Content Download",
    "protocol_check": "Protocol Check",
}
RATING = {"FAST": "⚡ Fast", "NORMAL": "Normal", "SLOW": "🐢 Slow"}


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def throughput(kbps: float) -> str:
    """kilobits per second as people read it: 2.4 MB/s, 310 KB/s."""
    per_second = kbps * 1000 / 8
    if per_second >= 1024 * 1024:
        return f"{per_second / 1024 / 1024:.1f} MB/s"
    if per_second >= 1024:
        return f"{per_second / 1024:.0f} KB/s"
    return f"{per_second:.0f} B/s"


def percent_bar(value: float | None, warn: float = 80, width: int = 4) -> Text:
    if value is None:
        return Text("—")
    filled = max(0, min(width, round(value / 100 * width)))
    style = "red" if value >= 90 else "yellow" if value >= warn else "green"
    return Text("█" * filled + "░" * (width - filled) + f" {value:>3.0f}%", style=style)


def services_table(services: list[dict[str, Any]], *, with_resources: bool = False) -> Table:
    """Fits 80 columns: the name wraps, the figures never do; --resources adds CPU, memory, pool and queue
    (Type and Last OK make room for them)."""
    table = output.new_table("Connected services")
    table.add_column("Service", overflow="fold", ratio=1, min_width=12)
    columns = ["Status", "Latency", "Uptime", "CPU", "Mem", "Pool", "Queue"] if with_resources else [
        "Type", "Status", "Latency", "Uptime", "Last OK"]  # fmt: skip
    for column in columns:
        table.add_column(column, no_wrap=True, justify="right" if column not in ("Type", "Status") else "left")
    for s in services:
        res = s.get("resources") or {}
        checked = bool(s["lastChecked"])
        figures = {
            "Type": s["type"] or "—",
            "Status": output.status_text(s["status"] or "UNKNOWN"),
            "Latency": ms(s["averageLatencyMs"]) if checked and s["averageLatencyMs"] is not None else "—",
            "Uptime": f"{s['uptimePercent']:.1f}%" if checked and s["uptimePercent"] is not None else "—",
            "Last OK": output.ago(s["lastSuccessful"]),
            "CPU": _percent(res.get("cpuPercent")),
            "Mem": _percent(res.get("memoryPercent")),
            "Pool": f"{res['connectionPoolActive']}/{res['connectionPoolTotal']}" if res.get("connectionPoolTotal")
            else "—",
            "Queue": str(res["queueDepth"]) if res.get("queueDepth") is not None else "—",
        }  # fmt: skip
        table.add_row(f"{s['name']} ({s['slug']})", *(figures[c] for c in columns))
    return table


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def status_reasons(services: list[dict[str, Any]]) -> list[Text]:
    """Why each service that is not online is in its state (the cause beside an open circuit breaker)."""
    lines: list[Text] = []
    for s in services:
        if s["status"] != "ONLINE" and s.get("statusReason"):
            style = {"OFFLINE": "red", "DEGRADED": "yellow"}.get(s["status"] or "", "grey62")
            lines.append(Text.assemble((f"{s['slug']}: ", "bold"), (s["statusReason"], style)))
    return lines


def test_report(result: dict[str, Any], verbose: bool) -> Group:
    """The seed's `b2c monitor test erp --verbose` layout."""
    lines: list[Any] = []
    metrics = result.get("metrics") or {}
    if verbose:
        last_attempt = max((p["attempt"] for p in result["phases"]), default=1)
        for phase in result["phases"]:
            if phase["attempt"] != last_attempt:
                continue
            mark, style = {"PASSED": ("✓", "green"), "FAILED": ("✗", "red")}.get(phase["status"] or "", ("-", "grey62"))
            label = PHASE_LABEL.get(phase["name"], phase["name"])
            text = Text(f"  {mark} ", style=style)
            text.append(f"{label:<22}{ms(phase['durationMs']) if phase['status'] != 'SKIPPED' else 'skipped':>10}")
            if phase["detail"] and phase["status"] == "FAILED":
                text.append(f"   {phase['detail']}", style="red")
            lines.append(text)
        lines.append(Text("  " + "─" * 34))
    total_mark = Text("  ✓ ", style="green") if result["success"] else Text("  ✗ ", style="red")
    total = Text.assemble(total_mark, f"{'Total':<22}{ms(metrics.get('totalLatencyMs')):>10}")
    if result.get("speedRating"):
        total.append(f"   {RATING.get(result['speedRating'], result['speedRating'])}")
    lines.append(total)
    lines.append(Text(""))
    if metrics.get("throughputKbps"):
        lines.append(Text(f"  Throughput: {throughput(metrics['throughputKbps'])}"))
    status = "PASSED" if result["success"] and not result["degraded"] else "DEGRADED" if result["success"] else "FAILED"
    lines.append(
        Text(
            f"  Status: {status}", style="green" if status == "PASSED" else "yellow" if status == "DEGRADED" else "red"
        )
    )
    if not result["success"]:
        lines.append(
            Text(f"  Error:  {result['errorType']} — {result['errorMessage'] or result['summary']}", style="red")
        )
    for advice in result["recommendations"]:
        lines.append(Text(f"  → {advice}", style="yellow"))
    return Group(*lines)


def tests_table(results: list[dict[str, Any]]) -> Table:
    table = output.new_table("Connection tests")
    for column in ("Service", "Status", "Total", "Rating", "Summary"):
        table.add_column(column, no_wrap=False)
    for r in results:
        status = "PASSED" if r["success"] and not r["degraded"] else "DEGRADED" if r["success"] else "FAILED"
        style = {"PASSED": "green", "DEGRADED": "yellow", "FAILED": "red"}[status]
        table.add_row(
            r["serviceSlug"], Text(status, style=style), ms((r.get("metrics") or {}).get("totalLatencyMs")),
            RATING.get(r.get("speedRating") or "", "—"), r["summary"],
        )  # fmt: skip
    return table


def errors_table(errors: list[dict[str, Any]], slugs: dict[str, str], title: str) -> Table:
    table = output.new_table(title)
    for column in ("ID", "Time", "Service", "Type", "Severity", "Error"):
        table.add_column(column, no_wrap=column != "Error")
    for e in errors:
        severity = e["severity"] or "—"
        table.add_row(
            e["id"][:8], output.clock(e["timestamp"]), slugs.get(e["serviceId"], e["serviceId"][:8]),
            e["errorType"] or "—", Text(severity.title(), style="red" if severity == "CRITICAL" else "yellow"),
            e["message"],
        )  # fmt: skip
    return table


def error_detail(e: dict[str, Any]) -> Group:
    d = e.get("details") or {}
    t = d.get("timing") or {}
    parts: list[Any] = [
        Text.from_markup(f"[bold]Communication error {e['id']}[/bold]"),
        Text(f"Type {e['errorType']} ({e['errorGroup']})   Severity {e['severity']}   Time {e['timestamp']}"),
        Text(f"Correlation {d.get('correlationId') or '—'}   Trace {d.get('traceId') or '—'}"),
        Text(e["message"], style="red"),
    ]
    if e.get("correlatedJobId"):
        # A job's failed call (docs/adr/0022): where to look next.
        parts.insert(3, Text(f"Job {e['correlatedJobId']}   (b2c jobs show {e['correlatedJobId']})"))
    if d:
        parts.append(Text(f"\nREQUEST  {d['httpMethod']} {d['endpointUrl']}", style="bold"))
        parts.append(Text(json.dumps(d.get("requestHeaders") or {}, indent=2)))
        if d.get("requestPayloadSummary"):
            parts.append(Text(f"Body: {d['requestPayloadSummary']}"))
        parts.append(Text(f"RESPONSE {d.get('httpStatusCode') or '— (no response)'}", style="bold"))
        parts.append(Text(json.dumps(d.get("responseHeaders") or {}, indent=2)))
        if d.get("responseBodySummary"):
            parts.append(Text(f"Body: {d['responseBodySummary']}"))
        parts.append(Text("TIMING", style="bold"))
        for label, key in (("DNS", "dnsLookupMs"), ("TCP", "tcpConnectionMs"), ("TLS", "tlsHandshakeMs"),
                           ("Wait", "timeToFirstByteMs"), ("Download", "contentDownloadMs")):  # fmt: skip
            parts.append(Text(f"  {label:<9}{ms(t.get(key)):>10}"))
        parts.append(Text(f"  {'Total':<9}{ms(t.get('totalTimeMs')):>10}"))
        if d.get("retryHistory"):
            parts.append(Text("RETRY HISTORY", style="bold"))
            for r in d["retryHistory"]:
                wait = f" → wait {r['delayBeforeRetryMs'] / 1000:.1f} s" if r["delayBeforeRetryMs"] else ""
                parts.append(Text(f"  #{r['attemptNumber']} {output.clock(r['attemptedAt'])} {r['errorMessage']} "
                                  f"({ms(r['durationMs'])}){wait}"))  # fmt: skip
    for advice in e.get("recommendations") or []:
        parts.append(Text(f"→ {advice}", style="yellow"))
    return Group(*parts)


def size(value: float | None) -> str:
    if not value:
        return "—"
    for unit, factor in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if value >= factor:
            return f"{value / factor:.1f} {unit}"
    return f"{value:.0f} B"


def resources_table(rows: list[dict[str, Any]]) -> Table:
    """CPU, memory, pool, queue and alerts are never cut; in 80 columns the bars, threads and the used/total
    memory make room, and the 1 h average and 24 h peak share a column."""
    narrow = output.is_narrow()
    table = output.new_table("Resources")
    table.add_column("Service", overflow="fold", ratio=1, min_width=8)
    figures = ["CPU", "Avg/Peak", "Mem", "Pool", "Queue"] if narrow else [
        "CPU", "Avg 1h", "Peak 24h", "Memory", "Used / total", "Pool", "Threads", "Queue"]  # fmt: skip
    for column in figures:
        table.add_column(column, no_wrap=True, justify="right")
    table.add_column("Alerts", overflow="fold", ratio=1, min_width=6)
    for r in rows:
        m = r.get("metrics") or {}
        th = r.get("thresholds") or {}
        pool = f"{m.get('connectionPoolActive', 0)}/{m['connectionPoolTotal']}" if m.get("connectionPoolTotal") else "—"
        alerts = Text(", ".join(a["alertType"] for a in r["activeAlerts"]) or ("stale" if r["stale"] else "—"),
                      style="red" if r["activeAlerts"] else "grey62")  # fmt: skip
        cpu_limit, memory_limit = th.get("cpuPercent") or 80, th.get("memoryPercent") or 90
        memory = m.get("memoryPercent") if m.get("memoryTotalBytes") else None
        values: dict[str, Text | str] = {
            "CPU": _level(m.get("cpuPercent"), cpu_limit) if narrow else percent_bar(m.get("cpuPercent"), cpu_limit),
            "Avg/Peak": f"{m['cpuAverage']:.0f}/{m['cpuPeak']:.0f}%" if m else "—",
            "Avg 1h": f"{m['cpuAverage']:.0f}%" if m else "—",
            "Peak 24h": f"{m['cpuPeak']:.0f}%" if m else "—",
            "Mem": _level(memory, memory_limit),
            "Memory": percent_bar(memory, memory_limit) if memory is not None else Text("—"),
            "Used / total": f"{size(m.get('memoryUsedBytes'))} / {size(m.get('memoryTotalBytes'))}" if m else "—",
            "Pool": pool,
            "Threads": str(m.get("threadCount") or "—"),
            "Queue": f"{m['queueDepth']:,}".replace(",", " ") if m.get("queueDepth") is not None else "—",
        }
        table.add_row(r["serviceSlug"], *(values[c] for c in figures), alerts)
    return table


def _level(value: float | None, warn: float) -> Text:
    """A percentage coloured like percent_bar, without the bar."""
    if value is None:
        return Text("—")
    return Text(f"{value:.0f}%", style="red" if value >= 90 else "yellow" if value >= warn else "green")


OVERALL = {"ONLINE": ("✓ HEALTHY", "green"), "DEGRADED": ("⚠ DEGRADED", "yellow"), "OFFLINE": ("✗ UNHEALTHY", "red"),
           "UNKNOWN": ("? UNKNOWN", "grey62")}  # fmt: skip


def health_view(summary: dict[str, Any], detailed: bool, only: str | None = None) -> Group:
    """The seed's `b2c monitor health` box: components, then jobs and alerts. Fits 80 columns: the name
    wraps, the figures never do, and with --detailed each component's reason follows the table."""
    from rich import box  # noqa: PLC0415

    label, style = OVERALL.get(summary["overallStatus"] or "UNKNOWN", OVERALL["UNKNOWN"])
    table = Table(title=Text.assemble("B2X System Health   ", (label, f"bold {style}")), title_justify="left",
                  box=box.DOUBLE, header_style="bold")  # fmt: skip
    table.add_column("Component", overflow="fold", ratio=1, min_width=10)
    columns = ["Status", "Latency", "Uptime", "CPU", "Mem"] + (["Last OK"] if detailed else [])
    for column in columns:
        table.add_column(column, no_wrap=True, justify="left" if column == "Status" else "right")
    reasons: list[Text] = []
    for c in summary["components"]:
        if only and only not in (c["slug"], c["name"], c["serviceId"]):
            continue
        row: list[Any] = [
            c["name"],
            output.status_text(c["status"] or "UNKNOWN") if c["enabled"] else Text("disabled", style="grey62"),
            ms(c["averageLatencyMs"]),
            f"{c['uptimePercent']:.1f}%" if c["uptimePercent"] is not None else "—",
            f"{c['cpuPercent']:.0f}%" if c["cpuPercent"] is not None else "—",
            f"{c['memoryPercent']:.0f}%" if c["memoryPercent"] is not None else "—",
        ]
        if detailed:
            row.append(output.ago(c["lastSuccessful"]))
            if c["statusReason"]:
                reasons.append(Text.assemble((f"{c['name']}: ", "bold"), c["statusReason"]))
        table.add_row(*row)

    def figure(value: int | None) -> str:
        return "?" if value is None else str(value)

    footer = Text(
        f"Active Jobs: {figure(summary['activeJobs'])}     Failed (24h): {figure(summary['failedJobs24h'])}     "
        f"Alerts: {figure(summary['activeAlerts'])} active"
    )
    return Group(table, *reasons, footer, Text(summary["overallReason"], style=style))


def history_table(history: dict[str, Any]) -> Table:
    title = f"Availability — {history['serviceSlug'] or 'all services'} (per {(history['bucket'] or 'hour').lower()})"
    table = output.new_table(title)
    for column in ("From", "Checks", "Failures", "Availability", "Avg latency"):
        table.add_column(column, no_wrap=True)
    for p in history["points"]:
        if not p["checks"]:
            continue
        table.add_row(output.clock(p["bucketStart"]), str(p["checks"]), str(p["failures"]),
                      f"{p['availabilityPercent']:.2f}%", ms(p["averageLatencyMs"]))  # fmt: skip
    total = history["total"] or {}
    if total.get("checks"):
        table.add_row("Total", str(total["checks"]), str(total["failures"]), f"{total['availabilityPercent']:.2f}%",
                      ms(total["averageLatencyMs"]), style="bold")  # fmt: skip
    return table
