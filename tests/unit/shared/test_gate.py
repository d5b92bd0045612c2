"""The quality gate: what keeps a worse model away from every device."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.config import STRESSES, Gate, Settings
from shared.gate import (COMPARED_WITH_PRODUCTION, FIELD_IMAGES, FIELD_METRIC, FLOAT_ONLY_ERRORS, HOLDOUT_IMAGES,
                         INT8_ONLY_ERRORS, evaluate_gate, stress_metric)
from shared.quantisation_loss import rejects

POLICY = Gate(min_accuracy=0.9, min_drifted_accuracy=0.5, max_quantisation_loss=0.01, max_regression=0.02,
              max_size_bytes=500_000, max_latency_us=1000)
GOOD = {"int8_accuracy": 0.97, "float_accuracy": 0.975, "int8_drifted_accuracy": 0.9, "size_bytes": 230_000,
        "latency_us": 40.0}


def test_min_drifted_accuracy_still_means_a_gated_dark_room():
    """The setting from before the stresses: the dark room's floor, and its regression vs production."""
    assert (POLICY.gated_stresses, POLICY.min_stress_accuracy) == (("dark",), 0.5)


def test_a_good_first_candidate_passes_every_check():
    result = evaluate_gate(GOOD, POLICY)
    assert result.passed and result.reasons() == []
    assert {c.name for c in result.checks} == {"int8_accuracy", "int8_drifted_accuracy", "quantisation_loss",
                                              "size_bytes", "latency_us"}


@pytest.mark.parametrize("change, failing", [
    ({"int8_accuracy": 0.85, "float_accuracy": 0.855}, "int8_accuracy"),
    ({"int8_drifted_accuracy": 0.4}, "int8_drifted_accuracy"),
    ({"float_accuracy": 0.99}, "quantisation_loss"),
    ({"size_bytes": 600_000}, "size_bytes"),
    ({"latency_us": 1500.0}, "latency_us"),
])
def test_each_absolute_limit_rejects_with_its_reason(change, failing):
    result = evaluate_gate({**GOOD, **change}, POLICY)
    assert not result.passed
    assert [c.name for c in result.failures] == [failing]
    assert result.reasons()[0].startswith(failing)


def test_a_candidate_worse_than_production_on_the_same_holdout_is_rejected():
    result = evaluate_gate({**GOOD, "production_int8_accuracy": 0.995, "production_int8_drifted_accuracy": 0.9}, POLICY)
    assert not result.passed
    assert [c.name for c in result.failures] == ["int8_accuracy_regression"]


def test_a_small_drop_within_the_allowed_regression_passes():
    result = evaluate_gate({**GOOD, "production_int8_accuracy": 0.98, "production_int8_drifted_accuracy": 0.6}, POLICY)
    assert result.passed
    assert {c.name for c in result.checks} >= {"int8_accuracy_regression", "int8_drifted_accuracy_regression"}


def test_the_result_serialises_with_every_check_and_reason():
    document = evaluate_gate({**GOOD, "latency_us": 2000.0}, POLICY).to_dict()
    assert document["passed"] is False
    assert document["reasons"] == ["latency_us 2000 > 1000"]
    assert len(document["checks"]) == 5 and all({"name", "value", "limit", "passed", "rule"} <= set(c) for c in document["checks"])


# --- the quantisation loss, judged with the holdout's size --------------------------------------------------

def holdout(images: int, int8_only: int, float_only: int, float_correct: int | None = None) -> dict:
    """The clean-holdout metrics the trainer reports: both accuracies, the size, the images only one model gets right."""
    float_correct = images - 4 if float_correct is None else float_correct
    int8_correct = float_correct - int8_only + float_only
    return {"float_accuracy": float_correct / images, "int8_accuracy": int8_correct / images, HOLDOUT_IMAGES: images,
            INT8_ONLY_ERRORS: int8_only, FLOAT_ONLY_ERRORS: float_only}


def test_one_image_of_80_that_int8_rounds_the_wrong_way_passes():
    metrics = {**GOOD, **holdout(80, int8_only=1, float_only=0)}
    assert metrics["float_accuracy"] - metrics["int8_accuracy"] == pytest.approx(0.0125)  # above 0.01: rejected before
    result = evaluate_gate(metrics, POLICY)
    assert result.passed
    assert "quantisation_loss_lower_bound" in {c.name for c in result.checks}


