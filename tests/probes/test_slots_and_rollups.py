"""Slot scheduling, latency histograms and history buckets: the arithmetic behind agents and charts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.common.errors import InvalidArgumentError
from services.probes.agent import histogram
from services.probes.agent.keeper import lease_ttl_ms
from services.probes.agent.slots import current_slot, first_slot, phase_of, slot_start
from services.probes.insights.history import Bucket, LatencyRow, choose_bucket, latency_points, merge_latency

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_every_agent_computes_the_same_spread_out_slots_for_a_target() -> None:
    """The phase depends only on the service id and lies inside the interval; slots follow each other."""
    phases = {phase_of(f"service-{i}", 30) for i in range(50)}
    assert all(0 <= p < 30 for p in phases) and len(phases) > 40
    phase = phase_of("erp", 30)
    assert phase == phase_of("erp", 30)
    start = slot_start(100, 30, phase)
    assert current_slot(start, 30, phase) == 100 and current_slot(start - 0.001, 30, phase) == 99


def test_a_new_holder_catches_up_a_started_slot_the_previous_holder_did_not_check() -> None:
    """Previous holder checked slot k-1, slot k has begun: check k now, neither skipping nor repeating."""
    now = slot_start(100, 30, 0) + 12
    assert first_slot(now, 30, 0, 99) == (100, True)
    assert first_slot(now, 30, 0, 100) == (101, False)


def test_a_slot_whose_holder_died_before_storing_its_check_is_checked_again_at_once() -> None:
    """Marked in Redis but never stored (the holder was killed mid-check): the current or the previous slot is
    checked again now; an older one is past saving, and a stored one is never repeated."""
    now = slot_start(100, 30, 0) + 12
    assert first_slot(now, 30, 0, 100, unfinished=True) == (100, True)
    assert first_slot(now, 30, 0, 99, unfinished=True) == (99, True)
    assert first_slot(now, 30, 0, 97, unfinished=True) == (101, False)
    assert first_slot(now, 30, 0, 100, unfinished=False) == (101, False)


def test_a_fresh_target_waits_for_its_next_slot_and_never_repeats_a_checked_one() -> None:
    """Unknown or long-unchecked targets start at the next slot (no burst); a skewed holder's later slot is respected."""
    now = slot_start(100, 30, 0) + 1
    assert first_slot(now, 30, 0, None) == (101, False)
    assert first_slot(now, 30, 0, 42) == (101, False)
    assert first_slot(now, 30, 0, 103) == (104, False)


def test_leases_expire_well_within_one_interval() -> None:
    """Half the interval, capped by the longest lease and at least three ticks: takeover fits in one interval."""
    assert lease_ttl_ms(30, 10, 1) == 10_000
    assert lease_ttl_ms(5, 10, 1) == 3_000
    assert lease_ttl_ms(3, 1, 0.2) == 1_000


def test_p95_from_a_histogram_is_close_to_the_exact_value() -> None:
    """Latencies spread over three orders of magnitude: the histogram's p95 is within a quarter bucket of the truth."""
    rng = random.Random(7)
    values = [rng.lognormvariate(3.5, 1.0) for _ in range(5000)]
    hist = histogram.empty()
    for value in values:
        histogram.add(hist, value)
    exact = sorted(values)[int(0.95 * len(values)) - 1]
    estimate = histogram.quantile(hist, 0.95, max(values))
    assert abs(estimate - exact) / exact < 0.15
    assert histogram.quantile(histogram.empty(), 0.95, 0) == 0.0


def test_rollups_merge_into_points_with_availability_and_latency() -> None:
    """Minute rows merge into hour points: counts add, averages weigh by checks, p95 from the merged histogram."""
    rows = []
    for minute in range(120):
        hist = histogram.empty()
        for ms in (20.0, 40.0):
            histogram.add(hist, ms)
        failures = 1 if minute % 10 == 0 else 0
        rows.append(LatencyRow(T0 + timedelta(minutes=minute), 2 + failures, failures, 0, 60.0, 40.0, hist))
    points = latency_points(rows, Bucket.HOUR)
    assert [p.start for p in points] == [T0, T0 + timedelta(hours=1)]
    first = points[0]
    assert (first.checks, first.failures) == (126, 6)
    assert first.avg_latency_ms == pytest.approx(30.0) and first.max_latency_ms == 40.0
    assert 30 <= first.p95_latency_ms <= 40
    assert first.availability_percent == pytest.approx(120 / 126 * 100)
    assert merge_latency(T0, rows).checks == 252


def test_history_buckets_follow_the_range_and_refuse_too_many_points() -> None:
    """Minutes up to 6 h, hours up to 7 d, days beyond; a year per minute is refused, not scanned."""
    assert choose_bucket(T0, T0 + timedelta(hours=6), None) is Bucket.MINUTE
    assert choose_bucket(T0, T0 + timedelta(days=7), None) is Bucket.HOUR
    assert choose_bucket(T0, T0 + timedelta(days=30), None) is Bucket.DAY
    assert choose_bucket(T0, T0 + timedelta(days=1), Bucket.MINUTE) is Bucket.MINUTE
    with pytest.raises(InvalidArgumentError, match="too many"):
        choose_bucket(T0, T0 + timedelta(days=365), Bucket.MINUTE)
    with pytest.raises(InvalidArgumentError, match="empty"):
        choose_bucket(T0, T0, None)
