"""Resource threshold breach → `alertTriggered` on a GraphQL subscription, through the alert lifecycle
(budget: ≤ 10 s; the seed says 30 s).

The same stack and rounds as `resource_alerts` (health with one service whose figures come from a
Prometheus endpoint served here, probes with its agent sampling every 5 s, gateway), but the subscriber
follows `alertTriggered`: the probes' breach must become a `resource.queue_backlog` alert in the health
service (stored, checked against silences, handed to the notification sink in its transaction) and
reach the subscription as FIRING, then RESOLVED after the figure drops.

    .venv/bin/python -m bench.alerts_breach        # B2X_BENCH_ALERT_ROUNDS (default 8)
"""

from __future__ import annotations

import sys
from typing import Any

from bench.resource_alerts import BUDGET_SECONDS, Watch, measure
from bench.support import print_table, save

SUBSCRIPTION = 'subscription { alertTriggered(service: "erp") { id rule status occurrences } }'


def _queue_backlog(event: dict[str, Any]) -> str | None:
    if event["rule"] != "resource.queue_backlog":
        return None
    return {"FIRING": "open", "RESOLVED": "resolved"}.get(event["status"])


ALERT_LIFECYCLE = Watch(SUBSCRIPTION, "alertTriggered", _queue_backlog)


def main(argv: list[str]) -> int:
    figures = measure("alerts_breach", ALERT_LIFECYCLE)
    print_table([
        ("breach → alertTriggered FIRING", f"max {figures['alert_s_max']:.2f} s",
         f"p50 {figures['alert_s_p50']:.2f} s, p95 {figures['alert_s_p95']:.2f} s; budget ≤ {BUDGET_SECONDS:.0f} s"),
        ("recovery → alertTriggered RESOLVED", f"max {figures['resolve_s_max']:.2f} s",
         f"p50 {figures['resolve_s_p50']:.2f} s"),
    ])  # fmt: skip
    print(f"  → {save('alerts_breach', figures)}")
    return 0 if figures["alert_s_max"] <= BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
