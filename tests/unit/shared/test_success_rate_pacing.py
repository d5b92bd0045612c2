"""on_feedback sums a version's success rate only when a retrain could be due (shared.count_pacing with the slack
``reports_until_success_rate_request`` gives): with one instance, the retrain is asked at the very report that
makes it due, exactly as when every report was summed."""

from __future__ import annotations

import math

from hypothesis import given, strategies as st

from shared.count_pacing import CountPacer
from shared.retrain import confidently_too_low, reports_until_success_rate_request
from shared.success_rate import success_rate


def _due(correct: int, total: int, min_samples: int, floor: float) -> bool:
    return confidently_too_low(success_rate(correct, total), min_samples, floor)


def test_the_slack_is_the_reports_still_needed_for_the_minimum_sample_when_none_came_yet():
    assert reports_until_success_rate_request(0, 0, min_samples=100, min_success_rate=0.85) == 100


def test_a_rate_already_too_low_leaves_no_slack():
    assert reports_until_success_rate_request(50, 100, min_samples=100, min_success_rate=0.85) == 1


def test_a_floor_no_rate_can_be_confidently_below_leaves_infinite_slack():
    assert reports_until_success_rate_request(10, 10, min_samples=1, min_success_rate=0.0001, limit=1000) == math.inf


@given(correct=st.integers(0, 300), extra=st.integers(0, 300), min_samples=st.integers(1, 300),
       floor=st.floats(0.05, 0.99))
def test_the_slack_is_exactly_the_fewest_wrong_reports_that_make_a_retrain_due(correct, extra, min_samples, floor):
    total = correct + extra
    slack = reports_until_success_rate_request(correct, total, min_samples, floor, limit=5000)
    if slack == math.inf:
        assert not _due(correct, total + 5000, min_samples, floor)
        return
    assert _due(correct, total + slack, min_samples, floor)
    assert slack == 1 or not _due(correct, total + slack - 1, min_samples, floor)


@given(correct=st.integers(0, 200), extra=st.integers(0, 200), outcomes=st.lists(st.booleans(), max_size=400),
       min_samples=st.integers(1, 300), floor=st.floats(0.5, 0.99))
def test_with_one_instance_a_paced_sum_asks_at_the_same_report_as_summing_every_report(
        correct, extra, outcomes, min_samples, floor):
    total = correct + extra
    every = next((i for i in range(len(outcomes))
                  if _due(correct + sum(outcomes[:i + 1]), total + i + 1, min_samples, floor)), None)

    pacer = CountPacer(clock=lambda: 0.0)  # no time passes: only the slack decides
    pacer.counted("v1", reports_until_success_rate_request(correct, total, min_samples, floor))
    paced, c, t = None, correct, total
    for i, right in enumerate(outcomes):
        summed = pacer.should_count("v1", interval_s=60)  # asked before the report is admitted, as on_feedback does
        c, t = c + right, t + 1
        if summed:
            if _due(c, t, min_samples, floor):
                paced = i
                break
            pacer.counted("v1", reports_until_success_rate_request(c, t, min_samples, floor))
    assert paced == every
