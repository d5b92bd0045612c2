"""Anytime-valid bounds on a success rate: they cover the true rate at every report count at once."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.confidence_sequence import difference_bounds, rate_bounds

counts = st.integers(0, 5000).flatmap(lambda trials: st.tuples(st.integers(0, trials), st.just(trials)))
levels = st.floats(0.001, 0.5)


def test_with_no_reports_nothing_is_known():
    low, high = rate_bounds(0, 0, 0.05)
    assert (low, high) == (0.0, 1.0)


@given(counts, levels)
def test_the_bounds_lie_in_the_unit_interval_around_the_observed_rate(count, alpha):
    successes, trials = count
    low, high = rate_bounds(successes, trials, alpha)
    assert 0 <= low <= high <= 1
    if trials:
        assert low <= successes / trials <= high


@given(counts, levels, levels)
def test_a_stricter_level_never_gives_narrower_bounds(count, a, b):
    strict, loose = sorted((a, b))
    low_strict, high_strict = rate_bounds(*count, strict)
    low_loose, high_loose = rate_bounds(*count, loose)
    assert low_strict <= low_loose + 1e-9 and high_loose <= high_strict + 1e-9


def test_more_reports_at_the_same_rate_narrow_the_bounds():
    widths = [float(np.subtract(*reversed(rate_bounds(9 * n, 10 * n, 0.05)))) for n in (10, 100, 1000)]
    assert widths[0] > widths[1] > widths[2]


def test_the_bounds_cover_the_true_rate_at_every_look_for_at_least_one_minus_alpha_of_the_paths():
    # 400 simulated feedback streams of 2,000 reports each, looked at after every report: a fixed-level
    # interval would miss on most paths at some look; the sequence may miss on at most alpha of them.
    rng = np.random.default_rng(7)
    rate, alpha = 0.9, 0.05
    successes = np.cumsum(rng.random((2000, 400)) < rate, axis=0)
    trials = np.broadcast_to(np.arange(1, 2001)[:, None], successes.shape)
    low, high = rate_bounds(successes, trials, alpha)
    ever_missed = ((low > rate) | (high < rate)).any(axis=0).mean()
    assert ever_missed <= alpha


@given(counts, counts, levels)
def test_the_difference_bounds_contain_the_observed_difference(a, b, alpha):
    low, high = difference_bounds(*a, *b, alpha)
    assert -1 <= low <= high <= 1
    if a[1] and b[1]:
        assert low <= a[0] / a[1] - b[0] / b[1] <= high


@pytest.mark.parametrize("successes, trials", [(-1, 3), (4, 3)])
def test_impossible_counts_are_refused(successes, trials):
    with pytest.raises(ValueError):
        rate_bounds(successes, trials, 0.05)
