"""`b2c config …`: where the API is and how output looks."""

from __future__ import annotations

from typing import Annotated

import typer

from b2c.config import KEYS, CliConfig, config_path

app = typer.Typer(help="CLI settings: api-url, api-key, format, ca-file.", no_args_is_help=True)


@app.command("set")
def set_value(
    key: Annotated[str, typer.Argument(help=f"one of: {', '.join(KEYS)}")],
    value: Annotated[str, typer.Argument()],
) -> None:
    """Set a value, e.g. `b2c config set api-url https://admin.b2x.local`."""
    config = CliConfig.load()
    config.set(key, value)
    path = config.save()
    typer.echo(f"{key} saved to {path}")


@app.command("show")
def show() -> None:
    """Show the settings in effect (the key masked)."""
    config = CliConfig.load()
    typer.echo(f"config file  {config_path()}")
    typer.echo(f"api-url      {config.api_url}")
    typer.echo(f"api-key      {config.masked_key()}")
    typer.echo(f"format       {config.format}")
    typer.echo(f"ca-file      {config.ca_file or '(the system CAs)'}")