def test_a_real_five_point_loss_on_360_images_fails_with_a_readable_reason():
    result = evaluate_gate({**GOOD, **holdout(360, int8_only=18, float_only=0, float_correct=355)}, POLICY)
    assert [c.name for c in result.failures] == ["quantisation_loss_lower_bound"]
    assert result.reasons() == ["quantisation_loss_lower_bound 0.03424 > 0.01"]


def test_on_a_large_holdout_the_gate_holds_the_configured_limit():
    images = 200_000
    passed = evaluate_gate({**GOOD, **holdout(images, int8_only=2000 + 1900, float_only=2000)}, POLICY)  # 0.95 points
    failed = evaluate_gate({**GOOD, **holdout(images, int8_only=2000 + 2300, float_only=2000)}, POLICY)  # 1.15 points
    assert passed.passed and not failed.passed
    assert failed.reasons()[0].startswith("quantisation_loss_lower_bound 0.01")


def test_a_record_without_the_holdout_size_is_judged_by_the_fixed_limit():
    """Records (and metric dictionaries) from before the trainer reported the holdout's size."""
    assert evaluate_gate({**GOOD, "float_accuracy": 0.9825}, POLICY).reasons() == ["quantisation_loss 0.0125 > 0.01"]
    assert "quantisation_loss" in {c.name for c in evaluate_gate(GOOD, POLICY).checks}


def test_a_record_with_the_holdout_size_but_no_disagreement_counts_assumes_the_fewest_disagreements():
    one_image = {**GOOD, "float_accuracy": 0.9825, HOLDOUT_IMAGES: 80}  # 1 image of 80
    assert evaluate_gate(one_image, POLICY).passed
    five_points = {**GOOD, "float_accuracy": 1.0, "int8_accuracy": 0.95, HOLDOUT_IMAGES: 360}  # 18 images of 360
    assert evaluate_gate(five_points, POLICY).reasons() == ["quantisation_loss_lower_bound 0.03424 > 0.01"]


