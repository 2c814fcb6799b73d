"""`b2c up`'s supervisor against real service processes: what it restarts and what it does not."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from b2c.stack.settings import StackSettings
from b2c.stack.up import Part, Stack


async def test_a_configuration_error_stops_the_stack_at_once_with_its_message(
    tmp_path: Path, database_url: str, redis_server_url: str
) -> None:
    """A health service that exits on a broken config file (EXIT_CONFIG) is not restarted five times: the
    supervisor stops the stack at once and says which setting is wrong."""
    config = tmp_path / "services.yaml"
    config.write_text("services:\n  - {slug: erp, type: ERP, endpoint: 'https://erp.test', timeout_seconds: 0}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("B2X_")}
    env.update(B2X_DATABASE_URL=database_url, B2X_REDIS_URL=redis_server_url, B2X_CONFIG_FILE=str(config),
               B2X_HEALTH_PORT="0", B2X_HEALTH_METRICS_PORT="0")  # fmt: skip
    stack = Stack(StackSettings.from_env({}, data_dir=tmp_path / "data"), demo=False, stream_logs=False)
    part = Part("health", [sys.executable, "-m", "services.health"], env, tmp_path / "health.log", "none")
    stack.parts.append(part)
    started = time.monotonic()
    await stack.spawn(part)
    await asyncio.wait_for(stack.supervise(), 20)
    assert stack.failed is not None and "configuration error" in stack.failed, stack.failed
    assert "services[0].timeout_seconds: must be more than 0" in stack.failed
    assert part.restarts == [] and time.monotonic() - started < 15
