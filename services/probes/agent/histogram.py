"""Latency histograms with fixed bucket bounds, so rollups merge by adding and p95 comes from counts.

Bucket i counts latencies in (BOUNDS_MS[i-1], BOUNDS_MS[i]]; the last bucket is everything above the
last bound. Bounds grow by about 1.5x, so a p95 read by linear interpolation inside its bucket is
within a quarter of the bucket's width of the exact value (and never above the observed maximum).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

BOUNDS_MS: tuple[float, ...] = (
    1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
    1000, 1500, 2000, 3000, 5000, 7500, 10_000, 15_000, 20_000, 30_000, 60_000,
)  # fmt: skip
SIZE = len(BOUNDS_MS) + 1


def empty() -> list[int]:
    return [0] * SIZE


def bucket_of(value_ms: float) -> int:
    return bisect.bisect_left(BOUNDS_MS, value_ms)


def add(histogram: list[int], value_ms: float) -> None:
    histogram[bucket_of(value_ms)] += 1


def merge(histograms: Iterable[Sequence[int]]) -> list[int]:
    total = empty()
    for histogram in histograms:
        for i, count in enumerate(histogram[:SIZE]):
            total[i] += count
    return total


def quantile(histogram: Sequence[int], q: float, maximum: float) -> float:
    """The q-quantile (0 < q <= 1) by linear interpolation inside its bucket; 0 for an empty histogram."""
    count = sum(histogram)
    if count == 0:
        return 0.0
    rank = q * count
    seen = 0
    for i, n in enumerate(histogram):
        if n and seen + n >= rank:
            low = BOUNDS_MS[i - 1] if i > 0 else 0.0
            high = BOUNDS_MS[i] if i < len(BOUNDS_MS) else max(maximum, low)
            value = low + (high - low) * (rank - seen) / n
            return min(value, maximum) if maximum > 0 else value
        seen += n
    return maximum
