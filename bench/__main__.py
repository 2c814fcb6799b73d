"""`python -m bench [name ...]`: run the benchmarks of DESIGN.md's budgets (all by default).

Each benchmark prints a table and writes bench/results/<name>.json; bench/RESULTS.md records the
latest figures with the date and the machine.
"""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = (
    "jobs_queries",
    "live_latency",
    "sdk_overhead",
    "probe_load",
    "probe_timings",
    "health_summary",
    "resource_alerts",
    "dashboard",
    "alerts_delivery",
)


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = []
    for name in chosen:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as error:
            print(f"== {name}: not available ({error})", file=sys.stderr)
            failed.append(name)
            continue
        print(f"== {name}", flush=True)
        started = time.monotonic()
        code = module.main([])
        print(f"== {name} finished in {time.monotonic() - started:.0f} s (exit {code})", flush=True)
        if code:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
