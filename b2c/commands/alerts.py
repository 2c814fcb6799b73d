"""`b2c monitor alerts …` and `b2c monitor thresholds`: what fires, acknowledge, resolve, silence, limits."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from b2c import output
from b2c.client import run_query
from b2c.commands.common import parse_since
from b2c.config import CliConfig
from b2c.errors import CliError, Exit

app = typer.Typer(
    help="Alerts: active ones (exit 1 while a critical one fires), history, ack, resolve, silence.",
    invoke_without_command=True,
)
FormatOpt = Annotated[str | None, typer.Option("--format", "-f", help="table or json (default: b2c config)")]


def _format(value: str | None, config: CliConfig) -> str:
    chosen = (value or config.format).lower()
    if chosen not in ("table", "json"):
        raise CliError(f"--format must be table or json (got {chosen!r})")
    return chosen


@app.callback()
def alerts(
    ctx: typer.Context,
    history: Annotated[bool, typer.Option("--history", help="every alert that changed, resolved ones too")] = False,
    since: Annotated[str, typer.Option(help="with --history: 30m, 24h, 7d, 'all' or an ISO time")] = "7d",
    severity: Annotated[str | None, typer.Option(help="comma-separated: critical,error,warning,info")] = None,
    service: Annotated[str | None, typer.Option(help="one connected service's slug")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    fmt: FormatOpt = None,
) -> None:
    """Active alerts (firing or acknowledged), or --history. Exit 1 while a critical alert fires."""
    if ctx.invoked_subcommand is not None:
        return
    from b2c.monitor.alerts import ALERTS, alerts_table  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    flt: dict[str, Any] = {"service": service}
    if severity:
        flt["severities"] = _severities(severity)
    if history:
        moment = parse_since(since)
        flt["since"] = moment.isoformat() if moment else None
    else:
        flt["active"] = True
    page = run_query(config, ALERTS, {"f": flt, "first": limit})["alerts"]
    rows = page["nodes"]
    if chosen == "json":
        output.print_json({"totalCount": page["totalCount"], "alerts": rows})
    elif not rows:
        output.console().print("No alerts changed since " + since + "." if history else "No active alerts.")
    else:
        title = f"Alert history (since {since})" if history else "Active alerts"
        con = output.console()
        con.print(alerts_table(rows, f"{title} — {len(rows)} of {page['totalCount']}", con.width))
    critical = any(a["severity"] == "CRITICAL" and a["status"] == "FIRING" for a in rows)
    raise typer.Exit(int(Exit.WARNING if critical and not history else Exit.OK))


def _severities(value: str) -> list[str]:
    chosen = [v.strip().upper() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in ("CRITICAL", "ERROR", "WARNING", "INFO")]
    if unknown:
        raise CliError(f"unknown severity {', '.join(unknown)}; choose from critical, error, warning, info")
    return chosen


@app.command("ack")
def ack(
    alert_id: Annotated[str, typer.Argument(help="the alert's id or its first characters")],
    comment: Annotated[str | None, typer.Option(help="why, or what is being done")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Acknowledge a firing alert (operator): someone is on it."""
    from b2c.monitor.alerts import ACK, alert_line  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    alert = run_query(config, ACK, {"id": alert_id, "c": comment})["acknowledgeAlert"]
    output.print_json(alert) if chosen == "json" else output.console().print(alert_line(alert))


