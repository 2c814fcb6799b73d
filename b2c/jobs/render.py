"""How jobs, their details and their log lines look in a terminal."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from b2c import output

LEVEL_STYLE = {"TRACE": "grey50", "DEBUG": "grey62", "INFO": "white", "WARNING": "yellow", "ERROR": "red",
               "CRITICAL": "bold red"}  # fmt: skip


def jobs_table(jobs: list[dict[str, Any]], title: str = "Jobs") -> Table:
    """ID, status, progress and ETA are never cut; type and tenant wrap; in 80 columns the bar and the
    start time make room."""
    narrow = output.is_narrow()
    table = output.new_table(title)
    table.add_column("ID", no_wrap=True, min_width=8)
    table.add_column("Type", overflow="fold", ratio=2, min_width=8)
    table.add_column("Tenant", overflow="fold", ratio=1, min_width=6)
    table.add_column("Status", no_wrap=True, min_width=11)
    table.add_column("Progress", no_wrap=True, justify="right", min_width=4 if narrow else 10)
    if not narrow:
        table.add_column("Started", no_wrap=True)
    table.add_column("ETA", no_wrap=True, min_width=7)
    for job in jobs:
        percent = job["progress"]["percent"]
        row: list[Any] = [
            job["id"][:8],
            job["jobType"],
            job["tenantId"],
            output.status_text(job["status"]),
            Text(f"{percent:.0f}%") if narrow else output.progress_bar(percent),
        ]
        if not narrow:
            row.append(output.clock(job["startedAt"]))
        row.append(output.eta(job["progress"]["etaSeconds"], job["status"]))
        table.add_row(*row)
    return table


def summary_line(jobs: list[dict[str, Any]], total: int, statuses: list[str]) -> str:
    running = sum(1 for j in jobs if j["status"] == "RUNNING")
    if statuses == ["RUNNING"]:
        return f"{total} jobs running. Use 'b2c jobs show <id>' for details."
    shown = f"{len(jobs)} of {total} jobs" if total > len(jobs) else f"{total} jobs"
    extra = f", {running} running" if running else ""
    return f"{shown} shown{extra}. Use 'b2c jobs show <id>' for details."


def log_line(line: dict[str, Any]) -> Text:
    stamp = output.parse_time(line["timestamp"])
    clock = stamp.astimezone().strftime("%H:%M:%S.%f")[:-3] if stamp else "—"
    text = Text(f"{clock} ", style="grey62")
    text.append(f"{line['level']:<8}", style=LEVEL_STYLE.get(line["level"], "white"))
    text.append(line["message"])
    if line.get("context"):
        text.append("  " + json.dumps(line["context"], separators=(",", ":")), style="grey50")
    return text


def job_detail(details: dict[str, Any], logs: dict[str, Any]) -> Group:
    job = details["job"]
    p = job["progress"]
    parts: list[Any] = [
        Text.from_markup(f"[bold]Job {job['id']}[/bold]  {job['jobType']}  tenant {job['tenantId']}"),
        Text.assemble(output.status_text(job["status"]), f"  attempt {job['attempt']}/{job['maxAttempts']}"),
        Text.assemble("Progress  ", output.progress_bar(p["percent"], 20)),
        Text(
            f"Items     {p['processedItems']}/{p['totalItems'] or '?'} processed, {p['succeededItems']} succeeded, "
            f"{p['failedItems']} failed" + (f", {p['itemsPerSecond']:.1f}/s" if p["itemsPerSecond"] else "")
        ),
    ]
    if p["message"]:
        parts.append(Text(f"Message   {p['message']}"))
    parts.append(
        Text(
            f"Created   {output.clock(job['createdAt'])}   Started {output.clock(job['startedAt'])}   "
            f"Finished {output.clock(job['completedAt'])}   Duration {output.duration(job['durationMs'])}   "
            f"ETA {output.eta(p['etaSeconds'], job['status'])}"
        )
    )
    if job["status"] == "QUEUED" and job.get("availableAt"):
        parts.append(Text(f"Waits     until {output.clock(job['availableAt'])} (retry backoff)"))
    if job.get("workerId"):
        parts.append(Text(f"Worker    {job['workerId']}  (last heartbeat {output.ago(job.get('lastHeartbeatAt'))})"))
    if job.get("cancelRequested"):
        parts.append(Text(f"Cancel    requested: {job.get('cancelReason') or ''}", style="yellow"))
    if job["errorMessage"]:
        cls = (job["errorClass"] or "").lower()
        tag = f"  [{job['errorCategory']}, {cls}]" if job["errorCategory"] else (f"  [{cls}]" if cls else "")
        parts.append(Text(f"Error     {job['errorMessage']}{tag}", style="red"))
        if job.get("errorStackTrace"):
            parts.append(Text(job["errorStackTrace"].replace("\\n", "\n"), style="grey62"))
    if job["steps"]:
        parts.append(steps_table(job["steps"]))
    if len(details["attempts"]) > 1:
        parts.append(attempts_table(details["attempts"], job["id"]))
    if logs["lines"]:
        parts.append(Text(f"Last {len(logs['lines'])} of {logs['lastSequence']} log lines "
                          f"(b2c jobs logs {job['id'][:8]} for all):", style="bold"))  # fmt: skip
        parts.extend(log_line(line) for line in logs["lines"])
    return Group(*parts)


def steps_table(steps: list[dict[str, Any]]) -> Table:
    table = output.new_table("Steps")
    for column in ("#", "Step", "Status", "Started", "Finished", "Note"):
        table.add_column(column)
    for s in steps:
        table.add_row(str(s["index"] + 1), s["name"], s["status"].title(), output.clock(s["startedAt"]),
                      output.clock(s["completedAt"]), s["message"])  # fmt: skip
    return table


def attempts_table(attempts: list[dict[str, Any]], current: str) -> Table:
    table = output.new_table("Attempts")
    for column in ("#", "ID", "Status", "Created", "Error"):
        table.add_column(column)
    for a in attempts:
        marker = " ◂" if a["id"] == current else ""
        table.add_row(str(a["attempt"]) + marker, a["id"][:8], output.status_text(a["status"]),
                      output.clock(a["createdAt"]), (a["errorMessage"] or "")[:60])  # fmt: skip
    return table
