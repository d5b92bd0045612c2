"""Benchmark: the trainer's int8 model against scikit-learn's SVC, on one split, in one run.

Both are scored on the same stratified 20% holdout of the embedded digits (and
on its drifted copy); the SVC trains on everything else, the CNN on the same
images minus its validation share. Every number is measured here, each time.

    python -m trainer_job.bench_train [--seed N]   # JSON on stdout, progress on stderr
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

from shared.digits import LABELS, load_digits_rgb
from trainer_job.pipeline import TrainConfig, drifted_holdout_of, train_candidate
from trainer_job.split import stratified_split

# The "done when" targets (issue 5).
MAX_POINTS_BELOW_SVC = 0.5
MAX_POINTS_BELOW_FLOAT = 1.0
MIN_SIZE_RATIO = 3.5
MAX_WALL_SECONDS = 60.0


def _svc_scores(train_images, train_labels, holdout, drifted_holdout) -> tuple[float, float, float]:
    from sklearn.svm import SVC

    def features(images: np.ndarray) -> np.ndarray:  # the same pixels the CNN sees, scaled to 0..1
        return images.reshape(len(images), -1).astype(np.float32) / 255.0

    started = time.perf_counter()
    svc = SVC().fit(features(train_images), train_labels)
    seconds = time.perf_counter() - started
    return (
        float(svc.score(features(holdout.images), holdout.labels)),
        float(svc.score(features(drifted_holdout.images), drifted_holdout.labels)),
        seconds,
    )


def _points(a: float, b: float) -> float:
    return round(100.0 * (a - b), 2)


def run(seed: int = 0, config: TrainConfig | None = None) -> dict[str, Any]:
    """Measure SVC and the trainer's candidate side by side; returns every number and the target checks."""
    config = config or TrainConfig()
    digits = load_digits_rgb()
    images = np.stack([digit.rgb for digit in digits])
    labels = np.array([LABELS.index(digit.label) for digit in digits])

    split = stratified_split(images, labels, seed, config.holdout_fraction, config.validation_fraction)
    drifted_holdout = drifted_holdout_of(split.holdout, seed)
    baseline = split.train_and_validation()
    svc_accuracy, svc_drifted_accuracy, svc_seconds = _svc_scores(*baseline, split.holdout, drifted_holdout)

    started = time.perf_counter()
    candidate = train_candidate(images, labels, LABELS, config, seed, model_name="digits", version="bench")
    wall_seconds = time.perf_counter() - started
    m = candidate.metrics

    results = {
        "seed": seed,
        "cpu_count": os.cpu_count(),
        "holdout_images": len(split.holdout.labels),
        "svc_accuracy": round(svc_accuracy, 4),
        "svc_drifted_accuracy": round(svc_drifted_accuracy, 4),
        "svc_fit_seconds": round(svc_seconds, 2),
        "keras_accuracy": round(m["keras_accuracy"], 4),
        "float_accuracy": round(m["float_accuracy"], 4),
        "int8_accuracy": round(m["int8_accuracy"], 4),
        "float_drifted_accuracy": round(m["float_drifted_accuracy"], 4),
        "int8_drifted_accuracy": round(m["int8_drifted_accuracy"], 4),
        "int8_minus_svc_points": _points(m["int8_accuracy"], svc_accuracy),
        "int8_minus_float_points": _points(m["int8_accuracy"], m["float_accuracy"]),
        "float_bytes": candidate.sizes["float_bytes"],
        "int8_bytes": candidate.sizes["int8_bytes"],
        "published_bytes": candidate.sizes["published_bytes"],
        "size_ratio": round(candidate.sizes["float_bytes"] / candidate.sizes["int8_bytes"], 3),
        "latency_us": m["latency_us"],
        "train_wall_seconds": round(wall_seconds, 2),
        "stage_seconds": candidate.stage_seconds,
        "hyperparameters": candidate.hyperparameters,
        "trials": list(candidate.trials),
    }
    results["targets"] = {
        f"int8 within {MAX_POINTS_BELOW_SVC} points of SVC": results["int8_minus_svc_points"] >= -MAX_POINTS_BELOW_SVC,
        f"int8 at most {MAX_POINTS_BELOW_FLOAT} point below float": results["int8_minus_float_points"] >= -MAX_POINTS_BELOW_FLOAT,
        f"int8 file >= {MIN_SIZE_RATIO}x smaller than float": results["size_ratio"] >= MIN_SIZE_RATIO,
        f"training run under {MAX_WALL_SECONDS:.0f} s": wall_seconds < MAX_WALL_SECONDS,
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(run(args.seed), indent=2))


if __name__ == "__main__":
    main()
