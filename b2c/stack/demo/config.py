"""The declarative services file `b2c up --demo` hands to the health service.

The demo registers the simulated ERP, PIM and CRM systems (`b2c.stack.demo.endpoints`, each with a
Prometheus metrics endpoint) and the stack's own gateway, PostgreSQL and Redis, so every screen has
something to show: probes, latency, communication errors with realistic faults, resource figures and
resource alerts (the CRM runs hot on purpose). Its notification channels point at the demo inbox
(`b2c.stack.demo.inbox`): e-mail to the SMTP catcher, Alertmanager-style webhooks to the sink.
"""

from __future__ import annotations

import json
from pathlib import Path

from b2c.stack.demo.systems import SYSTEMS
from b2c.stack.settings import StackPorts


def write_demo_config(data_dir: Path, ports: StackPorts, *, database_url: str = "", redis_url: str = "") -> Path:
    """Connected services for the demo: ERP, PIM and CRM, and the stack's own gateway, PostgreSQL and Redis."""
    host = ports.local_host
    lines = [
        "# Written by `b2c up --demo`; edit your own file and point B2X_CONFIG_FILE at it instead.",
        "services:",
    ]
    for system in SYSTEMS:
        base = f"http://{host}:{ports.demo[system.slug]}"
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
            # A reference, expanded by the probe agent from its environment (demo_environment()):
            # ListProbeTargets never hands out a literal secret.
            f"      headers: {{Authorization: 'Bearer ${{{system.token_variable}}}'}}",
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
    # Alerts go to the demo inbox (b2c.stack.demo.inbox): a real SMTP catcher and a webhook sink on loopback.
    lines += [
        "notifications:",
        f"  dashboard_url: http://{host}:{ports.gateway}",
        "  channels:",
        "    email:",
        "      to: [ops@b2x-demo.example]",
        "      from: b2x-monitoring@b2x-demo.example",
        f"      host: {host}",
        f"      port: {ports.demo_smtp}",
        "      security: none",
        "    webhook:",
        f"      url: http://{host}:{ports.demo_webhook}/alertmanager-webhook",
        "  route:",
        "    group_by: [rule]",
        "    group_wait: 10s",
        "    group_interval: 1m",
        "    repeat_interval: 30m",
        "  retry: {initial: 2s, max: 1m}",
    ]
    path = data_dir / "demo-services.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def demo_environment() -> dict[str, str]:
    """What the demo's references resolve to in the probes' environment."""
    return {system.token_variable: system.token for system in SYSTEMS}