@given(st.integers(1, 2000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n // 2), st.integers(0, n // 2))),
       st.floats(0, 0.2, allow_nan=False))
def test_the_gate_applies_exactly_the_rule_the_benchmark_measures(counts, tolerance):
    images, int8_only, float_only = counts
    metrics = {**GOOD, **holdout(images, int8_only, float_only, float_correct=images - float_only)}
    check = next(c for c in evaluate_gate(metrics, POLICY.model_copy(update={"max_quantisation_loss": tolerance})).checks
                 if c.name.startswith("quantisation_loss"))
    assert check.passed == (not rejects(int8_only, float_only, images, tolerance))


# --- the field holdout and the synthetic stresses ------------------------------------------------------

DEFAULTS = Gate()
FIRST = {"int8_accuracy": 0.97, "float_accuracy": 0.975, "size_bytes": 230_000, "latency_us": 40.0,
         **{stress_metric(s): 0.9 for s in STRESSES}}


def with_production(candidate: dict, production: dict) -> dict:
    return {**candidate, **{f"production_{name}": value for name, value in production.items()}}


def field(images: int, candidate: float, production: float | None) -> dict:
    metrics = {FIELD_IMAGES: images, FIELD_METRIC: candidate}
    return metrics if production is None else {**metrics, f"production_{FIELD_METRIC}": production}


def test_by_default_no_stress_is_gated_and_a_dark_room_collapse_is_reported_not_rejected():
    """The issue's case: a noisy, blurry field; the candidate falls on the dark holdout, a drift that never happened."""
    metrics = with_production({**FIRST, "int8_drifted_accuracy": 0.34, **field(80, 0.97, 0.80)},
                              {"int8_accuracy": 0.97, "int8_drifted_accuracy": 0.9})
    result = evaluate_gate(metrics, DEFAULTS)
    assert result.passed
    assert [n for n in result.notes if n.startswith("stress dark")] == [
        "stress dark: int8_drifted_accuracy_regression 0.56 > 0.02, reported only (not in gated_stresses)"]
    assert "int8_field_accuracy_regression" in {c.name for c in result.checks}


def test_a_stress_the_operator_listed_rejects_a_regression_vs_production():
    metrics = with_production({**FIRST, "int8_blur_accuracy": 0.7}, {"int8_accuracy": 0.97, "int8_blur_accuracy": 0.9})
    result = evaluate_gate(metrics, Gate(gated_stresses=("blur",)))
    assert [c.name for c in result.failures] == ["int8_blur_accuracy_regression"]
    assert result.reasons() == ["int8_blur_accuracy_regression 0.2 > 0.02"]


def test_a_candidate_worse_on_the_field_holdout_is_rejected():
    metrics = with_production({**FIRST, **field(60, 0.80, 0.90)}, {"int8_accuracy": 0.97})
    result = evaluate_gate(metrics, DEFAULTS)
    assert [c.name for c in result.failures] == ["int8_field_accuracy_regression"]


def test_a_field_holdout_below_its_minimum_is_reported_not_gated():
    metrics = with_production({**FIRST, **field(12, 0.50, 0.90)}, {"int8_accuracy": 0.97})
    result = evaluate_gate(metrics, DEFAULTS)
    assert result.passed and "int8_field_accuracy_regression" not in {c.name for c in result.checks}
    assert result.notes == ("field holdout: 12 images < min_field_holdout 50, reported only "
                            "(candidate 0.500, production 0.900)",)
    assert result.to_dict()["notes"] == list(result.notes)


def test_without_field_captures_or_production_the_field_holdout_is_only_noted():
    assert evaluate_gate(FIRST, DEFAULTS).notes == ("field holdout: no confirmed field captures held out yet",)
    result = evaluate_gate({**FIRST, **field(70, 0.9, None)}, DEFAULTS)
    assert result.passed and result.notes == ("field holdout: 70 images, nothing to compare with (no production model)",)


def test_every_compared_accuracy_is_one_the_trainer_reports():
    assert set(COMPARED_WITH_PRODUCTION) == {"int8_accuracy", FIELD_METRIC, "int8_drifted_accuracy",
                                             "int8_blur_accuracy", "int8_noise_accuracy"}


accuracy = st.floats(0, 1, allow_nan=False)


@given(images=st.integers(0, 500), minimum=st.integers(1, 200), candidate=accuracy, production=accuracy,
       margin=st.floats(0, 0.2, allow_nan=False))
def test_the_field_holdout_rejects_exactly_a_regression_beyond_the_margin_on_enough_images(
        images, minimum, candidate, production, margin):
    policy = Gate(min_field_holdout=minimum, max_regression=margin)
    metrics = with_production({**FIRST, **field(images, candidate, production)}, {"int8_accuracy": 0.97})
    result = evaluate_gate(metrics, policy)
    gated = images >= minimum and images > 0
    assert result.passed == (not gated or production - candidate <= margin)
    assert ("int8_field_accuracy_regression" in {c.name for c in result.checks}) == gated
    assert any(note.startswith("field holdout") for note in result.notes) == (not gated)


@given(gated=st.sets(st.sampled_from(STRESSES)).map(tuple),
       candidate=st.fixed_dictionaries({s: accuracy for s in STRESSES}),
       production=st.fixed_dictionaries({s: accuracy for s in STRESSES}))
def test_only_listed_stresses_can_reject_and_every_other_regression_is_noted(gated, candidate, production):
    policy = Gate(gated_stresses=gated)
    metrics = with_production({**FIRST, **{stress_metric(s): v for s, v in candidate.items()}},
                              {"int8_accuracy": 0.97, **{stress_metric(s): v for s, v in production.items()}})
    result = evaluate_gate(metrics, policy)
    worse = {s for s in STRESSES if production[s] - candidate[s] > policy.max_regression}
    assert {c.name for c in result.failures} == {f"{stress_metric(s)}_regression" for s in worse & set(gated)}
    assert {n.split(":")[0] for n in result.notes if n.startswith("stress")} == {f"stress {s}" for s in worse - set(gated)}


def test_unknown_stresses_are_refused_with_the_reason(monkeypatch):
    with pytest.raises(ValidationError, match=r"unknown stress \['fog'\]: the trainer computes only \['dark', 'blur', 'noise'\]"):
        Gate(gated_stresses=("fog",))
    monkeypatch.setenv("EDGELOOP_GATE__GATED_STRESSES", '["noise", "dark"]')
    assert Settings().gate.gated_stresses == ("noise", "dark")
    monkeypatch.setenv("EDGELOOP_GATE__GATED_STRESSES", '["snow"]')
    with pytest.raises(ValidationError, match="unknown stress"):
        Settings()


def test_the_old_min_drifted_accuracy_setting_migrates(monkeypatch):
    monkeypatch.setenv("EDGELOOP_GATE__MIN_DRIFTED_ACCURACY", "0.6")
    gate = Settings().gate
    assert (gate.gated_stresses, gate.min_stress_accuracy) == (("dark",), 0.6)
    assert Gate(min_drifted_accuracy=0.0) == Gate()  # its default gated nothing absolute: nothing to carry over
