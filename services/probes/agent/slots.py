"""Epoch-aligned check slots: every agent computes the same schedule for a target.

Slot k of a target with interval I starts at k*I + phase (seconds since the epoch), where the phase
is derived from the service id, so targets spread over the interval instead of firing together.
A lease holder checks each slot once; a new holder reads the last slot checked (kept in Redis) and
goes on from the next one, so a handover neither skips nor repeats an interval. A slot started but never
stored (its holder was killed mid-check) is checked again by the new holder (`first_slot`, `unfinished`).
Agents need clocks in step (NTP); a skew shifts checks by the skew, it does not double them.
"""

from __future__ import annotations

import math
import zlib


def phase_of(service_id: str, interval: float) -> float:
    """Offset in [0, interval) of the target's slots, stable for a service id."""
    millis = max(1, int(interval * 1000))
    return (zlib.crc32(service_id.encode()) % millis) / 1000


def slot_start(slot: int, interval: float, phase: float) -> float:
    return slot * interval + phase


def current_slot(now: float, interval: float, phase: float) -> int:
    """The slot whose start is the latest at or before `now`."""
    return math.floor((now - phase) / interval)


def first_slot(
    now: float, interval: float, phase: float, last_checked: int | None, *, unfinished: bool = False
) -> tuple[int, bool]:
    """(slot, catch_up) to check first after taking a target over at `now`.

    `last_checked` is the last slot a holder started (marked in Redis before its check); `unfinished` says no
    check of that slot was stored, i.e. its holder died between starting and storing it. Such a slot, if it is
    the current or the previous one, is checked again at once: a SIGKILLed holder leaves no gap.
    When the previous holder checked the slot before the current one, the current slot has started
    without a check: catch up at once. Otherwise (already checked, or unknown / long unchecked) wait
    for the next slot, which keeps a fresh agent from checking every target in one burst.
    """
    current = current_slot(now, interval, phase)
    if unfinished and last_checked is not None and current - 1 <= last_checked <= current:
        return last_checked, True
    if last_checked is not None and last_checked == current - 1:
        return current, True
    # A previous holder whose clock ran ahead may have checked slots after ours: never repeat them.
    return max(current, last_checked if last_checked is not None else current) + 1, False
