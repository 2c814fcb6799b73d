"""`b2c jobs …`: list (and watch), show, logs (and follow), retry, cancel."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from b2c import output
from b2c.commands.common import parse_since, split_list
from b2c.config import CliConfig
from b2c.errors import CliError, Exit

app = typer.Typer(help="Scheduler jobs: list, watch, inspect, read logs, retry, cancel.", no_args_is_help=True)

STATUSES = ("QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FormatOpt = Annotated[str | None, typer.Option("--format", "-f", help="table or json (default: b2c config)")]
IdArg = Annotated[str, typer.Argument(help="the job's id, or its first characters as tables show them")]


def _format(value: str | None, config: CliConfig) -> str:
    chosen = (value or config.format).lower()
    if chosen not in ("table", "json"):
        raise CliError(f"--format must be table or json (got {chosen!r})")
    return chosen


def _client(config: CliConfig) -> Any:
    from b2c.client import GraphQLClient  # noqa: PLC0415 - httpx loads only for commands that talk to the API

    return GraphQLClient(config)


def _run_live(coro: Any) -> int:
    import asyncio  # noqa: PLC0415 - only live views need an event loop

    try:
        result: int = asyncio.run(coro)
    except KeyboardInterrupt:
        return 0
    return result


@app.command("list")
def list_jobs(
    status: Annotated[
        str | None, typer.Option(help="comma-separated: queued,running,completed,failed,cancelled")
    ] = None,
    job_type: Annotated[
        str | None, typer.Option("--type", help="comma-separated job types, e.g. ERP_STOCK_SYNC")
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="comma-separated tenant ids")] = None,
    since: Annotated[str, typer.Option(help="created within: 30m, 24h, 7d, 'all' or an ISO time")] = "24h",
    limit: Annotated[int, typer.Option(min=1, max=500, help="at most this many jobs")] = 20,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="keep the list live until Ctrl-C")] = False,
    fmt: FormatOpt = None,
) -> None:
    """List recent jobs (last 24 h by default), newest first."""
    config = CliConfig.load()
    chosen = _format(fmt, config)
    flt: dict[str, Any] = {}
    if statuses := split_list(status, STATUSES, "status"):
        flt["status"] = statuses
    if types := split_list(job_type):
        flt["jobType"] = types
    if tenants := split_list(tenant):
        flt["tenantId"] = tenants
    if (created_after := parse_since(since)) is not None:
        flt["createdAfter"] = created_after.isoformat()
    if watch:
        from b2c.jobs.live import watch_jobs  # noqa: PLC0415 - websockets load only for live views

        raise typer.Exit(_run_live(watch_jobs(config, flt, limit, chosen)))
    from b2c.client import run_query  # noqa: PLC0415
    from b2c.jobs.api import LIST  # noqa: PLC0415
    from b2c.jobs.render import jobs_table, summary_line  # noqa: PLC0415

    data = run_query(config, LIST, {"filter": flt or None, "first": limit})["jobs"]
    jobs = data["nodes"]
    if chosen == "json":
        output.print_json({"totalCount": data["totalCount"], "jobs": jobs})
        return
    con = output.console()
    if jobs:
        con.print(jobs_table(jobs))
    con.print(summary_line(jobs, data["totalCount"], statuses))


@app.command("show")
def show_job(
    job_id: IdArg,
    lines: Annotated[int, typer.Option(min=1, max=1000, help="log lines to show")] = 10,
    fmt: FormatOpt = None,
) -> None:
    """A job's details: status, progress, timing, steps, attempts, error and its last log lines."""
    from b2c.jobs.api import DETAILS, resolve_job_id  # noqa: PLC0415
    from b2c.jobs.render import job_detail  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    client = _client(config)
    try:
        data = client.execute(DETAILS, {"id": resolve_job_id(client, job_id), "last": lines})
    finally:
        client.close()
    if chosen == "json":
        output.print_json({**data["jobDetails"], "logs": data["jobLogs"]})
        return
    output.console().print(job_detail(data["jobDetails"], data["jobLogs"]))


@app.command("logs")
def job_logs(
    job_id: IdArg,
    tail: Annotated[int | None, typer.Option(min=1, max=10000, help="only the last N lines")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-F", help="stream new lines until the job ends")] = False,
    level: Annotated[str | None, typer.Option(help="minimum level: debug, info, warning, error")] = None,
    search: Annotated[str | None, typer.Option(help="only lines containing these words")] = None,
    fmt: FormatOpt = None,
) -> None:
    """A job's execution log. With --follow, the exit code is the job's: 0 completed, 1 cancelled, 2 failed."""
    from b2c.jobs.api import LOGS, resolve_job_id  # noqa: PLC0415
    from b2c.jobs.live import _emit, follow_logs  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    levels = split_list(level, LEVELS, "level")
    client = _client(config)
    try:
        resolved = resolve_job_id(client, job_id)
        if follow:
            client.close()
            raise typer.Exit(_run_live(follow_logs(config, resolved, tail, chosen)))
        page = client.execute(
            LOGS, {"id": resolved, "last": tail, "after": 0, "level": levels[0] if levels else None, "search": search}
        )["jobLogs"]
    finally:
        client.close()
    _emit(page["lines"], chosen)
    if not page["lines"] and chosen != "json":
        output.err_console().print("no log lines")


@app.command("retry")
def retry_job(job_id: IdArg, fmt: FormatOpt = None) -> None:
    """Retry a failed or cancelled job: a new attempt with the same parameters (operator)."""
    from b2c.jobs.api import RETRY, resolve_job_id  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    client = _client(config)
    try:
        resolved = resolve_job_id(client, job_id)
        result = client.execute(RETRY, {"id": resolved})["retryJob"]
    finally:
        client.close()
    job = result["job"]
    if chosen == "json":
        output.print_json(result)
    elif result["created"]:
        output.console().print(f"Retry queued: job {job['id']} (attempt {job['attempt']}) for {resolved[:8]}.")
    else:
        output.console().print(
            f"Job {resolved[:8]} was already retried as {job['id']} ({job['status']}); "
            f"retry that one with 'b2c jobs retry {job['id'][:8]}'."
        )
    if not result["created"]:
        raise typer.Exit(int(Exit.WARNING))


@app.command("cancel")
def cancel_job(
    job_id: IdArg,
    reason: Annotated[str | None, typer.Option(help="why, for the audit log and the job's record")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Cancel a queued or running job (operator). A running one stops within seconds."""
    from b2c.jobs.api import CANCEL, resolve_job_id  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    client = _client(config)
    try:
        job = client.execute(CANCEL, {"id": resolve_job_id(client, job_id), "reason": reason})["cancelJob"]
    finally:
        client.close()
    if chosen == "json":
        output.print_json(job)
    elif job["status"] == "CANCELLED":
        output.console().print(f"Job {job['id'][:8]} cancelled.")
    else:
        output.console().print(f"Cancellation of job {job['id'][:8]} requested; its worker stops it within seconds.")