@app.command("resolve")
def resolve(
    alert_id: Annotated[str, typer.Argument(help="the alert's id or its first characters")],
    comment: Annotated[str | None, typer.Option(help="what fixed it")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Resolve an alert by hand (operator); it fires again as a new episode if the problem returns."""
    from b2c.monitor.alerts import RESOLVE, alert_line  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    alert = run_query(config, RESOLVE, {"id": alert_id, "c": comment})["resolveAlert"]
    output.print_json(alert) if chosen == "json" else output.console().print(alert_line(alert))


@app.command("silence")
def silence(
    match: Annotated[list[str], typer.Option("--match", "-m", help="label matcher, repeatable: service=crm")],
    duration: Annotated[str, typer.Option("--for", help="how long: 30m, 2h, 1d")],
    comment: Annotated[str, typer.Option(help="why the notifications are silenced")],
    fmt: FormatOpt = None,
) -> None:
    """Silence the notifications of matching alerts for a while (operator); the alerts stay visible."""
    from b2c.monitor.alerts import SILENCE  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    made = run_query(config, SILENCE, {"m": match, "d": duration, "c": comment})["createSilence"]
    if chosen == "json":
        output.print_json(made)
    else:
        output.console().print(f"silence {made['id'][:8]} until {output.clock(made['endsAt'])}: {', '.join(match)}")


@app.command("silences")
def silences(
    all_: Annotated[bool, typer.Option("--all", help="expired ones too")] = False,
    fmt: FormatOpt = None,
) -> None:
    """The silences in force (or --all)."""
    from b2c.monitor.alerts import SILENCES, silences_table  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    rows = run_query(config, SILENCES, {"all": all_})["silences"]
    if chosen == "json":
        output.print_json(rows)
    else:
        output.console().print(silences_table(rows) if rows else "No silences.")


@app.command("unsilence")
def unsilence(silence_id: Annotated[str, typer.Argument(help="the silence's id")], fmt: FormatOpt = None) -> None:
    """End a silence now (operator)."""
    from b2c.monitor.alerts import EXPIRE, SILENCES  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    if len(silence_id) < 36:  # a short id: find it among the silences
        found = [
            s["id"] for s in run_query(config, SILENCES, {"all": False})["silences"] if s["id"].startswith(silence_id)
        ]
        if len(found) != 1:
            raise CliError(f"silence {silence_id!r} {'is ambiguous' if found else 'not found'}")
        silence_id = found[0]
    ended = run_query(config, EXPIRE, {"id": silence_id})["expireSilence"]
    output.print_json(ended) if chosen == "json" else output.console().print(f"silence {ended['id'][:8]} expired")


THRESHOLD_OPTIONS = {
    "cpu": "cpuPercent",
    "cpu_sustained": "cpuSustainedSeconds",
    "memory": "memoryPercent",
    "memory_critical": "memoryCriticalPercent",
    "pool": "poolPercent",
    "queue": "queueDepth",
}


def thresholds(
    service: Annotated[str, typer.Argument(help="a connected service's slug")],
    cpu: Annotated[float | None, typer.Option(help="CPU % above which CPU_HIGH fires")] = None,
    cpu_sustained: Annotated[int | None, typer.Option(help="seconds above --cpu for CPU_SUSTAINED")] = None,
    memory: Annotated[float | None, typer.Option(help="memory % for MEMORY_HIGH")] = None,
    memory_critical: Annotated[float | None, typer.Option(help="memory % for MEMORY_CRITICAL")] = None,
    pool: Annotated[float | None, typer.Option(help="connection pool % for POOL_EXHAUSTED")] = None,
    queue: Annotated[int | None, typer.Option(help="queued items for QUEUE_BACKLOG")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Show a service's resource thresholds, or change some (operator; kept across restarts, over the file's)."""
    from b2c.monitor.alerts import THRESHOLDS, UPDATE_THRESHOLDS, thresholds_table  # noqa: PLC0415

    config = CliConfig.load()
    chosen = _format(fmt, config)
    given = {"cpu": cpu, "cpu_sustained": cpu_sustained, "memory": memory, "memory_critical": memory_critical,
             "pool": pool, "queue": queue}  # fmt: skip
    changes = {THRESHOLD_OPTIONS[k]: v for k, v in given.items() if v is not None}
    if changes:
        result = run_query(config, UPDATE_THRESHOLDS, {"s": service, "t": changes})["updateThresholds"]
        slug, current = result["service"], result["thresholds"]
    else:
        found = [s for s in run_query(config, THRESHOLDS)["services"] if service in (s["slug"], s["id"])]
        if not found:
            raise CliError(f"service {service!r} not found")
        slug, current = found[0]["slug"], found[0]["thresholds"]
    if chosen == "json":
        output.print_json({"service": slug, "thresholds": current})
    else:
        output.console().print(thresholds_table(slug, current))
