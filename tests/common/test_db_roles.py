"""Least privilege in real PostgreSQL: each service's role owns its schema only, migrations still run as
that role under the advisory lock, and the audit log refuses every change but an insert."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from gateway.app import MIGRATIONS as GATEWAY_MIGRATIONS
from services.common.db import create_pool, migrate
from services.common.migrate_all import migrate_all
from services.common.roles import SERVICES, load_passwords, provision, role_name
from services.jobs.main import MIGRATIONS as JOBS_MIGRATIONS


async def _drop_roles(database_url: str, prefix: str) -> None:
    admin = await asyncpg.connect(database_url)
    try:
        for service in SERVICES:
            await admin.execute(f'DROP OWNED BY "{role_name(service, prefix)}" CASCADE')
            await admin.execute(f'DROP ROLE IF EXISTS "{role_name(service, prefix)}"')
    finally:
        await admin.close()


@pytest.fixture
async def roles(database_url: str) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """Roles with a prefix of this test's own (roles are cluster-wide), dropped afterwards."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    dsns = await provision(database_url, load_passwords(None), prefix=prefix)
    yield prefix, dsns
    await _drop_roles(database_url, prefix)


async def test_each_service_migrates_and_owns_only_its_own_schema(roles: tuple[str, dict[str, str]]) -> None:
    """The jobs role migrates its schema and writes there; it can neither read the gateway's audit log nor
    create anything in another schema."""
    prefix, dsns = roles
    gateway = await create_pool(dsns["gateway"], application_name="t-gateway", min_size=1, max_size=1)
    jobs = await create_pool(dsns["jobs"], application_name="t-jobs", min_size=1, max_size=1)
    try:
        await migrate(gateway, "gateway", GATEWAY_MIGRATIONS)
        await migrate(jobs, "jobs", JOBS_MIGRATIONS)
        owner = await jobs.fetchval("SELECT tableowner FROM pg_tables WHERE schemaname = 'jobs' AND tablename = 'jobs'")
        assert owner == role_name("jobs", prefix)
        assert await jobs.fetchval("SELECT current_user") == role_name("jobs", prefix)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await jobs.fetch("SELECT * FROM gateway.audit_log")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await jobs.execute("CREATE TABLE gateway.evil (x int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await jobs.execute("CREATE TABLE public.evil (x int)")
        assert not await jobs.fetchval("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
    finally:
        await gateway.close()
        await jobs.close()


async def test_the_migration_job_run_as_an_administrator_leaves_every_table_to_its_services_role(
    database_url: str, roles: tuple[str, dict[str, str]]
) -> None:
    """`python -m services.common.migrate_all` with the administrator's DSN (the Kubernetes migration Job)
    migrates each schema as its role, so the services can still migrate and write their own tables later."""
    prefix, dsns = roles
    applied = await migrate_all(database_url, prefix=prefix)
    assert all(applied[schema] for schema in ("jobs", "health", "probes", "gateway"))
    admin = await asyncpg.connect(database_url)
    try:
        owners = await admin.fetch(
            "SELECT schemaname, tableowner FROM pg_tables WHERE schemaname = ANY($1::text[])", list(SERVICES)
        )
    finally:
        await admin.close()
    assert owners
    assert {(r["schemaname"], r["tableowner"]) for r in owners} == {
        (r["schemaname"], role_name(r["schemaname"], prefix)) for r in owners
    }
    jobs = await create_pool(dsns["jobs"], application_name="t-jobs", min_size=1, max_size=1)
    try:
        assert await migrate(jobs, "jobs", JOBS_MIGRATIONS) == []  # nothing left, nothing refused
        await jobs.execute(
            "INSERT INTO jobs.jobs (id, root_job_id, job_type, tenant_id, status)"
            " SELECT id, id, 'ERP_STOCK_SYNC', 'default', 'QUEUED' FROM (SELECT gen_random_uuid() AS id) AS new"
        )
    finally:
        await jobs.close()


async def test_the_audit_log_is_append_only_in_the_database(roles: tuple[str, dict[str, str]]) -> None:
    """As the gateway's own role, inserting works; UPDATE, DELETE and TRUNCATE are refused."""
    _, dsns = roles
    pool = await create_pool(dsns["gateway"], application_name="t-gateway", min_size=1, max_size=1)
    try:
        await migrate(pool, "gateway", GATEWAY_MIGRATIONS)
        await pool.execute("INSERT INTO gateway.audit_log (action, outcome) VALUES ('revokeApiKey', 'ok')")
        for statement in (
            "UPDATE gateway.audit_log SET outcome = 'error'",
            "DELETE FROM gateway.audit_log",
            "TRUNCATE gateway.audit_log",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await pool.execute(statement)
        assert await pool.fetchval("SELECT count(*) FROM gateway.audit_log") == 1
    finally:
        await pool.close()


async def test_provisioning_an_existing_installation_hands_its_tables_to_the_roles(database_url: str) -> None:
    """Tables a superuser made before the roles existed move to the service's role; running it twice is fine."""
    admin = await create_pool(database_url, application_name="t-admin", min_size=1, max_size=1)
    try:
        await migrate(admin, "jobs", JOBS_MIGRATIONS)
    finally:
        await admin.close()
    prefix = f"t{uuid.uuid4().hex[:8]}"
    passwords = load_passwords(None)
    try:
        await provision(database_url, passwords, prefix=prefix)
        dsns = await provision(database_url, passwords, prefix=prefix)
        jobs = await asyncpg.connect(dsns["jobs"])
        try:
            await jobs.execute("INSERT INTO jobs.job_steps SELECT * FROM jobs.job_steps")  # owner may write
            owners = await jobs.fetch("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'jobs'")
            assert {r["tableowner"] for r in owners} == {role_name("jobs", prefix)}
        finally:
            await jobs.close()
    finally:
        await _drop_roles(database_url, prefix)
