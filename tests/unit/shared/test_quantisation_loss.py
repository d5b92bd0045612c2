"""The quantisation-loss rule: judged from the images float and int8 disagree on, with the holdout's size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.stats import norm

from shared.quantisation_loss import CONFIDENCE, counts_from_accuracies, loss_lower_bound, rejects, score

TOLERANCE = 0.01  # the gate's default max_quantisation_loss


@pytest.mark.parametrize("int8_only", [1, 2])
def test_one_or_two_images_int8_rounds_the_wrong_way_on_80_do_not_reject(int8_only):
    assert not rejects(int8_only, 0, 80, TOLERANCE)
    assert (int8_only - 0) / 80 > TOLERANCE  # what the fixed limit rejected


def test_a_real_five_point_loss_on_360_images_is_rejected():
    assert rejects(18, 0, 360, TOLERANCE)  # 18 of 360 = 5 points, nothing the other way
    assert rejects(25, 7, 360, TOLERANCE)  # the same net loss amid flips both ways
    assert loss_lower_bound(18, 0, 360) == pytest.approx(0.0342, abs=1e-4)


def test_flips_both_ways_that_cancel_out_are_no_loss():
    assert not rejects(30, 30, 360, TOLERANCE)
    assert loss_lower_bound(30, 30, 360) < 0


def test_on_a_large_holdout_the_rule_converges_to_the_configured_tolerance():
    images = 1_000_000
    background = images // 50  # 2% of the images go each way
    for observed in (0.009, 0.0099, 0.0101, 0.011):
        net = round(observed * images)
        bound = loss_lower_bound(background + net, background, images)
        assert observed - 0.0006 < bound <= observed
        assert bool(rejects(background + net, background, images, TOLERANCE)) == (observed > TOLERANCE + 0.0006)


def test_the_bound_comes_closer_to_the_observed_loss_as_the_holdout_grows():
    gaps = [0.05 - loss_lower_bound(round(0.06 * n), round(0.01 * n), n) for n in (80, 360, 2000, 20_000)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 0.005


discordant = st.integers(1, 3000).flatmap(
    lambda n: st.tuples(st.integers(0, n), st.integers(0, n), st.just(n)).filter(lambda t: t[0] + t[1] <= t[2]))


@given(discordant)
def test_the_bound_is_never_above_the_observed_loss_so_nothing_the_fixed_limit_passed_is_rejected(counts):
    int8_only, float_only, images = counts
    assert loss_lower_bound(int8_only, float_only, images) <= (int8_only - float_only) / images
    if (int8_only - float_only) / images <= TOLERANCE:
        assert not rejects(int8_only, float_only, images, TOLERANCE)


@given(discordant)
def test_one_more_int8_only_error_never_turns_a_rejection_into_a_pass(counts):
    int8_only, float_only, images = counts
    if int8_only + float_only < images:
        assert loss_lower_bound(int8_only + 1, float_only, images) >= loss_lower_bound(int8_only, float_only, images)
        assert rejects(int8_only + 1, float_only, images, TOLERANCE) >= rejects(int8_only, float_only, images, TOLERANCE)


@given(discordant)
def test_one_more_float_only_error_never_turns_a_pass_into_a_rejection(counts):
    int8_only, float_only, images = counts
    if int8_only + float_only < images:
        assert loss_lower_bound(int8_only, float_only + 1, images) <= loss_lower_bound(int8_only, float_only, images)


@given(discordant)
def test_the_bound_is_where_the_score_test_stops_rejecting(counts):
    int8_only, float_only, images = counts
    bound = loss_lower_bound(int8_only, float_only, images)
    z = norm.ppf(CONFIDENCE)
    if bound > -0.999:
        assert score(int8_only, float_only, images, bound - 1e-9) >= z - 1e-6
    assert score(int8_only, float_only, images, bound + 1e-6) <= z + 1e-6
    assert rejects(int8_only, float_only, images, TOLERANCE) == (score(int8_only, float_only, images, TOLERANCE) > z)


@pytest.mark.parametrize("int8_only, float_only, images, loss", [(4, 0, 80, 0.01), (25, 7, 360, 0.01), (9, 12, 360, 0.02),
                                                                  (60, 40, 2000, -0.005)])
def test_the_score_uses_the_most_likely_discordance_at_the_hypothesised_loss(int8_only, float_only, images, loss):
    """Tango's closed-form q is the maximum-likelihood float-only rate when int8-only = q + loss."""
    def negative_log_likelihood(q):
        rates = np.array([q + loss, q, 1 - 2 * q - loss])
        return -np.dot([int8_only, float_only, images - int8_only - float_only], np.log(rates))

    low = max(0.0, -loss) + 1e-12
    best = minimize_scalar(negative_log_likelihood, bounds=(low, (1 - loss) / 2 - 1e-12), method="bounded",
                           options={"xatol": 1e-12}).x
    expected = (int8_only - float_only - images * loss) / np.sqrt(images * (2 * best + loss * (1 - loss)))
    assert score(int8_only, float_only, images, loss) == pytest.approx(expected, rel=1e-5)


def test_arrays_are_judged_element_wise_like_single_holdouts():
    int8_only, float_only = np.array([1, 4, 18, 30]), np.array([0, 0, 0, 30])
    images = np.array([80, 80, 360, 360])
    assert list(rejects(int8_only, float_only, images, TOLERANCE)) == [
        bool(rejects(*counts, TOLERANCE)) for counts in zip(int8_only, float_only, images)]


def test_a_record_with_only_accuracies_and_the_holdout_size_is_read_as_the_fewest_disagreements():
    assert counts_from_accuracies(0.9875, 0.975, 80) == (1, 0)
    assert counts_from_accuracies(0.95, 0.9625, 80) == (0, 1)
    assert counts_from_accuracies(0.97, 0.97, 360) == (0, 0)


@pytest.mark.parametrize("counts", [(1, 0, 0), (-1, 0, 80), (50, 40, 80)])
def test_impossible_counts_are_refused(counts):
    with pytest.raises(ValueError):
        loss_lower_bound(*counts)


def test_a_confidence_below_one_half_is_refused():
    with pytest.raises(ValueError, match="confidence"):
        loss_lower_bound(1, 0, 80, confidence=0.4)
