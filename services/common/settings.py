"""Typed settings read once from `B2X_*` environment variables.

Every process builds one settings object at start-up with `load_settings(SomeSettings)`; nothing
else reads `os.environ`. A missing or malformed value raises `StartupError` with one line that names
the variable, which `main()` prints before exiting.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.errors import ConfigurationError
from services.common.tls import GrpcTLS

ENV_PREFIX = "B2X_"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _check_url(value: str, schemes: tuple[str, ...], what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ValueError(f"must be a {what} URL starting with {' or '.join(s + '://' for s in schemes)}")
    if parts.scheme not in ("unix",) and not parts.hostname and "host=" not in parts.query:
        raise ValueError(f"{what} URL has no host")
    return value


class CommonSettings(BaseSettings):
    """What every service process needs."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str = Field(description="PostgreSQL DSN, postgresql://user@host:port/db")
    redis_url: str = Field(description="Redis URL, redis://host:port/0")
    namespace: str = Field(
        default="b2x",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$",
        description="Prefix of Redis channels and keys; lets several stacks share one Redis",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    db_pool_min: int = Field(default=1, ge=0, le=100)
    db_pool_max: int = Field(default=10, ge=1, le=200)
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    db_command_timeout_seconds: float = Field(
        default=8.0, gt=0, le=600, description="longest a PostgreSQL statement or pool checkout may take"
    )
    redis_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, description="longest a Redis command may take before it counts as a failure"
    )
    grpc_grace_seconds: float = Field(default=5.0, ge=0, le=300)
    # Where the other services are, for those that call them (gateway, probes).
    jobs_addr: str = "localhost:50051"
    health_addr: str = "localhost:50052"
    probes_addr: str = "localhost:50053"
    grpc_deadline_seconds: float = Field(default=10.0, gt=0, le=300)
    grpc_keepalive_seconds: float = Field(
        default=30.0, ge=1, le=3600, description="clients ping idle gRPC connections this often; servers allow it"
    )
    # TLS between the services (services/common/tls.py); empty = plaintext on a trusted network.
    grpc_tls_cert_file: str = Field(default="", description="PEM certificate this process serves gRPC with")
    grpc_tls_key_file: str = Field(default="", description="PEM private key of grpc_tls_cert_file")
    grpc_tls_ca_file: str = Field(default="", description="PEM CA that clients verify services against")
    grpc_tls_client_auth: bool = Field(default=False, description="servers require client certificates (mTLS)")
    grpc_tls_server_name: str = Field(default="", description="name to expect in the services' certificates")
    # How often state gauges (jobs by status, service status, latest resources) are re-read from PostgreSQL.
    metrics_snapshot_seconds: float = Field(default=15.0, ge=0.1, le=3600)

    def grpc_tls(self) -> GrpcTLS:
        return GrpcTLS(
            self.grpc_tls_cert_file,
            self.grpc_tls_key_file,
            self.grpc_tls_ca_file,
            self.grpc_tls_client_auth,
            self.grpc_tls_server_name,
        )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return _check_url(value, ("postgresql", "postgres"), "PostgreSQL")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        value = _check_url(value, ("redis", "rediss", "unix"), "Redis")
        parts = urlsplit(value)
        local = parts.scheme == "unix" or (parts.hostname or "") in _LOOPBACK
        if not local and not parts.password:
            raise ValueError("a Redis on another host needs a password: redis://:PASSWORD@host:port/0")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def port_field(default: int, what: str) -> int:
    """A TCP port setting; 0 means "pick a free one" for listeners and "off" for metrics."""
    result: int = Field(default=default, ge=0, le=65535, description=what)
    return result


T = TypeVar("T", bound=BaseSettings)


def describe_validation_error(error: ValidationError, prefix: str = ENV_PREFIX) -> str:
    """One line naming the first offending variable, e.g. `B2X_JOBS_PORT: Input should be ...`."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "?"
    variable = f"{prefix}{field}".upper()
    if first["type"] == "missing":
        return f"{variable} is required but not set"
    received = first.get("input")
    shown = f" (got {received!r})" if isinstance(received, str | int | float) and "url" not in field else ""
    message = first["msg"].removeprefix("Value error, ")
    return f"{variable}: {message}{shown}"


def load_settings(cls: type[T], **overrides: Any) -> T:
    """Build settings from the environment (plus explicit overrides) or raise a one-line StartupError."""
    try:
        return cls(**overrides)
    except ValidationError as error:
        prefix = cls.model_config.get("env_prefix") or ENV_PREFIX
        raise ConfigurationError(describe_validation_error(error, prefix)) from None
