"""Composition root of the gateway: `python -m gateway` runs it under uvicorn."""

from __future__ import annotations

import sys

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.common.errors import StartupError
from services.common.logging import configure_logging
from services.common.settings import load_settings


def run() -> None:
    try:
        settings = load_settings(GatewaySettings)
    except StartupError as error:
        print(f"b2x-gateway: {error}", file=sys.stderr)
        sys.exit(1)
    configure_logging("gateway", settings.log_level, settings.log_format)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,  # our structlog handler formats uvicorn's records too
        access_log=False,
        ws="websockets-sansio",
        lifespan="on",
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
