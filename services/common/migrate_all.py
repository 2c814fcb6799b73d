"""`python -m services.common.migrate_all`: apply the migrations of every schema, then exit.

Each process also migrates its own schema at start-up (under the same advisory lock), so this is not
required; it lets a deployment migrate once, before new replicas start (the Kubernetes migration Job
in deploy/kubernetes/base/migrate-job.yaml), and fail the rollout on a bad migration instead of
crash-looping the pods. Exit status 0 when every schema is current, 1 with one line on stderr otherwise.

Run it with an administrator's DSN after `python -m services.common.roles` (ADR 0011): a schema whose
service role exists is migrated as that role, so every table stays owned by the service that writes it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.db import create_pool, migrate
from services.common.errors import StartupError
from services.common.roles import DEFAULT_PREFIX, role_name
from services.common.settings import load_settings

PACKAGES = Path(__file__).resolve().parent.parent.parent
# Schema → its migrations, in the order the services start (none reads another's schema).
SCHEMAS = (
    ("jobs", PACKAGES / "services" / "jobs" / "migrations"),
    ("health", PACKAGES / "services" / "health" / "migrations"),
    ("probes", PACKAGES / "services" / "probes" / "migrations"),
    ("gateway", PACKAGES / "gateway" / "migrations"),
)


class MigrateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="B2X_", extra="ignore", frozen=True)

    database_url: str = Field(description="PostgreSQL DSN")
    db_connect_timeout_seconds: float = Field(default=10.0, gt=0, le=300)


async def migrate_all(
    database_url: str, connect_timeout: float = 10.0, *, prefix: str = DEFAULT_PREFIX
) -> dict[str, list[int]]:
    """Apply pending migrations of every schema; returns the versions applied now, per schema."""
    pool = await create_pool(
        database_url, application_name="b2x-migrate", min_size=1, max_size=1, connect_timeout=connect_timeout
    )
    try:
        applied: dict[str, list[int]] = {}
        for schema, directory in SCHEMAS:
            applied[schema] = await migrate(
                pool, schema, directory, as_role=await _service_role(pool, role_name(schema, prefix))
            )
        return applied
    finally:
        await pool.close()


async def _service_role(pool: asyncpg.Pool, role: str) -> str | None:
    """The service's role when it exists and this login may act as it (else migrate as ourselves)."""
    usable = await pool.fetchval(
        "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = $1 AND rolname <> current_user",
        role,
    )
    return role if usable else None


def main() -> int:
    try:
        settings = load_settings(MigrateSettings)
        applied = asyncio.run(migrate_all(settings.database_url, settings.db_connect_timeout_seconds))
    except StartupError as error:
        print(f"b2x-migrate: {error}", file=sys.stderr)
        return 1
    except asyncpg.PostgresError as error:
        print(f"b2x-migrate: a migration failed and was rolled back: {error}", file=sys.stderr)
        return 1
    for schema, versions in applied.items():
        done = ", ".join(str(v) for v in versions) if versions else "up to date"
        print(f"{schema}: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
