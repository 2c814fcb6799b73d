"""The declarative services file `b2c up --demo` hands to the health service, and the demo systems' ports.

The demo registers the simulated ERP, PIM and CRM systems (`b2c.stack.demo.endpoints`, each with a
Prometheus metrics endpoint) and the stack's own gateway, PostgreSQL and Redis, so every screen has
something to show: probes, latency, communication errors with realistic faults, resource figures and
resource alerts (the CRM runs hot on purpose).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from b2c.stack.settings import StackPorts


@dataclass(frozen=True)
class DemoSystem:
    slug: str
    name: str
    type: str
    port_variable: str
    default_port: int
    description: str

    @property
    def token(self) -> str:
        """The bearer token the simulated system accepts (not a secret: it guards nothing)."""
        return f"demo-{self.slug}-token"

    def port(self) -> int:
        raw = os.environ.get(self.port_variable, "")
        return int(raw) if raw.isdigit() and 0 < int(raw) < 65536 else self.default_port


SYSTEMS = (
    DemoSystem("erp", "enventa Trade ERP", "ERP", "B2X_DEMO_ERP_PORT", 18081,
               "Articles, prices and stock; slow every quarter hour, a backup window 14:00-16:00 with timeouts."),
    DemoSystem("pim", "PIM System", "PIM", "B2X_DEMO_PIM_PORT", 18082,
               "Product information; bursts of 503 Service Unavailable every 20 minutes."),
    DemoSystem("crm", "CRM Integration", "CRM", "B2X_DEMO_CRM_PORT", 18083,
               "Customers and orders; tokens expire now and then, CPU and memory run above their thresholds."),
)  # fmt: skip


def demo_host() -> str:
    host = os.environ.get("B2X_BIND_HOST", "127.0.0.1")
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - comparing, not binding


def write_demo_config(
    data_dir: Path, ports: StackPorts, *, database_url: str | None = None, redis_url: str | None = None
) -> Path:
    """Connected services for the demo: ERP, PIM and CRM, and the stack's own gateway, PostgreSQL and Redis."""
    database_url = database_url or os.environ.get("B2X_DATABASE_URL", "")
    redis_url = redis_url or os.environ.get("B2X_REDIS_URL", "")
    host = demo_host()
    lines = [
        "# Written by `b2c up --demo`; edit your own file and point B2X_CONFIG_FILE at it instead.",
        "services:",
    ]
    for system in SYSTEMS:
        base = f"http://{host}:{system.port()}"
        lines += [
            f"  - slug: {system.slug}",
            f"    name: {system.name}",
            f"    type: {system.type}",
            f"    endpoint: {base}/api/health",
            f"    description: {json.dumps(system.description)}",
            "    interval_seconds: 30",
            "    timeout_seconds: 5",
            "    max_retries: 1",
            "    http:",
            "      expect_status: [200]",
            f"      headers: {{Authorization: 'Bearer {system.token}'}}",
            "    resources:",
            f"      metrics_url: {base}/metrics",
        ]
    lines += [
        "  - slug: gateway",
        "    name: B2X Gateway",
        "    type: OTHER",
        f"    endpoint: http://127.0.0.1:{ports.gateway}/health/live",
        "    interval_seconds: 30",
        "    resources:",
        f"      metrics_url: http://127.0.0.1:{ports.gateway}/metrics",
    ]
    if database_url:
        lines += [
            "  - slug: postgres", "    name: PostgreSQL", "    type: DATABASE",
            f"    endpoint: {json.dumps(database_url)}", "    resources:", "      process_name: postgres",
        ]  # fmt: skip
    if redis_url:
        lines += [
            "  - slug: redis", "    name: Redis", "    type: CACHE", f"    endpoint: {json.dumps(redis_url)}",
            "    resources:", "      process_name: redis-server",
        ]  # fmt: skip
    path = data_dir / "demo-services.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
