"""Numbered SQL migrations: applied once, in order, atomically, even with replicas starting together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from services.common.db import migrate
from services.common.errors import StartupError


async def test_replicas_starting_together_apply_each_migration_once(database_url: str, tmp_path: Path) -> None:
    """Five concurrent runners: each migration runs once (a second run of 002 would fail on the insert key)."""
    (tmp_path / "001_create.sql").write_text("CREATE TABLE demo.t (id int PRIMARY KEY);")
    (tmp_path / "002_seed.sql").write_text("INSERT INTO demo.t VALUES (1);")
    pool = await asyncpg.create_pool(database_url, min_size=5, max_size=5)
    try:
        applied = await asyncio.gather(*(migrate(pool, "demo", tmp_path) for _ in range(5)))
        assert sorted(v for run in applied for v in run) == [1, 2]
        assert await pool.fetchval("SELECT count(*) FROM demo.t") == 1
        assert await migrate(pool, "demo", tmp_path) == []
    finally:
        await pool.close()


async def test_a_failing_migration_leaves_nothing_half_done(database_url: str, tmp_path: Path) -> None:
    """A migration that fails midway rolls back entirely and is not recorded; the next start retries it."""
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE demo.a (id int);")
    (tmp_path / "002_broken.sql").write_text("CREATE TABLE demo.b (id int); SELECT no_such_function();")
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(pool, "demo", tmp_path)
        assert await pool.fetchval("SELECT to_regclass('demo.a')") is not None
        assert await pool.fetchval("SELECT to_regclass('demo.b')") is None
        assert await pool.fetchval("SELECT array_agg(version) FROM demo.schema_migrations") == [1]
    finally:
        await pool.close()


async def test_a_misnamed_migration_file_stops_start_up(database_url: str, tmp_path: Path) -> None:
    """Files must be named NNN_name.sql; anything else is a StartupError naming the file."""
    (tmp_path / "1-create.sql").write_text("SELECT 1;")
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        with pytest.raises(StartupError, match=r"1-create\.sql"):
            await migrate(pool, "demo", tmp_path)
    finally:
        await pool.close()
