"""Reads the figures resource sampling needs out of a Prometheus text exposition (format 0.0.4).

Only the wanted metric names are parsed; every series of a name is summed (several pools, several
queues). What each figure is read from, first name found wins:

    cpu_seconds      process_cpu_seconds_total                  → CPU % by rate between two scrapes
    cpu_cores        b2x_cpu_cores, machine_cpu_cores           → divides that rate (else: one core)
    memory_used      process_resident_memory_bytes
    memory_total     b2x_memory_total_bytes, machine_memory_bytes, node_memory_MemTotal_bytes
    pool_active      b2x_pool_active, hikaricp_connections_active, db_client_connections_usage
    pool_total       b2x_pool_total, hikaricp_connections_max, db_client_connections_max
    threads          b2x_threads, process_threads, jvm_threads_live_threads, jvm_threads_current, go_threads
    queue_depth      b2x_queue_depth
    queue_processed  b2x_queue_processed_total                  → processing rate per minute

A service with other names says so in the metrics URL's fragment, which is never sent:
`http://crm:9100/metrics#pool_active=pgbouncer_pools_sv_active&queue_depth=rabbitmq_queue_messages_ready`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from urllib.parse import parse_qsl

CONVENTIONAL: dict[str, tuple[str, ...]] = {
    "cpu_seconds": ("process_cpu_seconds_total",),
    "cpu_cores": ("b2x_cpu_cores", "machine_cpu_cores"),
    "memory_used": ("process_resident_memory_bytes",),
    "memory_total": ("b2x_memory_total_bytes", "machine_memory_bytes", "node_memory_MemTotal_bytes"),
    "pool_active": ("b2x_pool_active", "hikaricp_connections_active", "db_client_connections_usage"),
    "pool_total": ("b2x_pool_total", "hikaricp_connections_max", "db_client_connections_max"),
    "threads": ("b2x_threads", "process_threads", "jvm_threads_live_threads", "jvm_threads_current", "go_threads"),
    "queue_depth": ("b2x_queue_depth",),
    "queue_processed": ("b2x_queue_processed_total",),
}


class MetricNames:
    """Which metric names feed which figure: the conventional ones, overridden per service."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self.by_field: dict[str, tuple[str, ...]] = dict(CONVENTIONAL)
        for name, metric in (overrides or {}).items():
            if name not in CONVENTIONAL:
                raise ValueError(f"unknown figure {name!r} in the metrics URL; use one of {', '.join(CONVENTIONAL)}")
            self.by_field[name] = (metric, *CONVENTIONAL[name])
        self.wanted = frozenset(metric for names in self.by_field.values() for metric in names)

    @classmethod
    def from_url(cls, url: str) -> tuple[str, MetricNames]:
        """(URL to scrape, names) from a metrics URL whose fragment may override names."""
        base, _, fragment = url.partition("#")
        return base, cls(dict(parse_qsl(fragment)) if fragment else None)

    def pick(self, values: Mapping[str, float]) -> dict[str, float]:
        """Figure -> value, from the parsed sums; figures with no metric present are left out."""
        picked: dict[str, float] = {}
        for field, names in self.by_field.items():
            for name in names:
                if name in values:
                    picked[field] = values[name]
                    break
        return picked


def _series_name_and_rest(line: str) -> tuple[str, str]:
    """The metric name and what follows its label set (value and optional timestamp)."""
    brace = line.find("{")
    space = line.find(" ")
    if brace == -1 or (space != -1 and space < brace):
        name, _, rest = line.partition(" ")
        return name, rest
    quoted = escaped = False
    for i in range(brace + 1, len(line)):
        char = line[i]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "}" and not quoted:
            return line[:brace], line[i + 1 :]
    raise ValueError("unterminated label set")


def parse(text: str, wanted: frozenset[str]) -> dict[str, float]:
    """Sum of the samples of each wanted metric name; NaN and malformed lines are skipped."""
    sums: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head = line.split("{", 1)[0].split(" ", 1)[0]
        if head not in wanted:
            continue
        try:
            name, rest = _series_name_and_rest(line)
            value = float(rest.split()[0])
        except (ValueError, IndexError):
            continue
        if math.isnan(value):
            continue
        sums[name] = sums.get(name, 0.0) + value
    return sums
