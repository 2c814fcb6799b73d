"""Domain errors, raised by services and translated once at each transport boundary.

    DomainError
    ├── InvalidArgumentError      bad input: gRPC INVALID_ARGUMENT, GraphQL BAD_USER_INPUT
    ├── NotFoundError             unknown id: NOT_FOUND
    ├── AlreadyExistsError        duplicate key: ALREADY_EXISTS
    ├── FailedPreconditionError   wrong state for the action: FAILED_PRECONDITION
    ├── PermissionDeniedError     caller may not do this: PERMISSION_DENIED
    ├── ResourceExhaustedError    a limit was hit: RESOURCE_EXHAUSTED
    └── UnavailableError          a dependency (PostgreSQL, Redis, a service) is down: UNAVAILABLE

The table that maps them to gRPC status codes is `STATUS_FOR` in `services.common.grpc_server`; the
gateway's (`GRPC_TO_CODE` in `gateway/errors.py`) maps gRPC codes to GraphQL `extensions.code`.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a caller can act on; the message is shown to the caller as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgumentError(DomainError):
    """The request is malformed or a value is out of range."""


class NotFoundError(DomainError):
    """The named entity does not exist (or is outside the caller's scope)."""


class AlreadyExistsError(DomainError):
    """An entity with the same unique key exists."""


class FailedPreconditionError(DomainError):
    """The entity is in a state that does not allow the action (retry of a running job...)."""


class PermissionDeniedError(DomainError):
    """The caller is known but not allowed to do this."""


class ResourceExhaustedError(DomainError):
    """A size, rate or count limit was exceeded."""


class UnavailableError(DomainError):
    """A dependency is unreachable; trying again later may succeed."""


class StartupError(Exception):
    """A process cannot start (configuration, unreachable dependency); the message is one line."""


# sysexits.h EX_CONFIG: a supervisor (b2c up) stops at once instead of restarting into the same error.
EXIT_CONFIG = 78


class ConfigurationError(StartupError):
    """The process is configured wrongly (a setting, the config file); starting again will not help."""
