"""Live views: `b2c jobs list --watch` and `b2c jobs logs --follow`, over graphql-transport-ws."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.console import Group
from rich.text import Text

from b2c import output
from b2c.client import run_query
from b2c.config import CliConfig
from b2c.errors import Exit
from b2c.jobs.api import JOB_FIELDS, LIST, LOGS, matches
from b2c.jobs.render import jobs_table, log_line
from b2c.ws import LiveConnection

STATUS_SUB = f"subscription {{ jobStatusChanged {{ change job {{ {JOB_FIELDS} }} }} }}"
ONE_STATUS_SUB = "subscription($id: ID!) { jobStatusChanged(jobId: $id) { status change } }"
LOG_SUB = """subscription($id: ID!, $after: Int!) {
  jobLogAppended(jobId: $id, afterSequence: $after) { lines { sequence level message timestamp stackTrace context } }
}"""
TERMINAL = {"COMPLETED": Exit.OK, "FAILED": Exit.ERROR, "CANCELLED": Exit.WARNING}


def _snapshot(config: CliConfig, flt: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = run_query(config, LIST, {"filter": flt or None, "first": limit})["jobs"]["nodes"]
    return nodes


async def watch_jobs(config: CliConfig, flt: dict[str, Any], limit: int, fmt: str) -> int:
    """Redraw the job table as changes arrive (table), or print one JSON object per line (json)."""
    jobs = {j["id"]: j for j in await asyncio.to_thread(_snapshot, config, flt, limit)}
    if fmt == "json":
        for job in jobs.values():
            output.print_json_line({"type": "snapshot", "job": job})
    async with LiveConnection(config) as live:
        await live.subscribe(STATUS_SUB)
        if fmt == "json":
            async for _, data in live.events():
                event = data.get("jobStatusChanged")
                if event and matches(event["job"], flt):
                    output.print_json_line({"type": "change", "change": event["change"], "job": event["job"]})
            return 0

        def view() -> Group:
            ordered = sorted(jobs.values(), key=lambda j: j["createdAt"], reverse=True)[:limit]
            note = Text(f"Live — {time.strftime('%H:%M:%S')} — Ctrl-C to stop", style="grey62")
            return Group(jobs_table(ordered, "Jobs (live)"), note)

        with output.LiveView(every=2.0) as screen:
            screen.update(view())
            async for _, data in live.events():
                event = data.get("jobStatusChanged")
                if event and matches(event["job"], flt):
                    jobs[event["job"]["id"]] = event["job"]
                    screen.update(view())
    return 0


def _read_logs(config: CliConfig, job_id: str, variables: dict[str, Any]) -> dict[str, Any]:
    page: dict[str, Any] = run_query(config, LOGS, {"id": job_id, **variables})["jobLogs"]
    return page


def _emit(lines: list[dict[str, Any]], fmt: str) -> None:
    con = output.console()
    for line in lines:
        if fmt == "json":
            output.print_json_line(line)
        else:
            con.print(log_line(line))
            if line.get("stackTrace"):
                con.print(line["stackTrace"].replace("\\n", "\n"), style="grey62", markup=False)


async def follow_logs(config: CliConfig, job_id: str, tail: int | None, fmt: str) -> int:
    """Print the last lines, then new ones as they arrive; return when the job ends (its exit code)."""
    page = await asyncio.to_thread(_read_logs, config, job_id, {"last": tail, "after": 0})
    _emit(page["lines"], fmt)
    last = page["lastSequence"] if not page["lines"] else page["lines"][-1]["sequence"]
    last = max(last, page["lastSequence"])
    async with LiveConnection(config) as live:
        logs_op = await live.subscribe(LOG_SUB, {"id": job_id, "after": last})
        status_op = await live.subscribe(ONE_STATUS_SUB, {"id": job_id})
        status = await asyncio.to_thread(_job_status, config, job_id)
        if status in TERMINAL:
            return await _drain_and_exit(config, job_id, last, status, fmt)
        async for op, data in live.events():
            if op == logs_op and data.get("jobLogAppended"):
                lines = [ln for ln in data["jobLogAppended"]["lines"] if ln["sequence"] > last]
                _emit(lines, fmt)
                if lines:
                    last = lines[-1]["sequence"]
            elif op == status_op and data.get("jobStatusChanged"):
                status = data["jobStatusChanged"]["status"]
                if status in TERMINAL:
                    return await _drain_and_exit(config, job_id, last, status, fmt)
    return 0


def _job_status(config: CliConfig, job_id: str) -> str:
    from b2c.jobs.api import STATUS  # noqa: PLC0415

    status: str = run_query(config, STATUS, {"id": job_id})["job"]["status"]
    return status


async def _drain_and_exit(config: CliConfig, job_id: str, last: int, status: str, fmt: str) -> int:
    """The job ended: print lines stored after the last one shown, then end with its exit code."""
    page = await asyncio.to_thread(_read_logs, config, job_id, {"after": last})
    _emit(page["lines"], fmt)
    if fmt != "json":
        output.err_console().print(f"job {job_id[:8]} ended: {status}")
    return int(TERMINAL[status])
