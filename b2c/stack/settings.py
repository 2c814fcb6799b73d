"""The stack's ports: defaults from DESIGN.md, each overridable by its B2X_* variable."""

from __future__ import annotations

import os
from dataclasses import dataclass

from b2c.errors import CliError
from services.common.embedded import port_is_free


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise CliError(f"{name} must be a port number (got {raw!r})")
    return int(raw)


@dataclass(frozen=True)
class StackPorts:
    jobs: int
    health: int
    probes: int
    gateway: int
    jobs_metrics: int
    health_metrics: int
    probes_metrics: int
    host: str

    @classmethod
    def from_env(cls) -> StackPorts:
        return cls(
            jobs=_port("B2X_JOBS_PORT", 50051),
            health=_port("B2X_HEALTH_PORT", 50052),
            probes=_port("B2X_PROBES_PORT", 50053),
            gateway=_port("B2X_GATEWAY_PORT", 8080),
            jobs_metrics=_port("B2X_JOBS_METRICS_PORT", 9101),
            health_metrics=_port("B2X_HEALTH_METRICS_PORT", 9102),
            probes_metrics=_port("B2X_PROBES_METRICS_PORT", 9103),
            # Locally the stack listens on loopback only, unless told otherwise.
            host=os.environ.get("B2X_BIND_HOST", "127.0.0.1"),
        )

    @property
    def api_url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104 - comparing, not binding
        return f"http://{shown}:{self.gateway}"

    def named(self) -> list[tuple[str, int]]:
        return [
            ("jobs gRPC", self.jobs), ("health gRPC", self.health), ("probes gRPC", self.probes),
            ("gateway HTTP", self.gateway), ("jobs metrics", self.jobs_metrics),
            ("health metrics", self.health_metrics), ("probes metrics", self.probes_metrics),
        ]  # fmt: skip

    def env(self) -> dict[str, str]:
        return {
            "B2X_JOBS_HOST": self.host, "B2X_JOBS_PORT": str(self.jobs),
            "B2X_HEALTH_HOST": self.host, "B2X_HEALTH_PORT": str(self.health),
            "B2X_PROBES_HOST": self.host, "B2X_PROBES_PORT": str(self.probes),
            "B2X_GATEWAY_HOST": self.host, "B2X_GATEWAY_PORT": str(self.gateway),
            "B2X_JOBS_METRICS_PORT": str(self.jobs_metrics),
            "B2X_HEALTH_METRICS_PORT": str(self.health_metrics),
            "B2X_PROBES_METRICS_PORT": str(self.probes_metrics),
            "B2X_JOBS_ADDR": f"127.0.0.1:{self.jobs}", "B2X_HEALTH_ADDR": f"127.0.0.1:{self.health}",
            "B2X_PROBES_ADDR": f"127.0.0.1:{self.probes}",
        }  # fmt: skip


def check_free(ports: StackPorts, demo: bool = False) -> None:
    """Fail before starting anything when a port is taken, naming the part and its variable."""
    if demo:
        from b2c.stack.demo.config import SYSTEMS  # noqa: PLC0415

        for system in SYSTEMS:
            if not port_is_free(system.port(), "127.0.0.1"):
                taken = f"port {system.port()} (demo {system.name}) is already in use"
                raise CliError(f"{taken}; set {system.port_variable} to move it")
    for (what, port), var in zip(
        ports.named(),
        ["B2X_JOBS_PORT", "B2X_HEALTH_PORT", "B2X_PROBES_PORT", "B2X_GATEWAY_PORT", "B2X_JOBS_METRICS_PORT",
         "B2X_HEALTH_METRICS_PORT", "B2X_PROBES_METRICS_PORT"],
        strict=True,
    ):  # fmt: skip
        if not port_is_free(port, "127.0.0.1"):
            raise CliError(f"port {port} ({what}) is already in use — is another stack running? Set {var} to move it")
