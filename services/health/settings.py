"""Settings of the health service process (B2X_HEALTH_*, B2X_CONFIG_FILE)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from services.common.settings import CommonSettings, port_field


class HealthSettings(CommonSettings):
    health_host: str = "0.0.0.0"  # noqa: S104 - listens on all interfaces inside containers
    health_port: int = port_field(50052, "gRPC port of the health service")
    health_metrics_port: int = port_field(9102, "Prometheus port of the health service; 0 turns it off")
    # Unset: the registry is managed over the API only, and file-owned services are left as they are.
    config_file: Path | None = Field(default=None, description="Declarative file of connected services (YAML)")

    # Off by default for a bare service; `b2c up` and the compose file turn it on (registry/self_monitoring.py).
    health_self_monitoring: bool = Field(
        default=False, description="Check B2X's own PostgreSQL, Redis, jobs and probes services as connected services"
    )

    # The aggregation: check states from the probes' Redis Stream, resource samples from the bus.
    health_consumer_name: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_.:-]{0,100}$",
        description="This replica's name in the check-states consumer group; default the host name. Keep it "
        "stable across restarts so a restarted replica finishes its own unacknowledged entries first",
    )
    health_stream_batch: int = Field(default=500, ge=1, le=10_000, description="Check states read per batch")
    health_stream_block_ms: int = Field(default=2000, ge=10, le=60_000, description="XREADGROUP block timeout")
    health_claim_idle_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Entries pending this long with another consumer are taken over"
    )
    health_resource_flush_seconds: float = Field(default=1.0, gt=0, le=60, description="Resource samples batching")
    health_rollup_retention_days: int = Field(default=400, ge=8, le=3660, description="Hourly check rollups kept")
    health_alert_sweep_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="How often failure-rate windows are re-checked and history purged"
    )
    # The same variable the probes read: the threshold is theirs, the reason quotes it.
    probes_slow_ms: float = Field(default=1000.0, gt=0, description="A check at least this long is rated Slow")

    @field_validator("config_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `B2X_CONFIG_FILE=` in a compose file means "no file", not "the current directory".
        return None if isinstance(value, str) and not value.strip() else value
