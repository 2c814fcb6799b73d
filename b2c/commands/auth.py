"""`b2c auth …`: API keys for this CLI and, for admins, for others."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from b2c import output
from b2c.client import run_query
from b2c.config import CliConfig
from b2c.errors import CliError

app = typer.Typer(help="API keys: use one, see who you are, create and revoke keys.", no_args_is_help=True)

WHOAMI = "query { viewer { keyId name role tenantId } }"
CREATE = """
mutation($name: String!, $role: Role!, $tenant: String) {
  createApiKey(name: $name, role: $role, tenantId: $tenant) { key apiKey { id name role tenantId } }
}"""
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { id name revokedAt } }"
KEYS = "query { apiKeys { id name role tenantId createdAt lastUsedAt revokedAt } }"


def _verify_and_save(key: str) -> None:
    config = CliConfig.load()
    config.api_key = key.strip()
    viewer = run_query(config, WHOAMI)["viewer"]
    path = config.save()
    scope = f", tenant {viewer['tenantId']}" if viewer["tenantId"] else ""
    typer.echo(f"key '{viewer['name']}' ({viewer['role'].lower()}{scope}) saved to {path}")


@app.command("token")
def token(key: Annotated[str, typer.Argument(help="an API key, b2x_…")]) -> None:
    """Use this API key from now on (checked against the API first)."""
    _verify_and_save(key)


@app.command("login")
def login() -> None:
    """Paste an API key interactively (not echoed)."""
    key = getpass.getpass("API key: ")
    if not key.strip():
        raise CliError("no key entered")
    _verify_and_save(key)


@app.command("whoami")
def whoami() -> None:
    """The key in use: its name, role and tenant scope."""
    viewer = run_query(CliConfig.load(), WHOAMI)["viewer"]
    typer.echo(f"{viewer['name']} ({viewer['keyId']}): {viewer['role'].lower()}, tenant {viewer['tenantId'] or 'all'}")


@app.command("create-key")
def create_key(
    name: Annotated[str, typer.Option(help="who or what uses the key")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin")] = "viewer",
    tenant: Annotated[str | None, typer.Option(help="limit the key to one tenant")] = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="table or json (default: b2c config)")] = None,
) -> None:
    """Create a key (admin). It is printed once; store it. With --format json: {"key": …, "apiKey": {…}}."""
    if role.lower() not in ("viewer", "operator", "admin"):
        raise CliError(f"--role must be viewer, operator or admin (got {role!r})")
    config = CliConfig.load()
    chosen = (fmt or config.format).lower()
    if chosen not in ("table", "json"):
        raise CliError(f"--format must be table or json (got {chosen!r})")
    created = run_query(config, CREATE, {"name": name, "role": role.upper(), "tenant": tenant})["createApiKey"]
    if chosen == "json":
        output.print_json(created)
    else:
        typer.echo(created["key"])
    typer.echo(f"created {role.lower()} key {created['apiKey']['id']} for {name}; store it now", err=True)


@app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key's id (the part after b2x_)")]) -> None:
    """Revoke a key (admin)."""
    revoked = run_query(CliConfig.load(), REVOKE, {"id": key_id})["revokeApiKey"]
    typer.echo(f"revoked {revoked['id']} ({revoked['name']})")


@app.command("keys")
def keys() -> None:
    """List API keys (admin); secrets are never shown."""
    rows = run_query(CliConfig.load(), KEYS)["apiKeys"]
    table = output.new_table("API keys")
    for column in ("ID", "Name", "Role", "Tenant", "Created", "Last used", "State"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["id"], r["name"], r["role"].lower(), r["tenantId"] or "all", output.clock(r["createdAt"]),
            output.ago(r["lastUsedAt"]), "revoked" if r["revokedAt"] else "active",
        )  # fmt: skip
    output.console().print(table)
