"""Settings of the probes service process (B2X_PROBES_*)."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from services.common.settings import CommonSettings, port_field


class ProbesSettings(CommonSettings):
    probes_host: str = "0.0.0.0"  # noqa: S104 - listens on all interfaces inside containers
    probes_port: int = port_field(50053, "gRPC port of the probes service")
    probes_metrics_port: int = port_field(9103, "Prometheus port of the probes service; 0 turns it off")
    probes_fast_ms: float = Field(default=200.0, gt=0, description="A test at most this long is rated Fast")
    probes_slow_ms: float = Field(default=1000.0, gt=0, description="A test at least this long is rated Slow")
    probes_timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="Default per-phase timeout")
    probes_max_retries: int = Field(default=2, ge=0, le=10, description="Retries of transient failures")
    probes_retry_backoff_seconds: float = Field(default=0.5, ge=0, le=60, description="First retry delay; doubles")
    probes_max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="Body bytes kept for checks and evidence"
    )
    probes_max_download_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024,
        description="Body bytes read at most; the download phase says so when a response is larger",
    )  # fmt: skip

    # Periodic agents (services/probes/agent).
    probes_agent_enabled: bool = Field(default=True, description="Run the periodic check and sampling agents")
    probes_targets_refresh_seconds: float = Field(default=30.0, gt=0, le=3600, description="Registry re-read")
    probes_lease_seconds: float = Field(default=10.0, gt=0, le=300, description="Longest lease on a target")
    probes_lease_tick_seconds: float = Field(default=1.0, gt=0, le=30, description="Lease renewal period")
    probes_max_concurrent_checks: int = Field(default=200, ge=1, le=5000)
    probes_flush_seconds: float = Field(default=1.0, gt=0, le=60, description="Batching of stored results")
    probes_breaker_failures: int = Field(default=5, ge=1, le=1000, description="Failed checks that open it")
    probes_breaker_cooldown_seconds: float = Field(default=60.0, gt=0, le=86_400, description="First open period")
    probes_breaker_max_cooldown_seconds: float = Field(default=900.0, gt=0, le=86_400, description="Cap; doubles")
    # The health service consumes this stream; its length is how long health may be down without losing
    # checks from its rollups: 500 000 entries are ~4 h at 1 000 targets every 30 s (~150 MB of Redis).
    probes_results_stream_maxlen: int = Field(default=500_000, ge=0, description="Redis stream of check states")

    # Resource sampling (services/probes/agent/resources).
    probes_resource_interval_seconds: float = Field(default=5.0, gt=0, le=3600, description="Sampling period")

    # Retention, in days; whole partitions are dropped.
    probes_results_retention_days: int = Field(default=14, ge=1, le=3660)
    probes_minute_rollups_retention_days: int = Field(default=30, ge=1, le=3660)
    probes_hour_rollups_retention_days: int = Field(default=400, ge=1, le=3660)
    probes_samples_retention_days: int = Field(default=3, ge=1, le=3660)
    probes_errors_retention_days: int = Field(default=90, ge=1, le=3660)

    @field_validator("probes_slow_ms")
    @classmethod
    def _slow_above_fast(cls, value: float, info: ValidationInfo) -> float:
        fast = info.data.get("probes_fast_ms")
        if fast is not None and value <= fast:
            raise ValueError(f"must be above B2X_PROBES_FAST_MS ({fast:g})")
        return value

    @field_validator("probes_breaker_max_cooldown_seconds")
    @classmethod
    def _cap_above_cooldown(cls, value: float, info: ValidationInfo) -> float:
        first = info.data.get("probes_breaker_cooldown_seconds")
        if first is not None and value < first:
            raise ValueError(f"must not be below B2X_PROBES_BREAKER_COOLDOWN_SECONDS ({first:g})")
        return value
