"""The drift benchmark's pure parts: scenario images, disjoint windows, rates, targets and the section."""

import numpy as np

from edgeloop.bench_drift import (
    DriftBenchSettings, Rate, Result, measure, pick, samples_needed, scenarios, targets, thresholds_for, transform,
    windows, markdown, draw,
)
from shared.digits import load_digits_rgb
from shared.drift import DriftThresholds, baseline_statistics
from shared.image_stats import image_statistics

THRESHOLDS = DriftThresholds(50, 0.01, 0.2, 0.35)


def test_windows_are_disjoint_consecutive_and_drop_a_short_tail():
    pool = list(range(23))
    assert windows(pool, 10) == [list(range(10)), list(range(10, 20))]
    assert windows(pool, 30) == []


def test_small_windows_lower_only_min_samples():
    assert thresholds_for(10, THRESHOLDS) == DriftThresholds(10, 0.01, 0.2, 0.35)
    assert thresholds_for(100, THRESHOLDS) == THRESHOLDS


def test_transforms_change_what_each_drift_changes():
    settings, rng = DriftBenchSettings(), np.random.default_rng(0)
    rgb = load_digits_rgb()[0].rgb
    clean = image_statistics(rgb)
    dark = image_statistics(transform("low light", rgb, settings, rng))
    assert abs(dark["brightness"] - settings.brightness_kept * clean["brightness"]) < 0.01
    assert image_statistics(transform("blur", rgb, settings, rng))["sharpness"] < clean["sharpness"]
    noisy = transform("noise", rgb, settings, rng)
    assert noisy.dtype == np.uint8 and noisy.shape == rgb.shape and (noisy != rgb).any()
    assert transform("healthy", rgb, settings, rng) is rgb


def test_the_label_mix_fleet_sees_mostly_its_two_digits():
    settings, rng, digits = DriftBenchSettings(), np.random.default_rng(0), load_digits_rgb()[:300]
    seen = [pick("label mix", digits, settings, rng).label for _ in range(1000)]
    share = sum(label in settings.label_mix for label in seen) / len(seen)
    assert 0.88 < share < 0.96  # 90% chosen from the two, plus their share of the uniform rest
    uniform = [pick("healthy", digits, settings, rng).label for _ in range(1000)]
    assert sum(label in settings.label_mix for label in uniform) / 1000 < 0.3


def _inputs(digits, kept: float = 1.0):
    return [{"stats": image_statistics(np.clip(d.rgb * kept, 0, 255).astype(np.uint8)), "confidence": 0.9,
             "predicted_label": d.label} for d in digits]


def test_measure_runs_the_real_rule_on_every_window_clean_passes_dark_is_caught():
    digits = load_digits_rgb()
    reference, field = digits[:1000], digits[1000:1600]
    baseline = baseline_statistics([image_statistics(d.rgb) for d in reference], [0.9] * 300, [d.label for d in reference])
    clean = measure(baseline, _inputs(field), (10, 50), THRESHOLDS)
    assert clean[50].windows == 12 and clean[10].windows == 60
    assert clean[50].rate <= 0.1
    dark = measure(baseline, _inputs(field[:200], kept=0.35), (10, 50), THRESHOLDS)
    assert dark[10].rate == dark[50].rate == 1.0 and dark[50].tests["brightness"] == 4
    assert samples_needed(dark) == 10


def test_samples_needed_is_the_smallest_size_that_detects_often_enough():
    rates = {10: Rate(5, 10), 20: Rate(19, 20), 50: Rate(4, 4)}
    assert samples_needed(rates) == 20
    healthy = {10: Rate(3, 30), 20: Rate(1, 10), 50: Rate(0, 4)}
    assert samples_needed(rates, healthy) == 50  # 20 detects, but the healthy fleet alarms too often there
    assert samples_needed(rates, {10: Rate(9, 10)}) is None
    assert samples_needed({10: Rate(1, 10)}) is None
    assert Rate().rate is None


def _results(false_alarms: int, windows_: int = 100):
    s = scenarios(DriftBenchSettings())
    results = []
    for selection in ("all captures (before)", "random sample (now)"):
        results.append(Result(s[0], selection, windows_ * 50, {50: Rate(false_alarms, windows_), 10: Rate(3, 500)}))
        results += [Result(sc, selection, 500, {10: Rate(40, 50), 50: Rate(10, 10)}) for sc in s[1:]]
    return results


def test_targets_need_few_false_alarms_over_enough_windows_and_every_drift_detected():
    assert all(targets(_results(1), 50).values())
    assert not all(targets(_results(2), 50).values())
    assert not all(targets(_results(0, windows_=99), 50).values())
    unmeasured = [Result(r.scenario, r.selection, 0, {}, "no capture_reason") if r.selection.startswith("random")
                  else r for r in _results(0)]
    assert set(targets(unmeasured, 50).values()) == {None}


def test_the_section_and_the_plot(tmp_path):
    meta = {"version": "v1", "min_samples": 50, "p_value": 0.01, "min_effect": 0.2, "max_label_distance": 0.35,
            "capture_below": 0.5, "sample_rate": 0.02, "daily_count": 50, "field_images": 600,
            "fleets": {"healthy": {"predictions": 1000, "accuracy": 0.97, "captures": 40, "random": 20}}}
    text = markdown(_results(1), DriftBenchSettings(), meta)
    assert "| healthy (clean digits) | random sample (now) | 5000 |" in text
    assert "1.0% (1/100)" in text and "- low light detected (windows of 50): met" in text
    assert text.count("| low light") == 2 and "samples needed" in text
    path = draw(_results(1), tmp_path / "drift.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
