"""Drift: field inputs compared with the baseline the trainer stored."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from shared.drift import (
    DriftReport, DriftThresholds, Harm, assess_harm, baseline_statistics, detect_drift, retrain_on_drift,
)

THRESHOLDS = DriftThresholds(min_samples=50, p_value=0.01, min_effect=0.2, max_label_distance=0.35)
rng = np.random.default_rng(0)


def inputs(n, brightness=0.5, confidence=0.95, labels="0123456789"):
    return [
        {"stats": {"brightness": float(b), "contrast": 0.3 + 0.01 * rng.standard_normal(),
                   "sharpness": 0.05 + 0.005 * rng.standard_normal()},
         "confidence": float(np.clip(c, 0, 1)), "predicted_label": labels[i % len(labels)]}
        for i, (b, c) in enumerate(zip(rng.normal(brightness, 0.05, n), rng.normal(confidence, 0.03, n)))
    ]


@pytest.fixture(scope="module")
def baseline():
    train = inputs(800)
    return baseline_statistics([t["stats"] for t in train], [t["confidence"] for t in train],
                               [t["predicted_label"] for t in train])


def test_the_baseline_keeps_a_bounded_sample_of_each_statistic(baseline):
    assert all(len(values) == 500 for values in baseline["image_stats"].values())
    assert sum(baseline["label_counts"].values()) == 800


def test_inputs_like_the_training_data_show_no_drift(baseline):
    report = detect_drift(baseline, inputs(200), THRESHOLDS)
    assert report.status == "no_drift", report.tests


def test_int8_confidences_stored_at_a_baseline_s_precision_tie_with_the_same_scores_from_the_field():
    # int8 scores are steps of 1/256: the baseline keeps 255/256 as 0.99609, a capture carries 0.996094.
    steps = np.random.default_rng(1).choice([250, 252, 254, 255], size=600) / 256
    train = [{"brightness": 0.5, "contrast": 0.3, "sharpness": 0.05}] * 600
    stored = baseline_statistics(train, steps, ["1"] * 600)
    field = [{"stats": train[0], "confidence": float(f"{c:.6f}"), "predicted_label": "1"} for c in steps[:100]]
    report = detect_drift(stored, field, THRESHOLDS)
    assert report.status == "no_drift", report.tests


def test_low_light_inputs_drift_in_brightness_and_confidence(baseline):
    report = detect_drift(baseline, inputs(200, brightness=0.2, confidence=0.6), THRESHOLDS)
    assert report.drifted
    assert {t.name for t in report.tests if t.drifted} >= {"brightness", "confidence"}
    brightness = next(t for t in report.tests if t.name == "brightness")
    assert brightness.recent_median < brightness.baseline_median


def test_a_skewed_label_mix_drifts(baseline):
    report = detect_drift(baseline, inputs(200, labels="1"), THRESHOLDS)
    assert [t.name for t in report.tests if t.drifted] == ["predicted_label_mix"]


def test_too_few_inputs_are_not_judged(baseline):
    assert detect_drift(baseline, inputs(49, brightness=0.1), THRESHOLDS).status == "insufficient_data"


def test_a_tiny_but_significant_shift_in_a_huge_sample_is_not_drift(baseline):
    report = detect_drift(baseline, inputs(5000, brightness=0.51), THRESHOLDS)
    assert not any(t.drifted for t in report.tests if t.name == "brightness")


def test_no_baseline_is_reported_as_such():
    assert detect_drift({}, inputs(100), THRESHOLDS).status == "no_baseline"


# --- comparable statistics ------------------------------------------------------------------------

def test_a_capture_uploaded_larger_than_the_model_input_has_the_statistics_the_trainer_measures():
    """The trainer measures its baseline on images read at the model's input size (32 pixels); a device
    uploads the same scene at up to 512 pixels. Both are measured at one scale, so they agree."""
    from PIL import Image

    from shared.digits import load_digits_rgb
    from shared.image_stats import image_statistics

    for digit in load_digits_rgb(size=256)[:20]:
        trainer_reads = np.asarray(Image.fromarray(digit.rgb).resize((32, 32), Image.Resampling.BILINEAR))
        assert image_statistics(digit.rgb) == pytest.approx(image_statistics(trainer_reads), rel=1e-6)


# --- harm: is a drift retrained on ------------------------------------------------------------------

def test_a_drift_under_which_field_success_stays_near_the_gate_is_harmless():
    harm = assess_harm(correct=490, total=500, gate_accuracy=0.97, max_drop=0.03, min_reports=100)
    assert harm.verdict == "harmless" and not harm.harmful
    assert harm.bar == 0.94 and harm.upper_bound > 0.94
    assert "490/500" in harm.detail and "0.940" in harm.detail


def test_a_drift_under_which_field_success_is_confidently_below_the_gate_minus_max_drop_is_harmful():
    harm = assess_harm(correct=400, total=500, gate_accuracy=0.97, max_drop=0.03, min_reports=100)
    assert harm.harmful and harm.upper_bound < 0.94


def test_a_drop_within_max_drop_is_harmless():
    # 95% observed against a 0.97 gate: two points lower, inside the three points the release tolerates.
    assert assess_harm(correct=9500, total=10_000, gate_accuracy=0.97, max_drop=0.03, min_reports=100).verdict == "harmless"


def test_few_reports_leave_the_harm_unknown_unless_they_already_show_it():
    assert assess_harm(correct=18, total=20, gate_accuracy=0.97, max_drop=0.03, min_reports=100).verdict == "unknown"
    assert assess_harm(correct=0, total=0, gate_accuracy=0.97, max_drop=0.03, min_reports=100).verdict == "unknown"
    # Twenty reports, five right: too few to call anything harmless, enough to show harm.
    assert assess_harm(correct=5, total=20, gate_accuracy=0.97, max_drop=0.03, min_reports=100).harmful


def test_a_few_accounts_cannot_make_a_drift_harmful():
    few = assess_harm(correct=10, total=60, gate_accuracy=0.97, max_drop=0.03, min_reports=20, users=3, min_users=10)
    assert few.verdict == "unknown" and "3 distinct users, 10 needed" in few.detail
    assert assess_harm(10, 60, 0.97, 0.03, 20, users=10, min_users=10).harmful


@given(st.integers(0, 2000), st.integers(0, 2000), st.floats(0.5, 1.0), st.floats(0, 0.2))
def test_more_correct_reports_never_make_a_drift_harmful(correct, extra, gate, max_drop):
    total = correct + extra
    worse = assess_harm(correct, total + 1, gate, max_drop, 100)
    better = assess_harm(correct + 1, total + 1, gate, max_drop, 100)
    assert not (better.harmful and not worse.harmful)
    assert better.upper_bound >= worse.upper_bound


def _report(status: str) -> DriftReport:
    return DriftReport(status, 100)


@pytest.mark.parametrize("verdict, policy, retrained", [
    ("harmful", "when_harmful", True), ("harmless", "when_harmful", False), ("unknown", "when_harmful", False),
    ("harmful", "always", True), ("harmless", "always", True), ("unknown", "always", True),
])
def test_the_policy_decides_which_drifts_are_retrained_on(verdict, policy, retrained):
    harm = Harm(verdict, 0, 0, 1.0, 0.94, 0.97, 100)
    assert retrain_on_drift(_report("drift"), harm, policy) is retrained
    assert retrain_on_drift(_report("no_drift"), harm, policy) is False


def test_the_default_policy_retrains_only_on_harmful_drift():
    from shared.config import Settings

    assert Settings().thresholds.drift_retrain == "when_harmful"
