"""Benchmark: MobileNetV3-Small against the small CNN on the generated shapes, side by side in one run.

Both train through the trainer's own pipeline (``train_candidate``: same split, augmentation, int8
conversion, metadata, load checks) on the same generated 96×96 dataset (``shared.shapes``), each with its
backbone's default grid; then both published int8 models are timed in LiteRT (the client SDK's runtime, one
thread) in alternating rounds, so a busy machine slows both alike. Every number is measured here, each time.

    python -m trainer_job.bench_backbone [--seed N] [--per-class N] [--weights none|imagenet]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import numpy as np
from rich.console import Console

from client_sdk.runtime import LiteRTClassifier
from shared.config import Gate
from shared.gate import evaluate_gate
from shared.shapes import IMAGE_SIZE, LABELS, as_arrays, generate_shapes
from trainer_job.backbone import CNN, MOBILENET_V3_SMALL, NO_WEIGHTS, WEIGHTS
from trainer_job.evaluate import LATENCY_WARMUP, LiteModel
from trainer_job.pipeline import TrainConfig, train_candidate
from trainer_job.split import stratified_split

PER_CLASS = 300  # 1,200 images: 780 train (1,560 with augmentation), 180 validation, 240 holdout
LATENCY_ROUNDS = 10  # alternating rounds per model
LATENCY_REPEATS = 50  # timed inferences per round


def configs(weights: str = NO_WEIGHTS, image_size: int = IMAGE_SIZE) -> dict[str, TrainConfig]:
    """The two contenders: identical but for the backbone (and the backbone's default grid)."""
    return {
        CNN: TrainConfig(image_size=image_size),
        MOBILENET_V3_SMALL: TrainConfig(backbone=MOBILENET_V3_SMALL, weights=weights, image_size=image_size),
    }


def side_by_side_latency_us(models: dict[str, bytes], image, rounds: int = LATENCY_ROUNDS,
                            repeats: int = LATENCY_REPEATS) -> dict[str, float]:
    """Median single-image LiteRT latency of each model on one thread, timed in alternating rounds."""
    runtimes = {name: LiteRTClassifier(data, num_threads=1) for name, data in models.items()}
    samples: dict[str, list[int]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, runtime in runtimes.items():
            samples[name] += runtime.invocation_times_ns(image, repeats, warmup=LATENCY_WARMUP)
    return {name: round(statistics.median(times) / 1000.0, 1) for name, times in samples.items()}


def run(seed: int = 0, per_class: int = PER_CLASS, weights: str = NO_WEIGHTS, console: Console | None = None,
        contenders: dict[str, TrainConfig] | None = None, image_size: int = IMAGE_SIZE, gate: Gate | None = None,
        latency_rounds: int = LATENCY_ROUNDS) -> dict[str, Any]:
    """Train every contender on one generated dataset and split; returns every number, per contender."""
    console = console or Console(stderr=True)
    contenders = contenders or configs(weights, image_size)
    gate = gate or Gate()
    images, labels = as_arrays(generate_shapes(per_class, seed, image_size))
    first = next(iter(contenders.values()))
    split = stratified_split(images, labels, seed, first.holdout_fraction, first.validation_fraction)
    results: dict[str, Any] = {
        "seed": seed, "per_class": per_class, "image_size": image_size, "cpu_count": os.cpu_count(),
        "images": len(labels), "holdout_images": len(split.holdout.labels), "models": {},
        "load_average_start": round(os.getloadavg()[0], 1),  # other work on the machine slows every timing here
    }
    published = {}
    for name, config in contenders.items():
        console.rule(f"[bold]{name}[/] · weights {config.weights} · {image_size}×{image_size}")
        started = time.perf_counter()
        candidate = train_candidate(images, labels, LABELS, config, seed, model_name="shapes", version=name,
                                    console=console)
        wall = time.perf_counter() - started
        m = candidate.metrics
        published[name] = candidate.model_bytes
        verdict = evaluate_gate(m, gate)
        results["models"][name] = {
            "backbone": candidate.backbone,
            "float_accuracy": round(m["float_accuracy"], 4),
            "int8_accuracy": round(m["int8_accuracy"], 4),
            "int8_drifted_accuracy": round(m["int8_drifted_accuracy"], 4),
            "quantisation_loss_points": round(100 * (m["float_accuracy"] - m["int8_accuracy"]), 2),
            # How faithfully int8 reproduces float, whatever the accuracy: the share of holdout images on which
            # the published int8 model and the float model pick the same class.
            "int8_float_agreement": round(float(np.mean(LiteModel(candidate.model_bytes).predict(split.holdout.images)
                                                        == LiteModel(candidate.float_model_bytes).predict(split.holdout.images))), 4),
            "published_bytes": candidate.sizes["published_bytes"],
            "float_bytes": candidate.sizes["float_bytes"],
            "train_seconds": round(candidate.stage_seconds["train"], 1),
            "convert_seconds": round(candidate.stage_seconds["convert"], 1),
            "pipeline_seconds": round(wall, 1),
            "gate_passed": verdict.passed,
            "gate_failures": verdict.reasons(),
            "hyperparameters": candidate.hyperparameters,
        }
    console.print(f"timing both int8 models side by side ({latency_rounds} alternating rounds)")
    latency = side_by_side_latency_us(published, split.holdout.images[0], rounds=latency_rounds)
    for name, microseconds in latency.items():
        results["models"][name]["latency_us"] = microseconds
    results["load_average_end"] = round(os.getloadavg()[0], 1)
    return results


TITLES = {CNN: "small CNN", MOBILENET_V3_SMALL: "MobileNetV3-Small"}


def markdown(r: dict[str, Any], command: str = "edgeloop bench backbone") -> str:
    """The BENCHMARKS.md section for ``run``'s results: one column per backbone, one row per measure."""
    models = r["models"]
    names = list(models)

    def row(label: str, cell) -> str:
        return f"| {label} | " + " | ".join(cell(models[name]) for name in names) + " |"

    def gate(m: dict[str, Any]) -> str:
        return "passed" if m["gate_passed"] else "rejected: " + "; ".join(m["gate_failures"])

    def grid(m: dict[str, Any]) -> str:
        hp = m["hyperparameters"]
        return f"{hp['epochs']} epochs, lr {hp['learning_rate']:g}, head {hp['dense_units']}"

    table = "\n".join([
        "| measure | " + " | ".join(TITLES.get(name, name) for name in names) + " |",
        "|---|" + "---|" * len(names),
        row("starting weights", lambda m: m["backbone"]["weights"]),
        row("holdout accuracy, int8 (published)", lambda m: f"{m['int8_accuracy']:.4f}"),
        row("holdout accuracy, float", lambda m: f"{m['float_accuracy']:.4f}"),
        row("int8 picks float's class", lambda m: f"{100 * m['int8_float_agreement']:.1f}%"),
        row("dark holdout accuracy, int8", lambda m: f"{m['int8_drifted_accuracy']:.4f}"),
        row("int8 file with metadata", lambda m: f"{m['published_bytes'] / 1024:.0f} KiB"),
        row("LiteRT latency per image, 1 thread", lambda m: f"{m['latency_us']:.0f} µs"),
        row("training, every trial of its grid", lambda m: f"{m['train_seconds']:.0f} s"),
        row("whole pipeline", lambda m: f"{m['pipeline_seconds']:.0f} s"),
        row("grid point kept", grid),
        row("default gate", gate),
    ])
    pretrained = [TITLES.get(name, name) for name in names if models[name]["backbone"]["pretrained_loaded"]]
    imagenet_note = ("MobileNetV3-Small is meant to be fine-tuned from ImageNet weights, which this machine cannot "
                     "download: where it can, `--weights imagenet` measures that.\n")
    start = (f"{', '.join(pretrained)} starts from ImageNet weights" if pretrained
             else "every network starts from random weights (weights none: no download here)")
    return f"""## Backbone (`{command}`)

The generated shapes (`shared/shapes.py`, seed {r['seed']}): {r['images']:,} images of {r['image_size']}×{r['image_size']},
four classes, one split for both ({r['holdout_images']} holdout images). Each trains through the trainer's own
pipeline with its backbone's default grid; {start};
both int8 models are then timed side by side in the client SDK's LiteRT runtime, in alternating rounds.

{table}

{'' if pretrained else imagenet_note}Training and pipeline times include Keras tracing the network on its first epoch. Timings are noisy: the
{r['cpu_count']} cores were shared with other work (load average {r['load_average_start']} at the start,
{r['load_average_end']} at the end). "Whole pipeline" is split, augment, train, convert (float and int8),
evaluate and load-check.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-class", type=int, default=PER_CLASS)
    parser.add_argument("--weights", choices=WEIGHTS, default=NO_WEIGHTS)
    args = parser.parse_args()
    print(json.dumps(run(args.seed, args.per_class, args.weights), indent=2, default=str))


if __name__ == "__main__":
    main()
