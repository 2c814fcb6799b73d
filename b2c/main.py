"""The `b2c` entry point: assembles the command groups and turns errors into exit codes."""

from __future__ import annotations

import os
import sys

import typer

from b2c.commands import auth, config_cmd, jobs, monitor
from b2c.errors import CliError, Exit

app = typer.Typer(
    help="B2X command line: monitor scheduler jobs and connected services, run the stack locally.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def options(
    ca_file: str | None = typer.Option(
        None,
        "--ca-file",
        help="PEM file of the CA that signed the gateway's certificate (https); saved with `b2c config set ca-file`",
    ),
) -> None:
    """Options for every command."""
    if ca_file is not None:
        os.environ["B2C_CA_FILE"] = ca_file  # read by CliConfig.load, like the other B2C_* overrides


app.add_typer(jobs.app, name="jobs")
app.add_typer(monitor.app, name="monitor")
app.add_typer(config_cmd.app, name="config")
app.add_typer(auth.app, name="auth")


@app.command("up")
def up(
    demo: bool = typer.Option(False, "--demo", help="add simulated ERP/PIM/CRM endpoints and sample jobs"),
    data_dir: str | None = typer.Option(
        None, help="where embedded PostgreSQL/Redis keep data (default ~/.local/share/b2x)"
    ),
    logs: bool = typer.Option(False, "--logs", help="also stream the services' logs to this terminal"),
) -> None:
    """Start the whole stack: embedded PostgreSQL and Redis (unless B2X_DATABASE_URL/B2X_REDIS_URL are set),
    the jobs, health and probes services and the gateway. Ctrl-C stops it all.

    Ports, each moved by its variable: B2X_GATEWAY_PORT (8080);
    B2X_JOBS_PORT, B2X_HEALTH_PORT, B2X_PROBES_PORT (50051-50053);
    B2X_JOBS_METRICS_PORT, B2X_HEALTH_METRICS_PORT, B2X_PROBES_METRICS_PORT (9101-9103);
    with --demo B2X_DEMO_ERP_PORT, B2X_DEMO_PIM_PORT, B2X_DEMO_CRM_PORT (18081-18083).
    Everything listens on B2X_BIND_HOST (127.0.0.1)."""
    from b2c.stack.up import run_stack  # noqa: PLC0415 - heavy imports only for `up`

    raise typer.Exit(run_stack(demo=demo, data_dir=data_dir, stream_logs=logs))


def run() -> None:
    """Console-script entry: exit codes 0 ok, 1 warning, 2 error, 3 API unreachable; never a traceback."""
    try:
        code = app(standalone_mode=False)
    except CliError as error:
        typer.echo(f"b2c: {error.message}", err=True)
        sys.exit(int(error.code))
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        typer.echo("b2c: aborted", err=True)
        sys.exit(int(Exit.ERROR))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # click usage errors and the unexpected
        import click  # noqa: PLC0415

        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(int(Exit.ERROR))
        typer.echo(f"b2c: unexpected error: {type(error).__name__}: {error}", err=True)
        sys.exit(int(Exit.ERROR))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
