"""One call turns images into a checked int8 candidate; seeded runs repeat exactly; a crippled config is clearly worse."""

import io

import numpy as np
import pytest
from rich.console import Console

from shared.digits import LABELS, load_digits_rgb
from shared.integrity import sha256_hex
from trainer_job import convert, evaluate
from trainer_job.augment import AugmentConfig
from trainer_job.model import Hyperparameters
from shared.config import STRESSES
from shared.gate import stress_metric
from trainer_job import augment
from trainer_job.pipeline import STAGES, TrainConfig, _reference_metrics, stressed_holdouts_of, train_candidate
from trainer_job.split import Examples, stratified_split

# Reduced grid and augmentation to keep the suite fast; the default grid is benchmarked by bench_train.
QUICK = TrainConfig(grid=(Hyperparameters(epochs=5),), latency_repeats=20)
CRIPPLED = TrainConfig(grid=(Hyperparameters(filters=2, dense_units=8, epochs=1),), augment=AugmentConfig.off(), latency_repeats=20)
TIMINGS = {"latency_us"}  # wall-clock measurements: the only metrics allowed to differ between reruns


@pytest.fixture(scope="module")
def digits():
    images = load_digits_rgb()
    return np.stack([i.rgb for i in images]), np.array([int(i.label) for i in images])


def run(digits, config, **kwargs):
    return train_candidate(*digits, LABELS, config, seed=0, console=Console(file=io.StringIO()), **kwargs)


@pytest.fixture(scope="module")
def stages_seen():
    return []


@pytest.fixture(scope="module")
def progress():
    return io.StringIO()


@pytest.fixture(scope="module")
def candidate(digits, stages_seen, progress):
    return train_candidate(
        *digits, LABELS, QUICK, seed=0, model_name="digits", version="v3", on_stage=stages_seen.append, console=Console(file=progress)
    )


@pytest.fixture(scope="module")
def rerun(digits):
    return run(digits, QUICK, model_name="digits", version="v3")


@pytest.fixture(scope="module")
def crippled(digits):
    return run(digits, CRIPPLED)


def test_a_candidate_carries_everything_the_registry_needs(candidate):
    for metric in ("float_accuracy", "int8_accuracy", "float_drifted_accuracy", "int8_drifted_accuracy", "val_accuracy"):
        assert 0.0 <= candidate.metrics[metric] <= 1.0, metric
    assert candidate.metrics["latency_us"] > 0
    assert candidate.metrics["size_bytes"] == len(candidate.model_bytes) == candidate.sizes["published_bytes"]
    assert candidate.sizes["float_bytes"] > candidate.sizes["int8_bytes"]
    assert candidate.hyperparameters == QUICK.grid[0].as_dict()
    assert len(candidate.trials) == 1 and candidate.trials[0]["seconds"] > 0
    assert candidate.counts == {"train": 1221, "train_augmented": 2442, "validation": 216, "holdout": 360, "field_holdout": 0}
    assert candidate.metrics["field_holdout_images"] == 0 and "int8_field_accuracy" not in candidate.metrics
    for stress in STRESSES:
        assert 0.0 <= candidate.metrics[stress_metric(stress)] <= 1.0, stress
    assert sum(candidate.baseline["label_counts"].values()) == 1221 + 216
    assert len(candidate.baseline["confidences"]) == 360
    assert set(candidate.baseline["image_stats"]) == {"brightness", "contrast", "sharpness"}


def test_the_candidate_is_a_good_digits_model_that_survives_int8(candidate):
    assert candidate.metrics["int8_accuracy"] > 0.95
    assert candidate.metrics["int8_accuracy"] >= candidate.metrics["float_accuracy"] - 0.01
    assert candidate.metrics["int8_drifted_accuracy"] > 0.9  # trained with dimmed and noisy copies


def test_the_candidate_reports_the_holdout_images_only_one_model_gets_right_for_the_gate(candidate):
    m = candidate.metrics
    assert m["holdout_images"] == candidate.counts["holdout"] == 360
    assert m["int8_only_errors"] >= 0 and m["float_only_errors"] >= 0
    assert m["float_accuracy"] - m["int8_accuracy"] == pytest.approx((m["int8_only_errors"] - m["float_only_errors"]) / 360)


