"""PostgreSQL probe: connect (TCP, TLS negotiation, startup, authentication) and `SELECT 1`."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import asyncpg

from services.probes.domain import ErrorType, PhaseName, ProbeKind, Target
from services.probes.probing.checks.base import Attempt, CheckOutcome
from services.probes.probing.checks.net import resolve
from services.probes.probing.classify import make
from services.probes.probing.faults import CheckFailed
from services.probes.probing.placeholders import Expanded


async def _expect_one(value: object) -> None:
    if value != 1:
        raise CheckFailed(make(ErrorType.SCHEMA_MISMATCH, "UNEXPECTED_RESULT", f"SELECT 1 returned {value!r}"))


class PostgresCheck:
    kind = ProbeKind.POSTGRES

    async def run(self, target: Target, expanded: Expanded, attempt: Attempt) -> CheckOutcome:
        parts = urlsplit(expanded.endpoint)
        host, port = parts.hostname or "localhost", parts.port or 5432
        attempt.where = f"{host}:{port}"
        attempt.evidence.method, attempt.evidence.url = "SELECT 1", expanded.endpoint
        addresses = await attempt.step(PhaseName.DNS, resolve(host, port), lambda infos: f"{host} → {infos[0][4][0]}")
        # Connect to the address just resolved so the DNS time is not paid twice, unless the server
        # certificate must match the host name.
        connect_host = host if "sslmode=verify" in parts.query else str(addresses[0][4][0])
        user = unquote(parts.username or "postgres")
        connection = await attempt.step(
            PhaseName.TCP_CONNECT,
            asyncpg.connect(
                expanded.endpoint,
                host=connect_host,
                port=port,
                timeout=attempt.timeout,
                server_settings={"application_name": "b2x-probe"},
            ),
            f"TCP connect, startup and authentication as {user}",
        )
        attempt.skip(PhaseName.TLS_HANDSHAKE, "negotiated inside the PostgreSQL connection phase")
        try:
            value = await attempt.step(PhaseName.TIME_TO_FIRST_BYTE, connection.fetchval("SELECT 1"), "SELECT 1")
            await attempt.step(PhaseName.PROTOCOL_CHECK, _expect_one(value), "SELECT 1 returned 1")
            version = connection.get_server_version()
        finally:
            await connection.close(timeout=attempt.timeout)
        database = unquote(parts.path.lstrip("/")) or user
        return CheckOutcome(summary=f"PostgreSQL {version.major}.{version.minor} answers on database {database}")
