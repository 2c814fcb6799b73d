"""What `b2c up` takes from the environment, read once into one typed object (`StackSettings`).

    B2X_BIND_HOST                          where the stack listens (default 127.0.0.1, loopback)
    B2X_JOBS_PORT … B2X_PROBES_METRICS_PORT   the stack's ports; defaults from DESIGN.md
    B2X_DEMO_ERP_PORT / _PIM_ / _CRM_      the simulated systems of --demo (default 18081-18083)
    B2X_DEMO_SMTP_PORT, B2X_DEMO_WEBHOOK_PORT  the demo's SMTP catcher and webhook sink (default 18025, 18084)
    B2X_DATABASE_URL, B2X_REDIS_URL        servers to use instead of the embedded ones
    B2X_DATA_DIR                           data directory (else $XDG_DATA_HOME/b2x, else ~/.local/share/b2x)
    B2X_LOG_FORMAT                         the services' log format (default json)

A port that is not a port number stops `b2c up` with a message naming its variable. Nothing else in
`b2c up` reads the environment; the services it starts get theirs from `StackPorts.env()` and the
supervisor (services read their own settings with `services.common.settings`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from b2c.errors import CliError
from b2c.stack.demo.systems import SYSTEMS


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
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
    demo: Mapping[str, int] = field(default_factory=dict)  # slug of a demo system → its port
    demo_smtp: int = 18025  # the demo's SMTP catcher (b2c.stack.demo.inbox)
    demo_webhook: int = 18084  # ...and its webhook sink / inbox page

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackPorts:
        env = os.environ if environ is None else environ
        return cls(
            jobs=_port(env, "B2X_JOBS_PORT", 50051),
            health=_port(env, "B2X_HEALTH_PORT", 50052),
            probes=_port(env, "B2X_PROBES_PORT", 50053),
            gateway=_port(env, "B2X_GATEWAY_PORT", 8080),
            jobs_metrics=_port(env, "B2X_JOBS_METRICS_PORT", 9101),
            health_metrics=_port(env, "B2X_HEALTH_METRICS_PORT", 9102),
            probes_metrics=_port(env, "B2X_PROBES_METRICS_PORT", 9103),
            # Locally the stack listens on loopback only, unless told otherwise.
            host=env.get("B2X_BIND_HOST", "127.0.0.1"),
            demo={s.slug: _port(env, s.port_variable, s.default_port) for s in SYSTEMS},
            demo_smtp=_port(env, "B2X_DEMO_SMTP_PORT", 18025),
            demo_webhook=_port(env, "B2X_DEMO_WEBHOOK_PORT", 18084),
        )

    @property
    def local_host(self) -> str:
        """Where a client on this machine reaches the stack (loopback when it listens everywhere)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104 - comparing, not binding

    @property
    def api_url(self) -> str:
        return f"http://{self.local_host}:{self.gateway}"

    def named(self) -> list[tuple[str, int]]:
        return [
            ("jobs gRPC", self.jobs), ("health gRPC", self.health), ("probes gRPC", self.probes),
            ("gateway HTTP", self.gateway), ("jobs metrics", self.jobs_metrics),
            ("health metrics", self.health_metrics), ("probes metrics", self.probes_metrics),
        ]  # fmt: skip

    def planned(self, demo: bool = False) -> list[tuple[str, int, str]]:
        """(what, port, variable) of every port the stack will listen on, the demo endpoints' with `demo`."""
        variables = ["B2X_JOBS_PORT", "B2X_HEALTH_PORT", "B2X_PROBES_PORT", "B2X_GATEWAY_PORT",
                     "B2X_JOBS_METRICS_PORT", "B2X_HEALTH_METRICS_PORT", "B2X_PROBES_METRICS_PORT"]  # fmt: skip
        found = [(what, port, var) for (what, port), var in zip(self.named(), variables, strict=True)]
        if demo:
            found += [(f"demo {s.name}", self.demo[s.slug], s.port_variable) for s in SYSTEMS]
            found += [("demo SMTP catcher", self.demo_smtp, "B2X_DEMO_SMTP_PORT"),
                      ("demo webhook sink", self.demo_webhook, "B2X_DEMO_WEBHOOK_PORT")]  # fmt: skip
        return found

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
            "B2X_DEMO_SMTP_PORT": str(self.demo_smtp), "B2X_DEMO_WEBHOOK_PORT": str(self.demo_webhook),
        }  # fmt: skip


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """$B2X_DATA_DIR, else $XDG_DATA_HOME/b2x, else ~/.local/share/b2x."""
    env = os.environ if environ is None else environ
    if explicit := env.get("B2X_DATA_DIR"):
        return Path(explicit).expanduser().resolve()
    return Path(env.get("XDG_DATA_HOME") or Path.home() / ".local/share") / "b2x"


@dataclass(frozen=True)
class StackSettings:
    ports: StackPorts
    database_url: str  # "" = start an embedded PostgreSQL
    redis_url: str  # "" = start an embedded Redis
    data_dir: Path
    log_format: str
    environ: Mapping[str, str]  # what the services inherit, as it was read

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, data_dir: Path | None = None) -> StackSettings:
        env = dict(os.environ if environ is None else environ)
        return cls(
            ports=StackPorts.from_env(env),
            database_url=env.get("B2X_DATABASE_URL", ""),
            redis_url=env.get("B2X_REDIS_URL", ""),
            data_dir=data_dir or default_data_dir(env),
            log_format=env.get("B2X_LOG_FORMAT", "json"),
            environ=env,
        )
