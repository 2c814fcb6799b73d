"""Shared fixtures: real PostgreSQL and Redis, fresh per test, and in-process gRPC servers on port 0.

PostgreSQL and Redis come from `B2X_TEST_DATABASE_URL` / `B2X_TEST_REDIS_URL` when set, else from the
embedded servers (`services.common.embedded`) started once for the session. Each test gets its own
database and its own Redis namespace, so tests never see each other's rows or events.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from services.common.embedded import EmbeddedPostgres, EmbeddedRedis
from services.common.settings import CommonSettings
from tests.support import ServiceHarness


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server where tests may create databases."""
    external = os.environ.get("B2X_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres.start(tmp_path_factory.mktemp("pg") / "data", durable=False)
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("B2X_TEST_REDIS_URL")
    if external:
        yield external
        return
    server = EmbeddedRedis.start(tmp_path_factory.mktemp("redis"), persist=False)
    try:
        yield server.url()
    finally:
        server.stop()


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{database}"


@pytest.fixture
async def database_url(pg_admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for this test; dropped afterwards."""
    name = f"b2x_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield _with_database(pg_admin_url, name)
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def namespace() -> str:
    """A Redis namespace of this test's own, so parallel tests never share channels or keys."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(database_url: str, redis_server_url: str, namespace: str) -> CommonSettings:
    return CommonSettings(database_url=database_url, redis_url=redis_server_url, namespace=namespace)


@pytest.fixture
async def harness(settings: CommonSettings) -> AsyncIterator[ServiceHarness]:
    """Starts services in this process on port 0 against this test's database and namespace."""
    async with ServiceHarness(settings) as h:
        yield h


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
