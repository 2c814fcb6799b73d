"""Redis probe: connect (TCP, TLS, AUTH, SELECT) and PING, on one fresh connection."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio.connection import Connection, SSLConnection
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.probes.domain import ErrorType, PhaseName, ProbeKind, Target
from services.probes.probing.checks.base import Attempt, CheckOutcome
from services.probes.probing.checks.net import resolve
from services.probes.probing.classify import make
from services.probes.probing.faults import CheckFailed, ProtocolViolation
from services.probes.probing.placeholders import Expanded


async def _ping(connection: Connection) -> Any:
    await connection.send_command("PING")
    return await connection.read_response()


async def _expect_pong(reply: Any) -> None:
    if reply not in (b"PONG", "PONG", True):
        raise ProtocolViolation(f"PING answered {reply!r} instead of PONG", "UNEXPECTED_REPLY")


class RedisCheck:
    kind = ProbeKind.REDIS

    async def run(self, target: Target, expanded: Expanded, attempt: Attempt) -> CheckOutcome:
        parts = urlsplit(expanded.endpoint)
        host, port = parts.hostname or "localhost", parts.port or 6379
        attempt.where = f"{host}:{port}"
        attempt.evidence.method, attempt.evidence.url = "PING", expanded.endpoint
        try:
            db = int(parts.path.strip("/") or 0)
        except ValueError:
            raise CheckFailed(
                make(ErrorType.SCHEMA_MISMATCH, "REDIS_DB_INDEX", "the Redis URL path must be a database number")
            ) from None
        addresses = await attempt.step(PhaseName.DNS, resolve(host, port), lambda infos: f"{host} → {infos[0][4][0]}")
        options: dict[str, Any] = {
            "port": port,
            "db": db,
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "socket_connect_timeout": attempt.timeout,
            "socket_timeout": attempt.timeout,
            # The engine owns retries and their history; the client must not retry behind our back.
            "retry": Retry(NoBackoff(), 0),
            "client_name": "b2x-probe",
        }
        connection: Connection
        if parts.scheme == "rediss":
            connection = SSLConnection(
                host=host,
                ssl_ca_certs=target.options.ca_file or None,
                ssl_cert_reqs="none" if target.options.tls_skip_verify else "required",
                ssl_check_hostname=not target.options.tls_skip_verify,
                **options,
            )
        else:
            connection = Connection(host=str(addresses[0][4][0]), **options)
        try:
            connecting = connection.connect()  # type: ignore[no-untyped-call]
            await attempt.step(PhaseName.TCP_CONNECT, connecting, "TCP connect, AUTH and SELECT")
            attempt.skip(PhaseName.TLS_HANDSHAKE, "negotiated inside the Redis connection phase")
            reply = await attempt.step(PhaseName.TIME_TO_FIRST_BYTE, _ping(connection), "PING")
            await attempt.step(PhaseName.PROTOCOL_CHECK, _expect_pong(reply), "PONG")
        finally:
            await connection.disconnect()
        return CheckOutcome(summary=f"Redis on {host}:{port} answers PING (db {db})")
