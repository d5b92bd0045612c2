"""Whose feedback counts: a few reports per user, per version and window, exactly, in any handling order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.feedback_admission import admit

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
WINDOW = timedelta(hours=1)


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def test_a_user_counts_up_to_the_cap_then_not_until_the_window_moves_on():
    admitted: tuple = ()
    verdicts = []
    for minute in (0, 1, 2, 3, 59, 61):
        admission = admit(admitted, at(minute), cap=3, window=WINDOW)
        verdicts.append(admission.counted)
        admitted = admission.admitted
    # three count; two more within the hour do not; an hour after the first, one slot is free again
    assert verdicts == [True, True, True, False, False, True]
    assert admitted == (at(1), at(2), at(61))


def test_a_refused_report_changes_nothing_and_the_newest_counted_time_is_kept():
    first = admit((), at(5), cap=1, window=WINDOW)
    assert first.counted and first.last == at(5)
    refused = admit(first.admitted, at(6), cap=1, window=WINDOW)
    assert not refused.counted and refused.admitted == first.admitted and refused.last == at(5)
    assert admit((), at(0), cap=1, window=WINDOW).last == at(0)


def test_the_cap_must_be_positive():
    with pytest.raises(ValueError):
        admit((), at(0), cap=0, window=WINDOW)


@given(st.lists(st.integers(0, 600), max_size=60), st.integers(1, 6), st.integers(1, 180))
def test_any_window_holds_at_most_cap_counted_reports_in_any_handling_order(minutes, cap, window_minutes):
    window = timedelta(minutes=window_minutes)
    admitted: tuple = ()
    counted = []
    for minute in minutes:  # handled in this (arbitrary) order, not in time order
        admission = admit(admitted, at(minute), cap, window)
        assert len(admission.admitted) <= cap
        if admission.counted:
            counted.append(at(minute))
        admitted = admission.admitted
    for end in counted:
        assert sum(1 for time in counted if end - window < time <= end) <= cap


@given(st.lists(st.integers(0, 600), max_size=60), st.integers(1, 6), st.integers(1, 180))
def test_keeping_only_the_newest_cap_times_decides_as_keeping_them_all(minutes, cap, window_minutes):
    window = timedelta(minutes=window_minutes)
    kept: tuple = ()
    every: list = []
    for minute in minutes:
        admission = admit(kept, at(minute), cap, window)
        full = admit(every, at(minute), cap, window)
        assert admission.counted == full.counted
        kept = admission.admitted
        if full.counted:
            every.append(at(minute))


@given(st.lists(st.integers(0, 10_000), max_size=40), st.integers(1, 5))
def test_a_steady_user_is_never_refused_below_the_cap(gaps, cap):
    """Reports spaced at least window/cap apart always count: the cap limits bursts, not ordinary use."""
    window = timedelta(minutes=60)
    admitted: tuple = ()
    time = START
    for gap in gaps:
        time += window / cap + timedelta(seconds=gap)
        admission = admit(admitted, time, cap, window)
        assert admission.counted
        admitted = admission.admitted