def test_the_published_bytes_carry_the_name_version_and_labels(candidate):
    metadata = convert.read_metadata(candidate.model_bytes)
    assert (metadata["name"], metadata["version"], metadata["labels"]) == ("digits", "v3", list(LABELS))
    assert candidate.metadata == metadata


def test_the_load_check_ran_mediapipe_and_litert_on_the_published_bytes(candidate):
    check = candidate.load_check
    assert check["mediapipe_labels"] == check["litert_labels"]
    assert check["mediapipe_correct"] == check["images"] > 0
    assert check["declared_input"] == [1, 32, 32, 3]  # a fixed batch: what browsers' LiteRT.js runs


def test_stages_are_announced_in_order_timed_and_printed(candidate, stages_seen, progress):
    assert stages_seen == list(STAGES)
    assert list(candidate.stage_seconds) == list(STAGES)
    lines = progress.getvalue().splitlines()
    assert len(lines) == len(STAGES)
    for stage, line in zip(STAGES, lines):
        assert stage in line


def test_the_same_data_config_and_seed_give_the_same_metrics_and_model(candidate, rerun):
    def deterministic(metrics):
        return {key: value for key, value in metrics.items() if key not in TIMINGS}

    assert deterministic(rerun.metrics) == deterministic(candidate.metrics)
    assert sha256_hex(rerun.model_bytes) == sha256_hex(candidate.model_bytes)


def test_a_crippled_config_is_clearly_worse(candidate, crippled):
    """What the quality gate will be tested with: one epoch of a two-filter network."""
    assert crippled.metrics["int8_accuracy"] < candidate.metrics["int8_accuracy"] - 0.2
    assert crippled.metrics["int8_drifted_accuracy"] < candidate.metrics["int8_drifted_accuracy"] - 0.2


def test_labels_must_index_the_label_names(digits):
    images, labels = digits
    with pytest.raises(ValueError, match="label_names"):
        run((images[:20], labels[:20] + 10), QUICK)


def test_the_config_loads_from_a_stored_document():
    config = TrainConfig.model_validate(
        {"grid": [{"filters": 8, "epochs": 3}], "augment": {"blur": {"enabled": True, "strength": 1.0}, "copies": 2}}
    )
    assert config.grid[0] == Hyperparameters(filters=8, epochs=3)
    assert config.augment.enabled_kinds() == ["shift", "blur", "low_light", "noise"]
    with pytest.raises(ValueError):
        TrainConfig.model_validate({"grid": []})


def test_every_configured_stress_is_one_the_trainer_builds():
    assert tuple(augment.STRESSES) == STRESSES


def test_production_is_scored_on_the_same_holdout_stresses_and_field_holdout(candidate, crippled, digits):
    """Production's accuracies are the candidate's own when production is the candidate, and its own otherwise."""
    images, labels = digits
    split = stratified_split(images, labels, seed=0)
    field_holdout = Examples(augment.low_light(images[:40], 0.88), labels[:40])  # dark "captures"
    stressed = stressed_holdouts_of(split.holdout, 0)
    same = _reference_metrics(candidate.model_bytes, split.holdout, stressed, field_holdout)
    assert same["production_int8_accuracy"] == candidate.metrics["int8_accuracy"]
    for stress in STRESSES:
        assert same[f"production_{stress_metric(stress)}"] == candidate.metrics[stress_metric(stress)], stress
    assert same["production_int8_field_accuracy"] == evaluate.accuracy(candidate.model_bytes, *field_holdout)
    other = _reference_metrics(crippled.model_bytes, split.holdout, stressed, field_holdout)
    assert other["production_int8_accuracy"] == crippled.metrics["int8_accuracy"]
    assert "production_int8_field_accuracy" not in _reference_metrics(
        candidate.model_bytes, split.holdout, stressed, Examples(images[:0], labels[:0]))
