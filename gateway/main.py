"""Composition root of the gateway: `python -m gateway` runs it under uvicorn."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.common.errors import StartupError
from services.common.logging import configure_logging
from services.common.settings import load_settings


def uvicorn_config(app: Any, settings: GatewaySettings, host: str, port: int, **extra: Any) -> uvicorn.Config:
    """How the gateway is served, in production and in tests alike: websocket messages no larger than a
    request body, X-Forwarded-For believed only from B2X_TRUSTED_PROXIES."""
    trusted = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # our structlog handler formats uvicorn's records too
        access_log=False,
        ws="websockets-sansio",
        ws_max_size=settings.max_body_bytes,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        lifespan="on",
        **extra,
    )


def run() -> None:
    try:
        settings = load_settings(GatewaySettings)
    except StartupError as error:
        print(f"b2x-gateway: {error}", file=sys.stderr)
        sys.exit(1)
    configure_logging("gateway", settings.log_level, settings.log_format)
    config = uvicorn_config(
        create_app(settings),
        settings,
        settings.gateway_host,
        settings.gateway_port,
        timeout_graceful_shutdown=int(settings.grpc_grace_seconds),
    )
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
