"""The SDK's own rules without a network: coalescing decisions, outcome ordering, failure classification."""

from __future__ import annotations

import pytest

from services.jobs.sdk import JobHandle, PermanentJobError, TransientJobError
from services.jobs.sdk.errors import JobsServiceUnavailable, describe_failure, normalize_category
from services.jobs.sdk.model import OutcomeKind, Outgoing
from services.jobs.sdk.tracking import Outbox, ReportPolicy

POLICY = ReportPolicy(items_per_report=100, min_report_interval=1.0, max_report_interval=30.0)


def running_handle(outbox: Outbox | None = None) -> JobHandle:
    handle = JobHandle("7d1f2a3e-0000-4000-8000-000000000001", outbox or Outbox(1000), started=True)
    handle._track.sent_at = 0.0  # the job's clock starts at t=0 in these tests
    return handle


def planned_processed(handle: JobHandle, now: float, *, final: bool = False) -> int | None:
    out = handle._track.plan(None, now, POLICY, final=final)
    progress = out.progress if out else None
    if out is not None:
        handle._track.accepted(out, "RUNNING")
    return progress.processed if progress else None


def test_a_handle_asks_for_attention_once_when_a_report_becomes_due_by_count() -> None:
    """The 100th item puts the job in the next round (no waiting for the scan), once; after its report the
    next multiple counts from what was sent, and counts that are not numbers never break the job's call."""
    outbox = Outbox(1000, items_per_report=100)
    handle = running_handle(outbox)
    handle.progress(99)
    assert not outbox.attention
    handle.progress(100)
    handle.item_done()
    assert outbox.attention == {handle._track}
    outbox.attention.clear()
    handle.progress(150)
    assert not outbox.attention, "asked once until the report goes"
    assert planned_processed(handle, now=5.0) == 150
    handle.progress(249)
    assert not outbox.attention
    handle.item_done()
    assert outbox.attention == {handle._track}
    handle.progress("many")  # type: ignore[arg-type]


def test_progress_is_due_after_a_hundred_items_or_thirty_seconds_with_a_change() -> None:
    """99 items are held back, the 100th makes a report; a smaller change waits for max_report_interval."""
    handle = running_handle()
    for _ in range(99):
        handle.item_done()
    assert planned_processed(handle, now=5.0) is None
    handle.item_done()
    assert planned_processed(handle, now=5.0) == 100
    handle.item_done()
    assert planned_processed(handle, now=34.0) is None
    assert planned_processed(handle, now=35.0) == 101
    assert planned_processed(handle, now=99.0) is None, "no change, no report"


def test_progress_is_never_reported_more_often_than_the_minimum_interval() -> None:
    """500 items within half a second after a report wait until min_report_interval has passed."""
    handle = running_handle()
    handle.progress(100)
    assert planned_processed(handle, now=10.0) == 100
    handle.progress(600)
    assert planned_processed(handle, now=10.5) is None
    assert planned_processed(handle, now=11.0) == 600


def test_the_final_state_goes_with_the_outcome_at_once() -> None:
    """complete() sends the exact last counts with the outcome, whatever the coalescing rule says."""
    handle = running_handle()
    handle.progress(100)
    planned_processed(handle, now=10.0)
    handle.progress(117, succeeded=110, failed=7)
    handle.complete("done")
    out = handle._track.plan(None, 10.1, POLICY, final=False)
    assert out is not None and out.progress is not None and out.outcome is not None
    assert (out.progress.processed, out.progress.succeeded, out.progress.failed) == (117, 110, 7)
    assert out.outcome.kind is OutcomeKind.COMPLETED


def test_counts_the_service_would_refuse_are_held_back_and_explained_once() -> None:
    """processed beyond total is not sent (it would get the report refused); one warning line says why."""
    outbox = Outbox(1000)
    buffer = outbox.logs
    handle = running_handle(outbox)
    handle.progress(120, total=100)
    assert planned_processed(handle, now=1.0, final=True) is None
    handle.progress(130)
    assert planned_processed(handle, now=2.0, final=True) is None
    lines = buffer.take(100, 10)[handle._track]
    assert [line.message for line in lines] == ["progress not reported: processed (120) is beyond total (100)"]


def test_the_outcome_waits_until_every_pending_log_line_is_in_the_report() -> None:
    """With more lines pending than a batch carries, the outcome goes in the report with the last of them."""
    outbox = Outbox(10_000)
    buffer = outbox.logs
    handle = running_handle(outbox)
    for n in range(30):
        handle.info(f"line {n}")
    handle.complete()
    lines = buffer.take(20, 10)[handle._track]
    first = handle._track.plan(Outgoing(handle._track, logs=lines), 1.0, POLICY, final=False)
    assert first is not None and first.outcome is None
    buffer.acknowledge(handle._track, lines)
    handle._track.accepted(first, "RUNNING")
    rest = buffer.take(20, 10)[handle._track]
    second = handle._track.plan(Outgoing(handle._track, logs=rest), 1.1, POLICY, final=False)
    assert second is not None and second.outcome is not None
    assert [line.sequence for line in rest] == list(range(21, 31))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (TransientJobError("ERP did not answer", category="ERP_CONNECTION_FAILED"), ("ERP_CONNECTION_FAILED", True)),
        (TimeoutError("read timeout"), ("TIMEOUT", True)),
        (ConnectionRefusedError("refused"), ("CONNECTION_FAILED", True)),
        (JobsServiceUnavailable("UNAVAILABLE", "jobs service down"), ("CONNECTION_FAILED", True)),
        (PermanentJobError("bad VAT id", category="erp data-validation"), ("ERP_DATA_VALIDATION", False)),
        (KeyError("sku"), ("INTERNAL", False)),
    ],
)
def test_exceptions_are_classified_transient_or_permanent(error: BaseException, expected: tuple[str, bool]) -> None:
    """Transient: TransientJobError and OSErrors (timeouts, refused connections); permanent: everything else."""
    info = describe_failure(error)
    assert (info.category, info.transient) == expected
    assert type(error).__name__ in info.message


def test_categories_are_made_acceptable_to_the_service() -> None:
    """Whatever a job passes as category becomes UPPER_SNAKE_CASE of at most 64 characters."""
    assert normalize_category(" erp timeout / session ") == "ERP_TIMEOUT_SESSION"
    assert len(normalize_category("x" * 100)) == 64


def test_counts_that_are_not_numbers_are_explained_not_fatal() -> None:
    """progress("many") cannot stop the monitor: the job's log says why its progress stopped moving."""
    outbox = Outbox(1000)
    handle = running_handle(outbox)
    handle.progress("many")  # type: ignore[arg-type]
    assert planned_processed(handle, now=5.0) is None
    handle.progress(150.0)  # type: ignore[arg-type]
    assert planned_processed(handle, now=6.0) == 150, "whole floats (from JSON parameters) are fine"
    lines = outbox.logs.take(100, 10)[handle._track]
    assert [line.message for line in lines] == [
        "progress not reported: counts must be integers (got ('many', 0, 0, 0))"
    ]
