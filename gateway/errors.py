"""GraphQL errors with `extensions.code`, and the one table from gRPC status codes to those codes.

Codes follow the common Apollo vocabulary so clients can branch on them:
UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT, NOT_FOUND, FAILED_PRECONDITION, CONFLICT,
RATE_LIMITED, PAYLOAD_TOO_LARGE, SERVICE_UNAVAILABLE, GRAPHQL_PARSE_FAILED,
GRAPHQL_VALIDATION_FAILED, INTERNAL_SERVER_ERROR.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import grpc
from graphql import GraphQLError

from services.common import errors as domain
from services.common.db import CONNECTION_ERRORS

# The gateway's own PostgreSQL (API keys, audit) refusing, failing or hanging past its timeout.
DATABASE_DOWN: tuple[type[BaseException], ...] = CONNECTION_ERRORS
DATABASE_DOWN_MESSAGE = "the service is unavailable: its database does not answer; try again shortly"

GRPC_TO_CODE: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.INVALID_ARGUMENT: "BAD_USER_INPUT",
    grpc.StatusCode.OUT_OF_RANGE: "BAD_USER_INPUT",
    grpc.StatusCode.NOT_FOUND: "NOT_FOUND",
    grpc.StatusCode.ALREADY_EXISTS: "CONFLICT",
    grpc.StatusCode.FAILED_PRECONDITION: "FAILED_PRECONDITION",
    grpc.StatusCode.ABORTED: "CONFLICT",
    grpc.StatusCode.PERMISSION_DENIED: "FORBIDDEN",
    grpc.StatusCode.UNAUTHENTICATED: "UNAUTHENTICATED",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "RATE_LIMITED",
    grpc.StatusCode.UNAVAILABLE: "SERVICE_UNAVAILABLE",
    grpc.StatusCode.DEADLINE_EXCEEDED: "SERVICE_UNAVAILABLE",
}

DOMAIN_TO_CODE: dict[type[domain.DomainError], str] = {
    domain.InvalidArgumentError: "BAD_USER_INPUT",
    domain.NotFoundError: "NOT_FOUND",
    domain.AlreadyExistsError: "CONFLICT",
    domain.FailedPreconditionError: "FAILED_PRECONDITION",
    domain.PermissionDeniedError: "FORBIDDEN",
    domain.ResourceExhaustedError: "RATE_LIMITED",
    domain.UnavailableError: "SERVICE_UNAVAILABLE",
}

# Codes whose errors are expected answers, not faults worth a stack trace in the log.
EXPECTED_CODES = frozenset(
    {
        "UNAUTHENTICATED", "FORBIDDEN", "BAD_USER_INPUT", "NOT_FOUND", "FAILED_PRECONDITION", "CONFLICT",
        "RATE_LIMITED", "PAYLOAD_TOO_LARGE", "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED",
    }
)  # fmt: skip


def gql_error(message: str, code: str, **extra: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extra})


def unauthenticated(message: str = "an API key is required: send 'Authorization: Bearer <key>'") -> GraphQLError:
    return gql_error(message, "UNAUTHENTICATED")


def forbidden(message: str) -> GraphQLError:
    return gql_error(message, "FORBIDDEN")


def from_rpc_error(error: grpc.aio.AioRpcError, service: str) -> GraphQLError:
    code = GRPC_TO_CODE.get(error.code(), "INTERNAL_SERVER_ERROR")
    if code == "SERVICE_UNAVAILABLE":
        message = f"the {service} service is unavailable: {error.details() or error.code().name}"
    elif code == "INTERNAL_SERVER_ERROR":
        message = f"the {service} service failed ({error.code().name})"
    else:
        message = error.details() or error.code().name
    return gql_error(message, code)


@contextlib.contextmanager
def translate_domain_errors() -> Iterator[None]:
    """Turn domain errors raised inside the gateway into GraphQL errors with codes."""
    try:
        yield
    except domain.DomainError as error:
        for cls in type(error).__mro__:
            if cls in DOMAIN_TO_CODE:
                raise gql_error(error.message, DOMAIN_TO_CODE[cls]) from None
        raise gql_error(error.message, "INTERNAL_SERVER_ERROR") from None


def classify_unlabelled(error: GraphQLError) -> str:
    """A code for errors GraphQL itself produced (parse, validation, variable coercion)."""
    message = error.message
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if message.startswith("Variable '$") or message.startswith('Variable "$') or "got invalid value" in message:
        return "BAD_USER_INPUT"
    if "does not exist in" in message and "enum" in message:
        return "BAD_USER_INPUT"
    if error.original_error is None:
        return "GRAPHQL_VALIDATION_FAILED"
    if isinstance(error.original_error, DATABASE_DOWN):
        return "SERVICE_UNAVAILABLE"
    return "INTERNAL_SERVER_ERROR"
