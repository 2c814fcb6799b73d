"""Settings of the jobs service process (B2X_JOBS_*)."""

from __future__ import annotations

from pydantic import Field, field_validator

from services.common.settings import CommonSettings, port_field
from services.jobs.domain import RetryPolicy, parse_attempts_by_type


class JobsSettings(CommonSettings):
    jobs_host: str = "0.0.0.0"  # noqa: S104 - listens on all interfaces inside containers
    jobs_port: int = port_field(50051, "gRPC port of the jobs service")
    jobs_metrics_port: int = port_field(9101, "Prometheus port of the jobs service; 0 turns it off")
    jobs_heartbeat_timeout_seconds: float = Field(
        default=90.0, ge=1, le=86400, description="a running job silent this long is failed as WORKER_LOST"
    )
    jobs_reaper_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    jobs_log_retention_days: int = Field(default=90, ge=1, le=3650)
    jobs_retry_base_seconds: float = Field(default=5.0, ge=0, le=3600)
    jobs_retry_max_seconds: float = Field(default=300.0, ge=0, le=86400)
    jobs_default_max_attempts: int = Field(default=3, ge=1, le=20)
    jobs_max_attempts: str = Field(default="", description="per type: ERP_ARTICLE_SYNC=5,ERP_ORDER_EXPORT=2")

    @field_validator("jobs_max_attempts")
    @classmethod
    def _attempts(cls, value: str) -> str:
        parse_attempts_by_type(value)
        return value

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_seconds=self.jobs_retry_base_seconds,
            max_seconds=self.jobs_retry_max_seconds,
            default_max_attempts=self.jobs_default_max_attempts,
            max_attempts_by_type=parse_attempts_by_type(self.jobs_max_attempts),
        )
