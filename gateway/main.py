"""Composition root of the gateway: `python -m gateway` runs it under uvicorn."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.common.errors import EXIT_CONFIG, ConfigurationError, StartupError
from services.common.logging import configure_logging
from services.common.settings import load_settings
from services.common.tracing import configure_tracing


def server_config(
    settings: GatewaySettings, app: Any, *, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    """How the gateway is served, in production and in tests alike: HTTPS with our own TLS context when
    B2X_TLS_* are set, websocket messages no larger than a request body, X-Forwarded-For believed only
    from B2X_TRUSTED_PROXIES.

    uvicorn's own TLS context would accept its default cipher list and leave the floor to OpenSSL; ours
    sets TLS 1.2 as the minimum (services/common/tls.py).
    """
    context = settings.ssl_context()  # StartupError names the variable when a file is wrong
    trusted = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    config = uvicorn.Config(
        app,
        host=settings.gateway_host if host is None else host,
        port=settings.gateway_port if port is None else port,
        log_config=None,  # our structlog handler formats uvicorn's records too
        access_log=False,
        ws="websockets-sansio",
        ws_max_size=settings.max_body_bytes,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.grpc_grace_seconds),
    )
    if context is not None:
        config.load()
        config.ssl = context
    return config


def run() -> None:
    try:
        settings = load_settings(GatewaySettings)
        configure_logging("gateway", settings.log_level, settings.log_format)
        configure_tracing("gateway")
        config = server_config(settings, create_app(settings))
    except StartupError as error:
        print(f"b2x-gateway: {error}", file=sys.stderr)
        sys.exit(EXIT_CONFIG if isinstance(error, ConfigurationError) else 1)
    server = uvicorn.Server(config)
    try:
        server.run()
    except StartupError as error:
        print(f"b2x-gateway: {error}", file=sys.stderr)
        sys.exit(1)
    if not server.started:
        sys.exit(1)


if __name__ == "__main__":
    run()
