"""`python -m bench [--rounds N] [name ...]`: run the benchmarks of DESIGN.md's budgets (all by default).

Each benchmark prints a table and writes bench/results/<name>.json with the machine it ran on (CPU model,
a fixed calibration loop's CPU time, the load average before and after). With `--rounds N` each one runs
N times; its saved figures are kept per round in bench/results/<name>.rounds.json and printed as
min / median / max, so a change shows against the spread of a noisy machine rather than as one number.
bench/RESULTS.md records the figures with the date and the machine.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

from bench.support import RESULTS, rounds_table

BENCHMARKS = (
    "jobs_queries",
    "live_latency",
    "sdk_overhead",
    "probe_load",
    "probe_timings",
    "health_summary",
    "resource_alerts",
    "alerts_breach",
    "dashboard",
    "dashboard_services",
    "alerts_delivery",
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="run each benchmark this many times (default 1)")
    parser.add_argument("names", nargs="*", metavar="name", help=f"benchmarks to run: {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    chosen = args.names or list(BENCHMARKS)
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
        records = []
        for number in range(1, args.rounds + 1):
            print(f"== {name}" + (f" (round {number} of {args.rounds})" if args.rounds > 1 else ""), flush=True)
            started = time.monotonic()
            code = module.main([])
            print(f"== {name} finished in {time.monotonic() - started:.0f} s (exit {code})", flush=True)
            if code:
                failed.append(name)
            saved = RESULTS / f"{name}.json"
            if saved.exists():
                records.append(json.loads(saved.read_text()))
        if len(records) > 1:
            (RESULTS / f"{name}.rounds.json").write_text(json.dumps(records, indent=2, default=str))
            print(f"== {name}: {len(records)} rounds")
            for line in rounds_table(records):
                print(f"  {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
