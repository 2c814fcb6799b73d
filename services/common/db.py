"""PostgreSQL access: the asyncpg pool, the migrations runner, and newest-first keyset pages.

Each service owns one schema and is its only writer. Migrations are numbered SQL files
(`NNN_name.sql`) in the service's `migrations/` folder, applied in order at start-up, each in its own
transaction, under an advisory lock so replicas starting together apply them once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from services.common.errors import InvalidArgumentError, StartupError
from services.common.logging import get_logger

log = get_logger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
# pg_advisory_lock key for migrations: one lock for all schemas keeps it simple and is only held at start.
_MIGRATION_LOCK_KEY = 0x62327800  # "b2x\0"
_MIGRATION_TIMEOUT = 3600.0

# Connection errors that mean "PostgreSQL is not there" rather than "the query is wrong".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    asyncio.TimeoutError,
)


def describe_dsn(dsn: str) -> str:
    """host:port/db of a DSN, without user or password, for messages."""
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    if "host=" in parts.query:  # unix socket given as ?host=/path
        host = parts.query.split("host=", 1)[1].split("&", 1)[0]
    return f"{host}:{parts.port or 5432}{parts.path or '/'}"


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class TimedPool(asyncpg.Pool):
    """A pool whose checkouts give up after `acquire_timeout` unless the caller says otherwise.

    With `command_timeout` on every statement and the connect timeout on new connections, no database
    call waits forever on a PostgreSQL that is stopped or frozen (SIGSTOP): it fails as unavailable.
    """

    acquire_timeout: float | None = None

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


async def create_pool(
    dsn: str,
    *,
    application_name: str,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = 5.0,
    command_timeout: float = 30.0,
) -> asyncpg.Pool:
    """Open a pool or raise StartupError with one line that says which server could not be reached.

    Statements time out after `command_timeout`; so do checkouts (a new connection has `connect_timeout`
    of its own within that)."""
    try:
        pool = TimedPool(
            dsn,
            connection_class=asyncpg.Connection,
            record_class=asyncpg.Record,
            min_size=min_size,
            max_size=max_size,
            max_queries=50_000,
            max_inactive_connection_lifetime=300.0,
            loop=None,
            timeout=connect_timeout,
            command_timeout=command_timeout,
            init=_init_connection,
            server_settings={"application_name": application_name, "timezone": "UTC"},
        )
        pool.acquire_timeout = max(command_timeout, connect_timeout)
        await pool
    except Exception as error:
        if not isinstance(error, (*CONNECTION_ERRORS, asyncpg.PostgresError)):
            raise
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise StartupError(f"cannot connect to PostgreSQL at {describe_dsn(dsn)}: {reason}") from None
    assert pool is not None
    return pool


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def discover_migrations(directory: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise StartupError(f"migration file {path} is not named NNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StartupError(f"duplicate migration numbers in {directory}")
    return found


async def migrate(pool: asyncpg.Pool, schema: str, directory: Path, *, as_role: str | None = None) -> list[int]:
    """Apply the schema's pending migrations; returns the versions applied now.

    With `as_role`, an administrator's connection migrates as that role (`SET ROLE`), so what the
    migrations create belongs to the service's role, as when the service migrates at start-up."""
    migrations = discover_migrations(directory)
    applied_now: list[int] = []
    async with pool.acquire() as conn:
        # Waiting for another replica's migrations, and the migrations themselves, may take longer than
        # the pool's statement timeout allows ordinary calls.
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY, timeout=_MIGRATION_TIMEOUT)
        try:
            if as_role is not None:
                await conn.execute(f'SET ROLE "{as_role}"')
            # A service's role owns its schema but may not create schemas (IF NOT EXISTS still needs that right).
            if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
                await conn.execute(f'CREATE SCHEMA "{schema}"')
            await conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')}
            for migration in migrations:
                if migration.version in done:
                    continue
                sql = migration.path.read_text(encoding="utf-8")
                async with conn.transaction():
                    await conn.execute(sql, timeout=_MIGRATION_TIMEOUT)
                    await conn.execute(
                        f'INSERT INTO "{schema}".schema_migrations (version, name) VALUES ($1, $2)',
                        migration.version,
                        migration.name,
                    )
                applied_now.append(migration.version)
                log.info("migration applied", schema=schema, version=migration.version, name=migration.name)
        finally:
            if as_role is not None:
                await conn.execute("RESET ROLE")
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
    return applied_now


def record_to_dict(record: asyncpg.Record | None) -> dict[str, Any] | None:
    return dict(record) if record is not None else None


# -- keyset pages, newest first ------------------------------------------------------------------------
# Lists of things that happened (tests, errors, alerts) page by (time, id) descending: the cursor is the
# last row's time and id, so a page costs an index range scan however deep it is (docs/adr/0005).


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (time, id) of a cursor this service issued; INVALID_ARGUMENT for anything else."""
    try:
        at, _, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), uuid.UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgumentError("page_token is not a token this service issued") from None


@dataclass(frozen=True)
class KeysetPage:
    rows: list[asyncpg.Record]
    next_cursor: str | None  # None on the last page
    total: int  # rows matching the filter, on every page


async def newest_first(
    pool: asyncpg.Pool,
    *,
    columns: str,
    table: str,
    where: str,
    params: Sequence[Any],
    time_column: str,
    page_size: int,
    cursor: str | None,
) -> KeysetPage:
    """One page of `table` rows matching `where` (parameters $1.. in `params`), ordered by
    (`time_column`, id) descending, after `cursor`; with the count of every matching row."""
    args = list(params)
    total = await pool.fetchval(f"SELECT count(*) FROM {table} WHERE {where}", *args)
    if cursor:
        at, last = decode_cursor(cursor)
        args += [at, last]
        where += f" AND ({time_column}, id) < (${len(args) - 1}, ${len(args)})"
    args.append(page_size + 1)
    rows = await pool.fetch(
        f"SELECT {columns} FROM {table} WHERE {where} ORDER BY {time_column} DESC, id DESC LIMIT ${len(args)}", *args
    )
    more = len(rows) > page_size
    rows = rows[:page_size]
    token = encode_cursor(rows[-1][time_column], rows[-1]["id"]) if more and rows else None
    return KeysetPage(rows, token, int(total or 0))
