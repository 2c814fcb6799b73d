"""Pattern analysis of communication errors: fingerprints, heatmap, shares and recurring spikes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.probes.domain import ErrorGroup, ErrorType
from services.probes.fingerprint import endpoint_key
from services.probes.insights.patterns import HourlyCount, Trend, analyse

END = datetime(2026, 3, 9, tzinfo=UTC)  # a Monday, midnight
START = END - timedelta(days=7)
UTC_ZONE = ZoneInfo("UTC")


def row(hour: datetime, count: int, error_type: ErrorType = ErrorType.READ_TIMEOUT, service: str = "erp",
        endpoint: str = "https://erp/api") -> HourlyCount:  # fmt: skip
    group = ErrorGroup.TIMEOUT if "TIMEOUT" in error_type.value else ErrorGroup.AUTHENTICATION
    return HourlyCount(
        f"id-{service}", service, error_type, group, endpoint, hour, count, hour, hour + timedelta(minutes=59)
    )


def week(spike_days: int, spike_hours: tuple[int, ...] = (14, 15), per_spike: int = 12) -> list[HourlyCount]:
    """One timeout an hour all week, and `per_spike` in the spike hours of the last `spike_days` days."""
    rows = []
    for day in range(7):
        for hour in range(24):
            at = START + timedelta(days=day, hours=hour)
            spiking = hour in spike_hours and day >= 7 - spike_days
            rows.append(row(at, per_spike if spiking else 1))
    return rows


def test_a_daily_window_of_timeouts_is_phrased_for_people() -> None:
    """Twelve timeouts at 14:00 and 15:00 every day against one an hour otherwise: one daily 14:00-16:00 pattern."""
    report = analyse(week(7), START, END, UTC_ZONE, 20)
    assert [p.text for p in report.patterns] == ["Timeout errors spike during 14:00\u201316:00 daily"]
    pattern = report.patterns[0]
    assert (pattern.start_hour, pattern.end_hour, pattern.days_matched, pattern.days_considered) == (14, 16, 7, 7)
    assert pattern.ratio == 12 and "outside 14:00\u201316:00 (UTC)" in pattern.advice


def test_a_window_on_three_of_seven_days_says_so_and_two_days_are_not_a_pattern() -> None:
    """Three spiking days are the minimum for a recurring pattern; the text says how many."""
    three = analyse(week(3), START, END, UTC_ZONE, 20)
    assert [p.text for p in three.patterns] == ["Timeout errors spike during 14:00\u201316:00 on 3 of the last 7 days"]
    assert analyse(week(2), START, END, UTC_ZONE, 20).patterns == []


def test_small_counts_and_busy_days_are_not_spikes() -> None:
    """Two errors are not a spike even over a median of zero; a busy hour on a busy day is not three times the median."""
    quiet = [row(START + timedelta(days=d, hours=14), 2) for d in range(7)]
    assert analyse(quiet, START, END, UTC_ZONE, 20).patterns == []
    busy = [row(START + timedelta(days=d, hours=h), 20 if h == 9 else 10) for d in range(7) for h in range(24)]
    assert analyse(busy, START, END, UTC_ZONE, 20).patterns == []


def test_hours_are_read_in_the_callers_time_zone() -> None:
    """Spikes at 13:00 UTC are 14:00 in Berlin in March; the heatmap moves with them."""
    rows = [row(START + timedelta(days=d, hours=13), 9) for d in range(7)]
    berlin = analyse(rows, START, END, ZoneInfo("Europe/Berlin"), 20)
    assert berlin.patterns[0].text == "Timeout errors spike during 14:00\u201315:00 daily"
    assert berlin.timezone == "Europe/Berlin"
    assert {(d, h) for d, h, n in berlin.heatmap if n} == {(d, 14) for d in range(1, 8)}


def test_several_services_are_named_in_the_pattern() -> None:
    """Across every service, a pattern says whose errors spike."""
    rows = week(7) + [row(START + timedelta(days=d), 1, service="crm") for d in range(7)]
    assert analyse(rows, START, END, UTC_ZONE, 20).patterns[0].text.startswith("Timeout errors of erp spike")


def test_heatmap_shares_and_trend_cover_the_range() -> None:
    """168 heatmap cells, type and group shares adding up to 100 %, one trend point per day of the week."""
    rows = [*week(7), row(START + timedelta(days=1, hours=3), 56, ErrorType.TOKEN_EXPIRED)]
    report = analyse(rows, START, END, UTC_ZONE, 20)
    assert len(report.heatmap) == 168 and report.heatmap[0][:2] == (1, 0)
    assert report.total == sum(n for _, _, n in report.heatmap) == 7 * 24 + 7 * 2 * 11 + 56
    assert [s.error_type for s in report.top_types] == [ErrorType.READ_TIMEOUT, ErrorType.TOKEN_EXPIRED]
    assert round(sum(s.share_percent for s in report.top_types)) == 100
    assert [s.group for s in report.top_groups] == [ErrorGroup.TIMEOUT, ErrorGroup.AUTHENTICATION]
    assert len(report.trend) == 7 and report.trend[1][1] == 24 + 22 + 56


def test_fingerprints_group_by_type_and_endpoint_and_compare_with_the_previous_period() -> None:
    """Ids in paths are one endpoint; counts against the week before give NEW, RISING, STEADY or FALLING."""
    before = START - timedelta(days=3)
    rows = [
        row(START + timedelta(hours=1), 5, endpoint=endpoint_key("https://erp/orders/4711?x=1")),
        row(START + timedelta(hours=2), 5, endpoint=endpoint_key("https://erp/orders/4712")),
        row(before, 4, endpoint=endpoint_key("https://erp/orders/1")),
        row(START + timedelta(hours=3), 3, ErrorType.TOKEN_EXPIRED),
        row(START + timedelta(hours=3), 10, ErrorType.CONNECTION_TIMEOUT),
        row(before, 10, ErrorType.CONNECTION_TIMEOUT),
        row(START + timedelta(hours=4), 2, ErrorType.WRITE_TIMEOUT),
        row(before, 8, ErrorType.WRITE_TIMEOUT),
    ]
    report = analyse(rows, START, END, UTC_ZONE, 20)
    found = {(f.error_type, f.endpoint): f for f in report.fingerprints}
    orders = found[(ErrorType.READ_TIMEOUT, "https://erp/orders/{id}")]
    assert (orders.count, orders.previous_count, orders.trend) == (10, 4, Trend.RISING)
    assert orders.change_percent == 150 and orders.first_seen == START + timedelta(hours=1)
    assert found[(ErrorType.TOKEN_EXPIRED, "https://erp/api")].trend is Trend.NEW
    assert found[(ErrorType.CONNECTION_TIMEOUT, "https://erp/api")].trend is Trend.STEADY
    assert found[(ErrorType.WRITE_TIMEOUT, "https://erp/api")].trend is Trend.FALLING
    assert report.fingerprints[0].count == 10 and report.previous_total == 22
    assert len(analyse(rows, START, END, UTC_ZONE, 2).fingerprints) == 2


def test_endpoint_keys_hide_ids_queries_and_fragments() -> None:
    """Numbers and UUID-like segments become {id}; query and fragment are dropped."""
    assert endpoint_key("https://erp/api/v2/orders/4711/lines/3f2a9c1e-55aa-4bcd-9e0f-123456789abc?token=x#y") == (
        "https://erp/api/v2/orders/{id}/lines/{id}"
    )
    assert endpoint_key("https://erp/api/v2/articles") == "https://erp/api/v2/articles"
