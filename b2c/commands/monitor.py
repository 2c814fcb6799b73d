"""`b2c monitor …`: connected services, connection tests, communication errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from b2c import output
from b2c.client import run_query
from b2c.commands import alerts as alert_commands
from b2c.commands.common import parse_since, split_list, writable_path
from b2c.config import CliConfig
from b2c.errors import CliError, Exit

app = typer.Typer(
    help="Connected services: status, connection tests, communication errors, alerts.", no_args_is_help=True
)
app.add_typer(alert_commands.app, name="alerts")
app.command("thresholds")(alert_commands.thresholds)

FormatOpt = Annotated[str | None, typer.Option("--format", "-f", help="table or json (default: b2c config)")]
SERVICE_STATUSES = ("ONLINE", "DEGRADED", "OFFLINE", "UNKNOWN")
GROUPS = {"network": "NETWORK", "timeout": "TIMEOUT", "protocol": "PROTOCOL", "auth": "AUTHENTICATION",
          "authentication": "AUTHENTICATION", "data": "DATA", "service": "SERVICE"}  # fmt: skip
SEVERITIES = ("WARNING", "ERROR", "CRITICAL")
TYPE_HELP = "a group (network, timeout, protocol, auth, data, service) or a type (connection_timeout, …)"
_SHORT_ID = re.compile(r"^[0-9a-fA-F]{4,36}$")
# The probes service's page limit (services/probes/domain.py MAX_PAGE_SIZE).
MAX_ERRORS = 200
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _format(value: str | None, config: CliConfig) -> str:
    chosen = (value or config.format).lower()
    if chosen not in ("table", "json"):
        raise CliError(f"--format must be table or json (got {chosen!r})")
    return chosen


def _outcome(result: dict[str, Any]) -> Exit:
    """Exit code of a test: 0 passed, 1 passed but slow or degraded, 2 failed."""
    if not result["success"]:
        return Exit.ERROR
    if result["degraded"] or result.get("speedRating") == "SLOW":
        return Exit.WARNING
    return Exit.OK


HEALTH_EXIT = {"ONLINE": Exit.OK, "DEGRADED": Exit.WARNING, "UNKNOWN": Exit.WARNING, "OFFLINE": Exit.ERROR}


@app.command("health")
def health(
    detailed: Annotated[bool, typer.Option("--detailed", help="why each component is in its state")] = False,
    component: Annotated[str | None, typer.Option(help="only this component (slug or name)")] = None,
    history: Annotated[str | None, typer.Option(help="availability over 1h, 24h, 7d …")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh every 5 seconds until Ctrl-C")] = False,
    fmt: FormatOpt = None,
) -> None:
    """System health at a glance. Exit 0 healthy, 1 degraded (or nothing checked yet), 2 unhealthy."""
    from b2c.monitor.api import HEALTH, HEALTH_HISTORY  # noqa: PLC0415
    from b2c.monitor.render import health_view, history_table  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    if history:
        since = parse_since(history, "--history")
        data = run_query(config, HEALTH_HISTORY, {"s": component, "since": since.isoformat() if since else None})
        if chosen == "json":
            output.print_json(data["healthHistory"])
        else:
            output.console().print(history_table(data["healthHistory"]))
        return
    if watch:
        raise typer.Exit(_watch_health(config, detailed, component, chosen))
    summary = run_query(config, HEALTH)["healthSummary"]
    if chosen == "json":
        output.print_json(summary)
    else:
        output.console().print(health_view(summary, detailed, component))
    raise typer.Exit(int(HEALTH_EXIT.get(summary["overallStatus"] or "UNKNOWN", Exit.WARNING)))


def _watch_health(config: CliConfig, detailed: bool, component: str | None, fmt: str) -> int:
    """The seed's auto-refresh every 5 seconds; one JSON object per refresh with --format json."""
    from b2c.monitor.api import HEALTH  # noqa: PLC0415
    from b2c.monitor.render import health_view  # noqa: PLC0415

    return _poll(lambda: run_query(config, HEALTH)["healthSummary"],
                 lambda summary: health_view(summary, detailed, component), fmt)  # fmt: skip


def _poll(fetch: Any, render: Any, fmt: str, interval: float = 5.0) -> int:
    """Fetch and show every `interval` seconds until Ctrl-C (a JSON line per fetch with --format json)."""
    import time  # noqa: PLC0415

    try:
        if fmt == "json":
            while True:
                output.print_json_line(fetch())
                time.sleep(interval)
        with output.LiveView(every=0) as screen:
            while True:
                screen.update(render(fetch()))
                time.sleep(interval)
    except KeyboardInterrupt:
        return 0


