"""Drift: field inputs compared with the baseline the trainer stored."""

import numpy as np
import pytest

from shared.drift import DriftThresholds, baseline_statistics, detect_drift

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
