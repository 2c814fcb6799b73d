"""Least privilege in PostgreSQL: one login role per service, owning that service's schema and nothing else.

    python -m services.common.roles --admin-url postgresql://admin@db/b2x [--password-file F] [--print-passwords]

(`B2X_JOBS_DB_PASSWORD`, `B2X_HEALTH_DB_PASSWORD`, … set a role's password explicitly, e.g. in compose)

run once by an administrator (a role with CREATEROLE that can create schemas in the database) creates or
updates the roles `b2x_jobs`, `b2x_health`, `b2x_probes` and `b2x_gateway`, makes each the owner of its
schema and of everything already in it, takes CREATE on `public` and CONNECT on the database away from
everyone else, and prints one DSN per service for `B2X_DATABASE_URL` (passwords masked unless asked
for: container logs keep what a one-shot job prints). `b2c up` does the same for the embedded server (and
for a B2X_DATABASE_URL whose user may create roles) on every start; the passwords are kept in the data
directory. Services still migrate their own schema at start-up, as its owner, under the advisory lock;
`python -m services.common.migrate_all` with the administrator's DSN migrates each schema as its role.
Idempotent: running it again only resets what drifted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from services.common.errors import StartupError

SERVICES = ("jobs", "health", "probes", "gateway")


class DatabaseUnreachable(StartupError):
    """The server did not answer; nothing about roles can be said yet."""


DEFAULT_PREFIX = "b2x"


def role_name(service: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}_{service}"


def dsn_for(admin_dsn: str, role: str, password: str) -> str:
    """The admin DSN with the service role's credentials instead of the admin's."""
    parts = urlsplit(admin_dsn)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def load_passwords(path: Path | None, services: tuple[str, ...] = SERVICES) -> dict[str, str]:
    """Passwords kept in `path` (0600), new random ones for services without one; saved back."""
    passwords: dict[str, str] = {}
    if path is not None and path.exists():
        passwords = {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if isinstance(v, str)}
    for service in services:
        passwords.setdefault(service, secrets.token_urlsafe(24))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps(passwords, indent=2), encoding="utf-8")
    return passwords


async def provision(
    admin_dsn: str,
    passwords: dict[str, str],
    *,
    services: tuple[str, ...] = SERVICES,
    prefix: str = DEFAULT_PREFIX,
) -> dict[str, str]:
    """Create or update each service's role and hand it its schema; returns service → DSN."""
    try:
        conn = await asyncpg.connect(admin_dsn)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise DatabaseUnreachable(f"cannot connect to PostgreSQL to create the services' roles: {error}") from None
    try:
        database = await conn.fetchval("SELECT current_database()")
        async with conn.transaction():
            # Roles are cluster-wide: serialise concurrent provisioning (two `b2c up` on one server).
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('b2x-roles'))")
            await conn.execute(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC')
            await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            for service in services:
                await _provision_one(conn, database, service, role_name(service, prefix), passwords[service])
    except asyncpg.InsufficientPrivilegeError as error:
        raise StartupError(f"cannot create the services' database roles: {error}") from None
    finally:
        await conn.close()
    return {s: dsn_for(admin_dsn, role_name(s, prefix), passwords[s]) for s in services}


async def _provision_one(conn: asyncpg.Connection, database: str, schema: str, role: str, password: str) -> None:
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    verb = "ALTER" if exists else "CREATE"
    # Passwords cannot be bind parameters in DDL; quote_literal keeps the statement safe.
    literal = await conn.fetchval("SELECT quote_literal($1)", password)
    await conn.execute(
        f'{verb} ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD {literal}'
    )
    await conn.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO "{role}"')
    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}" AUTHORIZATION "{role}"')
    await conn.execute(f'ALTER SCHEMA "{schema}" OWNER TO "{role}"')
    await conn.execute(f'REVOKE ALL ON SCHEMA "{schema}" FROM PUBLIC')
    # Objects made before the role existed (an upgrade from a shared superuser) move to the role.
    objects = await conn.fetch(
        """
        SELECT c.relname, c.relkind::text AS relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND pg_get_userbyid(c.relowner) <> $2
          AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'a'))
        """,
        schema,
        role,
    )
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE", "S": "SEQUENCE"}
    for row in objects:
        await conn.execute(f'ALTER {kinds[row["relkind"]]} "{schema}"."{row["relname"]}" OWNER TO "{role}"')
    functions = await conn.fetch(
        "SELECT p.oid::regprocedure::text AS signature FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = $1 AND pg_get_userbyid(p.proowner) <> $2",
        schema,
        role,
    )
    for row in functions:
        await conn.execute(f'ALTER FUNCTION {row["signature"]} OWNER TO "{role}"')


async def _main(args: argparse.Namespace) -> int:
    passwords = load_passwords(Path(args.password_file) if args.password_file else None)
    for service in SERVICES:
        if explicit := os.environ.get(f"B2X_{service.upper()}_DB_PASSWORD"):
            passwords[service] = explicit
    dsns = await provision(args.admin_url, passwords, prefix=args.prefix)
    for service, dsn in dsns.items():
        # Container logs keep what a one-shot job prints: passwords only when asked for.
        shown = dsn if args.print_passwords else dsn_for(args.admin_url, role_name(service, args.prefix), "****")
        print(f"{service}\t{shown}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.common.roles", description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", required=True, help="a DSN of a role that may create roles and schemas")
    parser.add_argument("--password-file", help="JSON file that keeps the roles' passwords (created 0600)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="role names are <prefix>_<service>")
    parser.add_argument(
        "--print-passwords", action="store_true", help="print the DSNs with their passwords (else masked)"
    )
    try:
        sys.exit(asyncio.run(_main(parser.parse_args())))
    except (StartupError, OSError, asyncpg.PostgresError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
