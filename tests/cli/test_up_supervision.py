"""`b2c up`'s supervisor against real service processes: what it restarts and what it does not."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from b2c.stack.settings import StackSettings
from b2c.stack.up import Part, Stack
from services.common.embedded import free_port

B2C = str(Path(sys.executable).parent / "b2c")


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


async def test_up_demo_refuses_a_stack_moved_onto_a_demo_port_before_starting_anything(tmp_path: Path) -> None:
    """`b2c up --demo` with the gateway moved to the demo ERP's port exits 2 naming both parts and their
    variables, and has started nothing (no PostgreSQL data directory)."""
    erp = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
    env.update({"B2X_DATA_DIR": str(tmp_path / "data"), "B2C_CONFIG": str(tmp_path / "b2c.json"),
                "B2X_DEMO_ERP_PORT": str(erp), "B2X_GATEWAY_PORT": str(erp)})  # fmt: skip
    for variable in ("B2X_JOBS_PORT", "B2X_HEALTH_PORT", "B2X_PROBES_PORT", "B2X_JOBS_METRICS_PORT",
                     "B2X_HEALTH_METRICS_PORT", "B2X_PROBES_METRICS_PORT", "B2X_DEMO_PIM_PORT", "B2X_DEMO_CRM_PORT"):  # fmt: skip
        env[variable] = str(free_port())  # nothing else of ours collides
    proc = await asyncio.create_subprocess_exec(
        B2C, "up", "--demo", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    message = err.decode()
    assert proc.returncode == 2, message
    assert f"port {erp} is planned for both gateway HTTP (B2X_GATEWAY_PORT) and demo" in message
    assert "B2X_DEMO_ERP_PORT" in message and not (tmp_path / "data" / "postgres").exists()