@app.command("services")
def services(
    service: Annotated[str | None, typer.Argument(help="one service's slug or id")] = None,
    status: Annotated[str | None, typer.Option(help="comma-separated: online,degraded,offline,unknown")] = None,
    resources: Annotated[bool, typer.Option("--resources", help="include CPU, memory, pool and queue figures")] = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh every 5 seconds until Ctrl-C")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Connected services with their status. Exit 1 when one is degraded, 2 when one is offline."""
    from b2c.monitor.api import SERVICES  # noqa: PLC0415
    from b2c.monitor.render import services_table, status_reasons  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    statuses = split_list(status, SERVICE_STATUSES, "status")

    def fetch() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = run_query(config, SERVICES, {"status": statuses or None})["services"]
        if service:
            rows = [s for s in rows if service in (s["slug"], s["id"])]
            if not rows:
                raise CliError(f"service {service!r} not found")
        return rows if resources else [{k: v for k, v in s.items() if k != "resources"} for s in rows]

    def view(rows: list[dict[str, Any]]) -> Any:
        from rich.console import Group  # noqa: PLC0415

        return Group(services_table(rows, with_resources=resources), *status_reasons(rows))

    if watch:
        raise typer.Exit(_poll(fetch, view, chosen))
    rows = fetch()
    if chosen == "json":
        output.print_json(rows)
    else:
        output.console().print(view(rows))
    states = {s["status"] for s in rows}
    raise typer.Exit(int(Exit.ERROR if "OFFLINE" in states else Exit.WARNING if "DEGRADED" in states else Exit.OK))


@app.command("test")
def run_test(
    service: Annotated[str, typer.Argument(help="a service's slug or id, or 'all'")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="phase by phase, live")] = False,
    export: Annotated[Path | None, typer.Option(help="also save the report: .pdf, .json or .txt")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Run a connection test (operator). Exit 0 passed, 1 slow or degraded, 2 failed."""
    if export is not None:
        if export.suffix.lower() not in (".pdf", ".json", ".txt"):
            raise CliError(f"--export must end in .pdf, .json or .txt (got {export.name})")
        writable_path(export, "--export")
    from b2c.monitor.api import SERVICES, TEST  # noqa: PLC0415
    from b2c.monitor.render import test_report, tests_table  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    con = output.console()
    if service == "all":
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        slugs = [s["slug"] for s in run_query(config, SERVICES)["services"] if s["enabled"]]
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda slug: _test_one(config, slug), slugs))
        exits = [int(r.pop("_exit", None) or _outcome(r)) for r in results]
        if chosen == "json":
            output.print_json(results)
        else:
            con.print(tests_table(results))
        raise typer.Exit(max(exits, default=0))
    if verbose and chosen == "table":
        import asyncio  # noqa: PLC0415 - only the live view needs an event loop

        result = asyncio.run(_stream_test(config, service))
    else:
        result = run_query(config, TEST, {"s": service})["testConnection"]
        if chosen == "table":
            con.print(f"Testing connection to {result['serviceSlug']} ({result['endpoint']})…\n")
    if chosen == "json":
        output.print_json(result)
    else:
        # Streamed phases are already on screen; print the verdict only.
        con.print(test_report(result, verbose and chosen != "table"))
    if export is not None:
        _export_test(config, result["id"], export)
    raise typer.Exit(int(_outcome(result)))


def _test_one(config: CliConfig, slug: str) -> dict[str, Any]:
    """One service's test for `test all`; a request that fails is that service's row, not the end of the run."""
    from b2c.monitor.api import TEST  # noqa: PLC0415

    try:
        result: dict[str, Any] = run_query(config, TEST, {"s": slug})["testConnection"]
    except CliError as error:
        return {"serviceSlug": slug, "success": False, "degraded": False, "summary": error.message,
                "errorMessage": error.message, "metrics": None, "_exit": int(error.code)}  # fmt: skip
    return result


def _export_test(config: CliConfig, test_id: str, path: Path) -> None:
    import base64  # noqa: PLC0415

    from b2c.monitor.api import EXPORT_TEST  # noqa: PLC0415

    export_format = {".pdf": "PDF", ".json": "JSON", ".txt": "TEXT"}[path.suffix.lower()]
    file = run_query(config, EXPORT_TEST, {"id": test_id, "format": export_format})["exportConnectionTest"]
    path.write_bytes(base64.b64decode(file["content"]) if file["base64"] else file["content"].encode("utf-8"))
    output.err_console().print(f"report written to {path}")


async def _stream_test(config: CliConfig, service: str) -> dict[str, Any]:
    """Print each phase as it completes (the seed's --verbose view); return the final result."""
    from b2c.monitor.api import RUN_TEST  # noqa: PLC0415
    from b2c.monitor.render import PHASE_LABEL, ms  # noqa: PLC0415
    from b2c.ws import LiveConnection  # noqa: PLC0415

    con = output.console()
    con.print(f"Testing connection to {service}…\n")
    async with LiveConnection(config) as live:
        await live.subscribe(RUN_TEST, {"s": service})
        async for _, data in live.events():
            update = data.get("runConnectionTest")
            if not update:
                continue
            if update["phase"]:
                p = update["phase"]
                mark = {"PASSED": "[green]✓[/green]", "FAILED": "[red]✗[/red]"}.get(p["status"], "-")
                retry = f" (attempt {p['attempt']})" if p["attempt"] > 1 else ""
                took = ms(p["durationMs"]) if p["status"] != "SKIPPED" else "skipped"
                detail = f"   [red]{p['detail']}[/red]" if p["status"] == "FAILED" and p["detail"] else ""
                con.print(f"  {mark} {PHASE_LABEL.get(p['name'], p['name']):<22}{took:>10}{retry}{detail}")
            if update["result"]:
                con.print("  " + "─" * 34)
                result: dict[str, Any] = update["result"]
                return result
    raise CliError("the test ended without a result", Exit.UNREACHABLE)


@app.command("errors")
def errors(
    target: Annotated[str | None, typer.Argument(help="a service's slug, or an error's id for its details")] = None,
    error_type: Annotated[str | None, typer.Option("--type", help=TYPE_HELP)] = None,
    severity: Annotated[str | None, typer.Option(help="comma-separated: warning,error,critical")] = None,
    since: Annotated[str, typer.Option(help="30m, 1h, 24h, 7d, 'all' or an ISO time")] = "24h",
    limit: Annotated[int, typer.Option(min=1, help=f"at most {MAX_ERRORS} (the server's page limit)")] = 50,
    export: Annotated[Path | None, typer.Option(help="write the errors with full evidence to this JSON file")] = None,
    report: Annotated[Path | None, typer.Option(help="write a 'Report to Provider' text for a support ticket")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Recent communication errors, or one error's full evidence (`b2c monitor errors <error-id>`)."""
    from b2c.monitor.api import ERROR, ERRORS, PATTERNS, SERVICES  # noqa: PLC0415
    from b2c.monitor.render import error_detail, errors_table  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    if limit > MAX_ERRORS:
        output.err_console().print(f"--limit {limit} is above the server's maximum of {MAX_ERRORS}; showing "
                                   f"at most {MAX_ERRORS}")  # fmt: skip
        limit = MAX_ERRORS
    for path, option in ((export, "--export"), (report, "--report")):
        if path is not None:
            writable_path(path, option)
    error_id = target if target and _UUID.match(target) else _error_id_of(config, target)
    if error_id:
        error = run_query(config, ERROR, {"id": error_id})["communicationError"]
        if chosen == "json":
            output.print_json(error)
        else:
            output.console().print(error_detail(error))
        return
    variables = _error_filter(target, error_type, severity, since, limit)
    page = run_query(config, ERRORS, variables)["communicationErrors"]
    rows = page["errors"]
    for path, export_format in ((export, "JSON"), (report, "TEXT")):
        if path is not None:
            _export_errors(config, path, export_format, variables)
    if chosen == "json":
        output.print_json({"totalCount": page["totalCount"], "errors": rows})
        return
    slugs = {s["id"]: s["slug"] for s in run_query(config, SERVICES)["services"]}
    title = f"Communication errors (since {since})" if since != "all" else "Communication errors"
    con = output.console()
    if not rows:
        con.print(f"No communication errors{' for ' + target if target else ''} since {since}.")
        return
    con.print(errors_table(rows, slugs, f"{title} — {len(rows)} shown"))
    patterns = run_query(config, PATTERNS, {"s": target, "since": variables.get("since")})["errorPatterns"]
    for pattern in patterns["patterns"]:
        con.print(f"[yellow]Pattern:[/yellow] {pattern['text']} {pattern['advice']}".rstrip())
    con.print("Use 'b2c monitor errors <error-id>' for the request/response evidence and timing.")


@app.command("resources")
def resources(
    service: Annotated[str | None, typer.Argument(help="one service's slug or id")] = None,
    top: Annotated[bool, typer.Option("--top", help="highest CPU first")] = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="live figures until Ctrl-C")] = False,
    fmt: FormatOpt = None,
) -> None:
    """CPU, memory, pool, threads and queue of connected services. Exit 1 while a resource alert is active."""
    from b2c.monitor.api import RESOURCES  # noqa: PLC0415
    from b2c.monitor.render import resources_table  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    rows = run_query(config, RESOURCES, {"s": [service] if service else None})["resources"]
    if top:
        rows.sort(key=lambda r: -((r.get("metrics") or {}).get("cpuPercent") or 0))
    if watch:
        import asyncio  # noqa: PLC0415 - only the live view needs an event loop

        raise typer.Exit(_live_resources(asyncio.run, config, rows, top, chosen))
    if chosen == "json":
        output.print_json(rows)
    else:
        output.console().print(resources_table(rows) if rows else "No sampled services (set resources: in the config).")
    raise typer.Exit(int(Exit.WARNING if any(r["activeAlerts"] for r in rows) else Exit.OK))


def _live_resources(run: Any, config: CliConfig, rows: list[dict[str, Any]], top: bool, fmt: str) -> int:
    try:
        result: int = run(_watch_resources(config, rows, top, fmt))
    except KeyboardInterrupt:
        return 0
    return result


async def _watch_resources(config: CliConfig, rows: list[dict[str, Any]], top: bool, fmt: str) -> int:
    from b2c.monitor.api import RESOURCE_SUB  # noqa: PLC0415
    from b2c.monitor.render import resources_table  # noqa: PLC0415
    from b2c.ws import LiveConnection  # noqa: PLC0415

    by_id = {r["serviceId"]: r for r in rows}

    def ordered() -> list[dict[str, Any]]:
        values = list(by_id.values())
        if top:
            values.sort(key=lambda r: -((r.get("metrics") or {}).get("cpuPercent") or 0))
        return values

    async with LiveConnection(config) as live:
        await live.subscribe(RESOURCE_SUB)
        if fmt == "json":
            async for _, data in live.events():
                event = data.get("resourceMetricsUpdated")
                if event and event["serviceId"] in by_id:
                    output.print_json_line(event)
            return 0
        with output.LiveView(every=5.0) as screen:
            screen.update(resources_table(ordered()))
            async for _, data in live.events():
                event = data.get("resourceMetricsUpdated")
                if event and event["serviceId"] in by_id:
                    by_id[event["serviceId"]]["metrics"] = event["metrics"]
                    screen.update(resources_table(ordered()))
    return 0


def _error_id_of(config: CliConfig, target: str | None) -> str | None:
    """The full id of the error `target` names by the start of its id (the 8 characters the list prints), or
    None when `target` is a service; CliError when it is neither, or when several errors match."""
    if not target:
        return None
    from b2c.monitor.api import ERRORS, SERVICES  # noqa: PLC0415

    if any(target in (s["slug"], s["id"]) for s in run_query(config, SERVICES)["services"]):
        return None
    if not _SHORT_ID.match(target):
        raise CliError(f"no service {target!r}; `b2c monitor services` lists them")
    recent = run_query(config, ERRORS, {"first": MAX_ERRORS})["communicationErrors"]["errors"]
    found: list[str] = sorted({e["id"] for e in recent if e["id"].lower().startswith(target.lower())})
    if len(found) == 1:
        return found[0]
    if found:
        raise CliError(f"{target} matches {len(found)} errors ({', '.join(found[:5])}); give more of the id")
    raise CliError(
        f"{target} is neither a service nor the start of one of the latest {MAX_ERRORS} communication errors' ids; "
        "give the full id or a service slug"
    )


def _error_filter(
    target: str | None, error_type: str | None, severity: str | None, since: str, limit: int
) -> dict[str, Any]:
    """The GraphQL variables of `monitor errors`' filter (the server filters; nothing is dropped here)."""
    variables: dict[str, Any] = {"service": target, "first": limit}
    if error_type:
        key = error_type.strip().lower()
        if key in GROUPS:
            variables["groups"] = [GROUPS[key]]
        else:
            variables["types"] = [key.upper()]
    if (moment := parse_since(since)) is not None:
        variables["since"] = moment.isoformat()
    if severity:
        variables["severities"] = sorted(set(split_list(severity, SEVERITIES, "severity")))
    return variables


def _export_errors(config: CliConfig, path: Path, export_format: str, variables: dict[str, Any]) -> None:
    """Write the export the probes service renders (masked evidence) for the errors of this filter."""
    from b2c.monitor.api import EXPORT_ERRORS  # noqa: PLC0415

    query_vars = {k: variables.get(k) for k in ("since", "types", "groups", "severities")}
    query_vars |= {"s": variables.get("service"), "format": export_format, "limit": variables["first"]}
    data = run_query(config, EXPORT_ERRORS, query_vars)
    file = data["exportCommunicationErrors"]
    path.write_text(file["content"], encoding="utf-8")
    more = " (more matched; narrow the filter)" if file["truncated"] else ""
    output.err_console().print(f"{file['itemCount']} errors written to {path}{more}")
