"""Create or revoke API keys straight in the database, for the first admin key of a deployment.

    python -m gateway.keys_cli create --name ops --role admin [--tenant T]
    python -m gateway.keys_cli revoke <key-id>
    python -m gateway.keys_cli list

Uses B2X_DATABASE_URL like the gateway. After the first admin key exists, manage keys over GraphQL
(`createApiKey`, `revokeApiKey`) or with `b2c auth create-key`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.auth import KeyStore, Role
from services.common.db import create_pool, migrate
from services.common.errors import DomainError, StartupError
from services.common.logging import configure_logging
from services.common.settings import CommonSettings, load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


async def _main(args: argparse.Namespace) -> int:
    settings = load_settings(CommonSettings, redis_url="redis://127.0.0.1:6379")
    configure_logging("keys", "WARNING", "console")
    pool = await create_pool(settings.database_url, application_name="b2x-keys", min_size=1, max_size=2)
    try:
        await migrate(pool, "gateway", MIGRATIONS)
        keys = KeyStore(pool)
        if args.command == "create":
            plain, record = await keys.create(args.name, Role(args.role), args.tenant, created_by="keys_cli")
            print(plain)
            print(f"created {record.role.value} key {record.id} ({record.name}); store it now", file=sys.stderr)
        elif args.command == "revoke":
            record = await keys.revoke(args.key_id)
            print(f"revoked {record.id} ({record.name})")
        else:
            for r in await keys.list():
                state = "revoked" if r.revoked_at else "active"
                print(f"{r.id}  {r.role.value:8}  {r.tenant_id or '*':12}  {state:8}  {r.name}")
    finally:
        await pool.close()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.keys_cli", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=[r.value for r in Role], default="admin")
    create.add_argument("--tenant", default=None, help="limit the key to one tenant")
    revoke = sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    sub.add_parser("list", help="list keys (never their secrets)")
    try:
        sys.exit(asyncio.run(_main(parser.parse_args())))
    except (StartupError, DomainError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
