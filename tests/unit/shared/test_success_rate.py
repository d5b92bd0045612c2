"""When field feedback is strong enough evidence to retrain."""

import pytest
from hypothesis import given, strategies as st

from shared.retrain import success_rate_request
from shared.success_rate import success_rate


def test_the_wilson_interval_matches_the_textbook_value():
    rate = success_rate(81, 100)
    assert rate.rate == 0.81
    assert rate.low == pytest.approx(0.7222, abs=1e-3) and rate.high == pytest.approx(0.8744, abs=1e-3)


def test_no_request_below_the_minimum_sample_even_if_every_prediction_failed():
    assert success_rate_request("digits", "v1", success_rate(0, 99), 100, 0.85, None) is None


def test_no_request_while_the_upper_bound_still_reaches_the_threshold():
    # 81% observed, but 87% is still plausible: not enough evidence against an 85% target.
    assert success_rate_request("digits", "v1", success_rate(81, 100), 100, 0.85, None) is None


def test_a_request_when_confidently_below_the_threshold():
    request = success_rate_request("digits", "v3", success_rate(600, 1000), 100, 0.85, "r9")
    assert request.reason.value == "success_rate" and request.cause == "success_rate:digits:v3:after-r9"
    assert request.evidence["upper_bound"] < 0.85 and request.evidence["total"] == 1000


@given(st.integers(0, 5000), st.integers(0, 5000))
def test_the_interval_always_contains_the_observed_rate(a, b):
    correct, total = min(a, b), max(a, b)
    rate = success_rate(correct, total)
    assert 0 <= rate.low <= 1 and 0 <= rate.high <= 1
    if total:
        assert rate.low - 1e-9 <= rate.rate <= rate.high + 1e-9


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError):
        success_rate(5, 3)


def test_a_request_needs_enough_distinct_users():
    rate = success_rate(60, 1000)
    assert success_rate_request("digits", "v3", rate, 100, 0.85, None, users=4, min_users=10) is None
    request = success_rate_request("digits", "v3", rate, 100, 0.85, None, users=10, min_users=10)
    assert request is not None and request.evidence["users"] == 10 and request.evidence["min_users"] == 10


@given(st.integers(0, 100_000), st.integers(1, 100_000), st.floats(0.5, 0.9999))
def test_the_interval_is_scipys_wilson_interval(a, b, confidence):
    """The standard-library interval equals scipy.stats' (to rounding: scipy's normal quantile is Cephes', ours AS241)."""
    from scipy.stats import binomtest

    correct, total = min(a, b), max(a, b)
    expected = binomtest(correct, total).proportion_ci(confidence_level=confidence, method="wilson")
    rate = success_rate(correct, total, confidence)
    assert rate.low == pytest.approx(float(expected.low), rel=1e-12, abs=1e-15)
    assert rate.high == pytest.approx(float(expected.high), rel=1e-12, abs=1e-15)
