"""The pure alert lifecycle: fingerprints, transitions, matchers, silences and durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.errors import FailedPreconditionError
from services.health.alerts.domain import (
    Change,
    Signal,
    acknowledge,
    clear,
    fingerprint,
    fire,
    new_silence,
    parse_duration,
    parse_matcher,
    resolve,
    silence_for,
)
from services.health.alerts.notice import AlertState, Severity
from services.health.domain import InvalidFieldError

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def signal(at: datetime = T0, firing: bool = True, tenant: str = "acme") -> Signal:
    return Signal("jobs.failed", Severity.ERROR, {"job_type": "ERP", "tenant": tenant}, "ERP failed", "boom", at,
                  firing=firing)  # fmt: skip


def test_the_fingerprint_is_the_rule_and_labels_whatever_their_order_or_severity() -> None:
    assert fingerprint("r", {"a": "1", "b": "2"}) == fingerprint("r", {"b": "2", "a": "1", "severity": "x"})
    assert fingerprint("r", {"a": "1"}) != fingerprint("r", {"a": "2"})
    assert fingerprint("r", {"a": "1"}) != fingerprint("q", {"a": "1"})


def test_firing_repeats_and_refiring_after_resolution_opens_a_new_episode() -> None:
    alert, change = fire(None, signal(), "id-1")
    assert change is Change.FIRED and alert.current.number == 1 and alert.current.state is AlertState.FIRING
    alert, change = fire(alert, signal(T0 + timedelta(minutes=1)), "unused")
    assert change is Change.REPEATED and not change.notifies
    assert alert.current.occurrences == 2 and alert.current.started_at == T0
    cleared = clear(alert, T0 + timedelta(minutes=2))
    assert cleared is not None and cleared.current.state is AlertState.RESOLVED and cleared.current.resolved_by is None
    assert clear(cleared, T0 + timedelta(minutes=3)) is None
    again, change = fire(cleared, signal(T0 + timedelta(minutes=4)), "unused")
    assert change is Change.FIRED and again.id == "id-1" and again.current.number == 2
    assert again.current.occurrences == 1


def test_acknowledge_and_resolve_record_who_when_and_why_and_refuse_twice() -> None:
    alert, _ = fire(None, signal(), "id-1")
    acked = acknowledge(alert, "ops", " on it ", T0)
    assert (acked.current.acknowledged_by, acked.current.ack_comment) == ("ops", "on it")
    notice = acked.notice()
    assert notice.state is AlertState.ACKNOWLEDGED and notice.acknowledged_by == "ops" and notice.comment == "on it"
    with pytest.raises(FailedPreconditionError):
        acknowledge(acked, "ops", "", T0)
    done = resolve(acked, "lead", "fixed", T0)
    assert done.current.resolved_by == "lead" and done.notice().comment == "fixed"
    assert done.notice().acknowledged_by == "ops" and done.notice().annotations["resolved_by"] == "lead"
    with pytest.raises(FailedPreconditionError):
        resolve(done, "lead", "", T0)
    with pytest.raises(InvalidFieldError, match=r"^comment:"):
        acknowledge(alert, "ops", "x" * 1001, T0)


def test_matchers_follow_alertmanager_operators() -> None:
    labels = {"service": "crm", "tenant": "acme"}
    assert parse_matcher("service=crm").matches(labels)
    assert parse_matcher("service!=erp").matches(labels)
    assert parse_matcher("service=~c.m").matches(labels)
    assert not parse_matcher("service!~cr.*").matches(labels)
    assert parse_matcher("job_type=").matches(labels)  # an absent label is empty
    for bad in ("service", "Service=crm", "service=~(", ""):
        with pytest.raises(InvalidFieldError, match=r"^matchers:"):
            parse_matcher(bad)


def test_a_silence_matches_while_active_and_a_tenant_silence_only_its_tenant() -> None:
    m = [parse_matcher("job_type=ERP")]
    everyone = new_silence("s-1", m, timedelta(hours=2), "ops", "maintenance", T0)
    theirs = new_silence("s-2", m, timedelta(hours=2), "globex", "ours", T0, tenant="globex")
    acme = {"job_type": "ERP", "tenant": "acme"}
    assert silence_for(acme, [theirs, everyone], T0 + timedelta(minutes=1)) == "s-1"
    assert silence_for(acme, [theirs], T0) is None
    assert silence_for({"job_type": "ERP", "tenant": "globex"}, [theirs], T0) == "s-2"
    assert silence_for(acme, [everyone], T0 + timedelta(hours=2)) is None  # expired
    with pytest.raises(InvalidFieldError, match=r"^matchers:"):
        new_silence("s-3", [], timedelta(hours=1), "ops", "x", T0)
    with pytest.raises(InvalidFieldError, match=r"^comment:"):
        new_silence("s-3", m, timedelta(hours=1), "ops", "  ", T0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2h", timedelta(hours=2)), ("90m", timedelta(minutes=90)), ("1d12h", timedelta(days=1, hours=12)),
     ("30s", timedelta(seconds=30))],
)  # fmt: skip
def test_durations_read_like_the_cli_writes_them(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "two hours", "2x", "h"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(InvalidFieldError, match=r"^duration:"):
        parse_duration(text)
