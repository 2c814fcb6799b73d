"""How the gRPC servers translate exceptions into status codes (services/common/grpc_server.status_for)."""

from __future__ import annotations

import asyncpg
import grpc

from services.common.grpc_server import status_for


def test_a_local_file_error_is_not_reported_as_a_database_outage() -> None:
    """A missing or unreadable file is INTERNAL (a defect or a configuration problem), while a refused or
    lost database connection stays UNAVAILABLE "the database is unavailable"."""
    for error in (FileNotFoundError(2, "No such file or directory", "/etc/b2x/ca.pem"), PermissionError(13, "x")):
        code, message = status_for(error)
        assert code is grpc.StatusCode.INTERNAL and "database" not in message
    for outage in (ConnectionRefusedError(111, "refused"), asyncpg.exceptions.ConnectionDoesNotExistError("gone")):
        assert status_for(outage) == (grpc.StatusCode.UNAVAILABLE, "the database is unavailable; try again shortly")
