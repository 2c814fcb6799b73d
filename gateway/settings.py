"""Settings of the gateway process (B2X_GATEWAY_* and friends)."""

from __future__ import annotations

import ssl

from pydantic import Field

from services.common.errors import StartupError
from services.common.settings import CommonSettings, port_field
from services.common.tls import server_context


class GatewaySettings(CommonSettings):
    gateway_host: str = "0.0.0.0"  # noqa: S104 - listens on all interfaces inside containers
    gateway_port: int = port_field(8080, "HTTP port of the gateway (/graphql, /health/*, /metrics)")
    max_query_depth: int = Field(default=12, ge=2, le=50)
    max_aliases: int = Field(default=30, ge=1, le=500)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    rate_limit_per_minute: int = Field(default=1200, ge=0, description="requests per API key per minute; 0 = off")
    api_key_cache_seconds: float = Field(default=10.0, ge=0, le=3600)
    max_subscriptions_per_connection: int = Field(default=50, ge=1, le=1000)
    max_query_tokens: int = Field(default=2000, ge=100, le=100_000, description="parser limit per document")
    max_field_repeats: int = Field(
        default=10, ge=2, le=1000, description="times one field may be selected in one selection set"
    )
    auth_failures_per_minute: int = Field(
        default=30, ge=0, description="failed authentications per client address per minute; 0 = off"
    )
    websocket_key_recheck_seconds: float = Field(
        default=15.0, gt=0, le=3600, description="how often open websockets' keys are verified again"
    )
    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses or networks whose X-Forwarded-For is believed; empty: none",
    )
    public_url: str = Field(default="", description="URL printed for people; defaults to http://host:port")
    tls_cert_file: str = Field(default="", description="PEM certificate (chain) for HTTPS; with tls_key_file")
    tls_key_file: str = Field(default="", description="PEM private key of tls_cert_file")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The HTTPS context (TLS 1.2 at least) when B2X_TLS_CERT_FILE and B2X_TLS_KEY_FILE are set, else None."""
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise StartupError("B2X_TLS_CERT_FILE and B2X_TLS_KEY_FILE must be set together")
        if not self.tls_cert_file:
            return None
        return server_context(
            self.tls_cert_file, self.tls_key_file, cert_var="B2X_TLS_CERT_FILE", key_var="B2X_TLS_KEY_FILE"
        )
