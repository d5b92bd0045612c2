"""The machine-learning core of a training run: images in, a checked int8 candidate out.

split → augment → train (grid, best by validation) → convert (float, int8 +
metadata) → evaluate (clean holdout, field holdout, synthetic stresses, size,
LiteRT latency; production on the same images) → load-check (LiteRT,
MediaPipe, metadata read-back).

No cloud I/O happens here: the caller snapshots the data before and gates,
signs and publishes the returned ``Candidate`` after.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console

from shared.drift import baseline_statistics
from shared.image_stats import image_statistics
from trainer_job import convert, evaluate, stream
from shared.gate import (FIELD_IMAGES, FIELD_METRIC, FLOAT_ONLY_ERRORS, HOLDOUT_IMAGES, INT8_ONLY_ERRORS,
                         stress_metric)
from trainer_job.augment import STRESSES, AugmentConfig, augment, drifted
from trainer_job import backbone as backbones
from trainer_job.model import BACKBONE_GRIDS, DEFAULT_GRID, Hyperparameters, fit_streamed, search, train_best
from trainer_job.stages import Stages
from trainer_job.split import HOLDOUT_FRACTION, VALIDATION_FRACTION, Examples, stratified_split

# 64 MiB of pixels (about 22,000 images at 32×32, 440 at 224×224) costs the in-memory path about ten times that at
# its peak (augmented copies, float32 for Keras); above it a run streams. The digits take 5.5 MiB.
STREAM_ABOVE_MIB = 64
STAGES = ("split", "augment", "train", "convert", "evaluate", "load_check")
LOAD_CHECK_IMAGES = 3  # one per MediaPipe ImageClassifier instance: a few prove it, many only cost time


class TrainConfig(BaseModel):
    """How a model is trained; stored per model and recorded with every run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    augment: AugmentConfig = AugmentConfig()
    backbone: backbones.Backbone = Field(
        backbones.CNN, description="cnn: the small CNN (the default at every size); mobilenet_v3_small: "
        "keras.applications' MobileNetV3-Small fine-tuned whole (images of at least 32 px)")
    weights: backbones.Weights = Field(
        backbones.NO_WEIGHTS,
        description="what the backbone starts from: imagenet (pretrained, the default for mobilenet_v3_small; "
        "a run that cannot load them fails) or none (random; the only choice for cnn)")
    grid: tuple[Hyperparameters, ...] = Field(DEFAULT_GRID, min_length=1,
                                              description="searched by validation accuracy; defaults per backbone")
    holdout_fraction: float = Field(HOLDOUT_FRACTION, gt=0, lt=1)
    validation_fraction: float = Field(VALIDATION_FRACTION, gt=0, lt=1)
    image_size: int = Field(32, ge=8, le=512, description="images are resized to this square, RGB")
    latency_repeats: int = Field(200, ge=1)
    representative_samples: int = Field(convert.REPRESENTATIVE_SAMPLES, ge=1)
    stream_above_mib: int = Field(
        STREAM_ABOVE_MIB, ge=0,
        description="a run whose decoded images would take more than this streams them (trainer_job.stream): split "
        "first, decoded once into sharded TFRecords on local disk, trained from tf.data; at or below it they are "
        "decoded into memory (faster for small datasets)")

    @model_validator(mode="before")
    @classmethod
    def _backbone_defaults(cls, data: Any) -> Any:
        """Unset weights and grid take the backbone's defaults (ImageNet weights where it has them)."""
        if not isinstance(data, dict):
            return data
        backbone = data.get("backbone", backbones.CNN)
        if backbone not in backbones.BACKBONES:
            return data  # the field's own check names the choices
        defaults = {"weights": backbones.IMAGENET if backbone in backbones.PRETRAINED else backbones.NO_WEIGHTS,
                    "grid": BACKBONE_GRIDS[backbone]}
        return {**defaults, **{key: value for key, value in data.items() if value is not None or key not in defaults}}

    def streams(self, images: int) -> bool:
        """Whether a run over ``images`` images streams them rather than decoding them all into memory."""
        return images * self.image_size * self.image_size * 3 > self.stream_above_mib * 2**20

    @model_validator(mode="after")
    def _backbone_fits(self) -> "TrainConfig":
        backbones.check_weights(self.backbone, self.weights)
        backbones.check_image_size(self.backbone, self.image_size)
        return self


@dataclass(frozen=True)
class Candidate:
    """Everything the gate and the registry need about one trained model."""

    model_bytes: bytes  # int8 TFLite with metadata: exactly what would be published
    label_names: tuple[str, ...]
    metrics: dict[str, float]
    hyperparameters: dict[str, Any]
    trials: tuple[dict[str, Any], ...]
    sizes: dict[str, int]  # bytes: float and int8, bare and with metadata
    counts: dict[str, int]  # examples per split part
    stage_seconds: dict[str, float]
    metadata: dict[str, Any]  # as MetadataDisplayer reads it back from model_bytes
    load_check: dict[str, Any]
    baseline: dict[str, Any]  # what drift checks compare field traffic with
    seed: int
    float_model_bytes: bytes = field(repr=False, default=b"")  # the reference, never published
    backbone: dict[str, Any] = field(default_factory=dict)  # backbone.StartingWeights: what training started from


def train_candidate(
    images: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    config: TrainConfig | None = None,
    seed: int = 0,
    *,
    model_name: str = "model",
    version: str = "candidate",
    description: str = "Edgeloop image classifier",
    on_stage: Callable[[str], None] | None = None,
    console: Console | None = None,
    reference_model: bytes | None = None,
    field_captures: np.ndarray | None = None,
    field_holdout: np.ndarray | None = None,
    max_steps: int | None = None,
) -> Candidate:
    """Train, convert, evaluate and load-check one candidate from uint8 RGB images and class indices.

    ``labels[i]`` indexes ``label_names``. The same images, config and seed give
    the same metrics. ``on_stage(name)`` is called as each stage of ``STAGES``
    starts, so a caller can record stage times and which stage a crash hit.
    ``reference_model`` (the production model) is evaluated on the same
    holdouts, as ``production_*`` metrics, so the gate compares like for like.
    ``field_captures`` marks field captures, which train, except those ``field_holdout`` marks: they
    are the field holdout, scored like the clean holdout (``split.stratified_split``). ``max_steps`` bounds each
    epoch (benchmarks only).
    """
    config = config or TrainConfig()
    console = console or Console(stderr=True)
    images, labels = np.asarray(images, dtype=np.uint8), np.asarray(labels)
    _check_inputs(images, labels, label_names)
    backbones.check_image_size(config.backbone, min(images.shape[1:3]))
    # Before any work: ImageNet weights that cannot be loaded end the run here, never random weights instead.
    started_from, weights_file = backbones.starting_weights(config.backbone, config.weights)
    stages = Stages(console, on_stage)
    num_classes = len(label_names)

    split = stages.run(
        "split",
        lambda: stratified_split(images, labels, seed, config.holdout_fraction, config.validation_fraction,
                                 field_captures, field_holdout),
        lambda s: (f"train {len(s.train.labels)} · validation {len(s.validation.labels)} · holdout {len(s.holdout.labels)}"
                   f" · field holdout {len(s.field_holdout.labels)}"),
    )
    # Separate generators: the stresses must not change when augmentation is switched.
    train, stressed = stages.run(
        "augment",
        lambda: (
            Examples(*augment(*split.train, config.augment, np.random.default_rng([seed, 1]))),
            stressed_holdouts_of(split.holdout, seed),
        ),
        lambda r: f"{len(r[0].labels)} training images ({', '.join(config.augment.enabled_kinds()) if config.augment.copies else 'no augmentation'})",
    )
    trained = stages.run(
        "train",
        lambda: train_best(train, split.validation, config.grid, seed, num_classes=num_classes,
                           backbone=config.backbone, weights_file=weights_file, max_steps=max_steps),
        _describe_trained,
    )
    float_bare, int8_bare, published = stages.run(
        "convert",
        lambda: _convert(trained.model, split.train.images, label_names, config, model_name, version, description),
        _describe_conversion,
    )
    metrics = stages.run(
        "evaluate",
        lambda: {
            **_evaluate(trained, float_bare, published, split.holdout, stressed, split.field_holdout, config.latency_repeats),
            **_reference_metrics(reference_model, split.holdout, stressed, split.field_holdout),
        },
        _describe_metrics,
    )
    load_check, metadata = stages.run(
        "load_check",
        lambda: _load_check(published, split.holdout, label_names),
        _describe_load_check,
    )

    return _candidate(published, float_bare, int8_bare, trained, label_names, metrics, stages, load_check, metadata,
                      counts={"train": len(split.train.labels), "train_augmented": len(train.labels),
                              "validation": len(split.validation.labels), "holdout": len(split.holdout.labels),
                              "field_holdout": len(split.field_holdout.labels)},
                      baseline=_baseline(published, split, label_names, seed), seed=seed, started_from=started_from)


def train_candidate_streamed(
    cache: stream.ImageCache,
    label_names: Sequence[str],
    config: TrainConfig | None = None,
    seed: int = 0,
    *,
    model_name: str = "model",
    version: str = "candidate",
    description: str = "Edgeloop image classifier",
    on_stage: Callable[[str], None] | None = None,
    console: Console | None = None,
    reference_model: bytes | None = None,
    max_steps: int | None = None,
) -> Candidate:
    """``train_candidate`` for a run that streams: the same stages, gate metrics and records, read from ``cache``.

    ``cache`` holds the parts ``split.split_indices`` cut (``stream.write_cache``). Training reads them through
    ``stream.training_stream``; int8 calibration takes the training part's first ``representative_samples``
    images (as the in-memory path does); evaluation, the load check and the drift baseline go through the parts
    batch by batch. ``max_steps`` bounds each epoch (benchmarks only).
    """
    config = config or TrainConfig()
    console = console or Console(stderr=True)
    backbones.check_image_size(config.backbone, cache.image_size)
    started_from, weights_file = backbones.starting_weights(config.backbone, config.weights)
    stages = Stages(console, on_stage)
    num_classes = len(label_names)
    for part in ("train", "validation", "holdout"):
        if not cache.count(part):
            raise ValueError(f"the streamed {part} part is empty")
        if cache.labels[part].min() < 0 or cache.labels[part].max() >= num_classes:
            raise ValueError(f"labels must index label_names (0..{num_classes - 1})")

    counts = stages.run(
        "split", lambda: {part: cache.count(part) for part in stream.PARTS},
        lambda c: (f"train {c['train']} · validation {c['validation']} · holdout {c['holdout']}"
                   f" · field holdout {c['field_holdout']} (streamed from {sum(map(len, cache.shards.values()))} shards)"),
    )
    augmented = stages.run(
        "augment", lambda: stream.augmented_count(counts["train"], config.augment),
        lambda n: f"{n} training images per epoch, drifted as they stream "
                  f"({', '.join(config.augment.enabled_kinds()) if config.augment.copies else 'no augmentation'})",
    )
    trained = stages.run(
        "train",
        lambda: search(config.grid,
                       lambda hp: fit_streamed(cache, config.augment, num_classes, hp, seed, config.backbone,
                                               weights_file, max_steps),
                       lambda model: evaluate.keras_accuracy_streamed(model, stream.eval_batches(cache, "validation"))),
        _describe_trained,
    )
    float_bare, int8_bare, published = stages.run(
        "convert",
        lambda: _convert(trained.model, stream.first_images(cache, "train", config.representative_samples),
                         label_names, config, model_name, version, description),
        _describe_conversion,
    )
    metrics, confidences = stages.run(
        "evaluate",
        lambda: _evaluate_streamed(cache, trained.model, float_bare, published, reference_model, seed,
                                   config.latency_repeats),
        lambda r: _describe_metrics(r[0]),
    )
    holdout_head = Examples(stream.first_images(cache, "holdout", LOAD_CHECK_IMAGES),
                            cache.labels["holdout"][:LOAD_CHECK_IMAGES])
    load_check, metadata = stages.run(
        "load_check", lambda: _load_check(published, holdout_head, label_names),
        _describe_load_check,
    )
    return _candidate(published, float_bare, int8_bare, trained, label_names, metrics, stages, load_check, metadata,
                      counts={"train": counts["train"], "train_augmented": augmented, "validation": counts["validation"],
                              "holdout": counts["holdout"], "field_holdout": counts["field_holdout"]},
                      baseline=_baseline_streamed(cache, confidences, label_names, seed), seed=seed,
                      started_from=started_from)


def _candidate(published: bytes, float_bare: bytes, int8_bare: bytes, trained, label_names: Sequence[str],
               metrics: dict[str, float], stages: Stages, load_check: dict[str, Any], metadata: dict[str, Any], *,
               counts: dict[str, int], baseline: dict[str, Any], seed: int, started_from) -> Candidate:
    """The candidate both paths return, from what their stages produced."""
    return Candidate(
        model_bytes=published,
        label_names=tuple(label_names),
        metrics={**metrics, "val_accuracy": trained.val_accuracy, "size_bytes": len(published),
                 "size_ratio": round(len(float_bare) / len(int8_bare), 3)},
        hyperparameters=trained.hyperparameters.as_dict(),
        trials=tuple(trial.as_dict() for trial in trained.trials),
        sizes={"float_bytes": len(float_bare), "int8_bytes": len(int8_bare), "published_bytes": len(published)},
        counts=counts,
        stage_seconds=dict(stages.seconds),
        metadata=metadata,
        load_check=load_check,
        baseline=baseline,
        seed=seed,
        float_model_bytes=float_bare,
        backbone=started_from.as_dict(),
    )


def _describe_trained(trained) -> str:
    return f"best of {len(trained.trials)}: val accuracy {trained.val_accuracy:.4f} · {_describe(trained.hyperparameters)}"


def _describe_conversion(converted: tuple[bytes, bytes, bytes]) -> str:
    float_bare, int8_bare, _ = converted
    return (f"float {len(float_bare) / 1024:.0f} KiB → int8 {len(int8_bare) / 1024:.0f} KiB "
            f"({len(float_bare) / len(int8_bare):.2f}× smaller)")


def _describe_load_check(checked: tuple[dict[str, Any], dict[str, Any]]) -> str:
    load_check, metadata = checked
    return f"MediaPipe {load_check['mediapipe_correct']}/{load_check['images']} correct · metadata labels {len(metadata['labels'])}"


class _Tally:
    """Correct predictions and images seen, per metric, accumulated batch by batch."""

    def __init__(self) -> None:
        self.correct: dict[str, int] = {}
        self.seen: dict[str, int] = {}

    def add(self, name: str, predictions: np.ndarray, labels: np.ndarray) -> None:
        self.correct[name] = self.correct.get(name, 0) + int(np.sum(predictions == labels))
        self.seen[name] = self.seen.get(name, 0) + len(labels)

    def accuracies(self) -> dict[str, float]:
        return {name: self.correct[name] / self.seen[name] for name in self.correct if self.seen[name]}


def _evaluate_streamed(cache: stream.ImageCache, keras_model, float_bytes: bytes, int8_bytes: bytes,
                       reference: bytes | None, seed: int, repeats: int) -> tuple[dict[str, float], np.ndarray]:
    """``_evaluate`` and ``_reference_metrics`` in one pass over the holdouts, a batch at a time; the stresses
    draw from the generators ``stressed_holdouts_of`` uses, batch after batch, so their pixels are the ones the
    in-memory path scores. Also returns the int8 model's top-1 confidence on every holdout image (the baseline)."""
    lite_float, lite_int8 = evaluate.LiteModel(float_bytes), evaluate.LiteModel(int8_bytes)
    lite_reference = evaluate.LiteModel(reference) if reference is not None else None
    if lite_reference is not None and (lite_reference.input_shape[1:] != cache.image_shape
                                       or lite_reference.input_dtype != np.uint8):
        lite_reference = None  # production cannot read these inputs: no production metrics, as in _reference_metrics
    generators = {name: np.random.default_rng([seed, 2] if name == "dark" else [seed, 3 + i])
                  for i, name in enumerate(STRESSES)}
    tally, confidences, first = _Tally(), [], None
    disagreements = {INT8_ONLY_ERRORS: 0, FLOAT_ONLY_ERRORS: 0}
    for images, labels in stream.eval_batches(cache, "holdout"):
        first = images[0] if first is None else first
        probabilities = keras_model.predict_on_batch(images.astype(np.float32))
        tally.add("keras_accuracy", np.argmax(probabilities, axis=1), labels)
        float_predictions = lite_float.predict(images)
        tally.add("float_accuracy", float_predictions, labels)
        scores = lite_int8.probabilities(images)
        confidences.append(scores.max(axis=1))
        int8_predictions = np.argmax(scores, axis=1)
        tally.add("int8_accuracy", int8_predictions, labels)
        for name, count in _disagreements(float_predictions, int8_predictions, labels).items():
            disagreements[name] += count
        if lite_reference is not None:
            tally.add("production_int8_accuracy", lite_reference.predict(images), labels)
        for name, stress in STRESSES.items():
            stressed = stress(images, generators[name])  # "dark" is ``drifted``
            if name == "dark":
                tally.add("float_drifted_accuracy", lite_float.predict(stressed), labels)
            tally.add(stress_metric(name), lite_int8.predict(stressed), labels)
            if lite_reference is not None:
                tally.add(f"production_{stress_metric(name)}", lite_reference.predict(stressed), labels)
    for images, labels in stream.eval_batches(cache, "field_holdout"):
        tally.add(FIELD_METRIC, lite_int8.predict(images), labels)
        if lite_reference is not None:
            tally.add(f"production_{FIELD_METRIC}", lite_reference.predict(images), labels)
    metrics = {**tally.accuracies(), HOLDOUT_IMAGES: cache.count("holdout"), **disagreements,
               FIELD_IMAGES: cache.count("field_holdout"),
               "latency_us": round(evaluate.latency_us(int8_bytes, first, repeats), 1)}
    return metrics, np.concatenate(confidences)


BASELINE_STATS_IMAGES = 20_000  # image statistics of at most this many training images (the baseline keeps 500)


def _baseline_streamed(cache: stream.ImageCache, confidences: np.ndarray, label_names: Sequence[str],
                       seed: int) -> dict[str, Any]:
    """``_baseline`` from the parts on disk: image statistics of an even sample of the clean training and
    validation images (every k-th), confidences on the whole holdout, the label mix of both parts."""
    stats = []
    for part in ("train", "validation"):
        every = max(1, math.ceil((cache.count("train") + cache.count("validation")) / BASELINE_STATS_IMAGES))
        offset = 0
        for images, _ in stream.eval_batches(cache, part):
            stats.extend(image_statistics(images[i]) for i in range((-offset) % every, len(images), every))
            offset += len(images)
    labels = np.concatenate([cache.labels["train"], cache.labels["validation"]])
    return baseline_statistics(stats, confidences, [label_names[i] for i in labels], seed)


def drifted_holdout_of(holdout: Examples, seed: int) -> Examples:
    """The dark-room stress a run with this seed is scored on (benchmarks score baselines on it too)."""
    return Examples(drifted(holdout.images, np.random.default_rng([seed, 2])), holdout.labels)


def stressed_holdouts_of(holdout: Examples, seed: int) -> dict[str, Examples]:
    """Every synthetic stress of the holdout, by name; each has its own generator, the dark room the one it always had."""
    return {
        name: drifted_holdout_of(holdout, seed) if name == "dark"
        else Examples(stress(holdout.images, np.random.default_rng([seed, 3 + i])), holdout.labels)
        for i, (name, stress) in enumerate(STRESSES.items())
    }


def _describe_metrics(m: dict[str, float]) -> str:
    stresses = " ".join(f"{name} {m[stress_metric(name)]:.4f}" for name in STRESSES)
    field_part = f" · field holdout ({m[FIELD_IMAGES]}) int8 {m[FIELD_METRIC]:.4f}" if m[FIELD_IMAGES] else ""
    production = (f" · production {m['production_int8_accuracy']:.4f}"
                  + (f" field {m['production_' + FIELD_METRIC]:.4f}" if f"production_{FIELD_METRIC}" in m else "")
                  if "production_int8_accuracy" in m else "")
    return (f"holdout float {m['float_accuracy']:.4f} int8 {m['int8_accuracy']:.4f}{field_part} · stresses {stresses}"
            f"{production} · {m['latency_us']:.0f} µs")


def _check_inputs(images: np.ndarray, labels: np.ndarray, label_names: Sequence[str]) -> None:
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB images N×H×W×3, got shape {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if labels.min() < 0 or labels.max() >= len(label_names):
        raise ValueError(f"labels must index label_names (0..{len(label_names) - 1})")


def _describe(hp: Hyperparameters) -> str:
    return ", ".join(f"{key} {value}" for key, value in hp.as_dict().items())


def _convert(model, train_images, label_names, config: TrainConfig, name, version, description):
    float_bare = convert.to_float_tflite(model)
    int8_bare = convert.to_int8_tflite(model, train_images, samples=config.representative_samples)
    published = convert.with_metadata(int8_bare, list(label_names), name, version, description)
    return float_bare, int8_bare, published


def _int8_accuracies(int8_bytes: bytes, holdout: Examples, stressed: dict[str, Examples], field_holdout: Examples) -> dict[str, float]:
    """One int8 model's accuracies on the clean holdout, every stress and the field holdout (when there is one)."""
    accuracies = {"int8_accuracy": evaluate.accuracy(int8_bytes, *holdout)}
    accuracies.update({stress_metric(name): evaluate.accuracy(int8_bytes, *examples) for name, examples in stressed.items()})
    if len(field_holdout.labels):
        accuracies[FIELD_METRIC] = evaluate.accuracy(int8_bytes, *field_holdout)
    return accuracies


def _disagreements(float_predictions: np.ndarray, int8_predictions: np.ndarray, labels: np.ndarray) -> dict[str, int]:
    """The holdout images only one of the two models gets right: what the gate judges the quantisation loss by."""
    float_right, int8_right = float_predictions == labels, int8_predictions == labels
    return {INT8_ONLY_ERRORS: int(np.sum(float_right & ~int8_right)),
            FLOAT_ONLY_ERRORS: int(np.sum(int8_right & ~float_right))}


def _evaluate(trained, float_bytes, int8_bytes, holdout: Examples, stressed: dict[str, Examples], field_holdout: Examples,
              repeats: int) -> dict[str, float]:
    labels = np.asarray(holdout.labels)
    float_predictions = evaluate.LiteModel(float_bytes).predict(holdout.images)
    int8_predictions = evaluate.LiteModel(int8_bytes).predict(holdout.images)
    return {
        "keras_accuracy": evaluate.keras_accuracy(trained.model, holdout),
        "float_accuracy": float(np.mean(float_predictions == labels)),  # as evaluate.accuracy computes it
        "float_drifted_accuracy": evaluate.accuracy(float_bytes, *stressed["dark"]),
        **_int8_accuracies(int8_bytes, holdout, stressed, field_holdout),
        HOLDOUT_IMAGES: len(labels),
        **_disagreements(float_predictions, int8_predictions, labels),
        FIELD_IMAGES: len(field_holdout.labels),
        "latency_us": round(evaluate.latency_us(int8_bytes, holdout.images[0], repeats), 1),
    }


def _reference_metrics(reference: bytes | None, holdout: Examples, stressed: dict[str, Examples],
                       field_holdout: Examples) -> dict[str, float]:
    """The production model's accuracies on this run's holdouts (none if it cannot read these inputs)."""
    if reference is None:
        return {}
    lite = evaluate.LiteModel(reference)
    if lite.input_shape[1:] != holdout.images.shape[1:] or lite.input_dtype != np.uint8:
        return {}
    return {f"production_{name}": value for name, value in _int8_accuracies(reference, holdout, stressed, field_holdout).items()}


def _load_check(published: bytes, holdout: Examples, label_names: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Open the published bytes the way clients do and check they still say the right things."""
    metadata = convert.read_metadata(published)
    if metadata["labels"] != list(label_names):
        raise RuntimeError(f"metadata labels {metadata['labels']} differ from the training labels")
    lite = evaluate.LiteModel(published)
    if lite.input_shape[1:] != holdout.images.shape[1:] or lite.input_dtype != np.uint8:
        raise RuntimeError(f"published input is {lite.input_dtype.__name__}{lite.input_shape}, expected uint8 RGB")
    declared = convert.declared_input_shape(published)
    if declared[0] != convert.PUBLISHED_BATCH:  # LiteRT.js in browsers runs only the batch the file declares
        raise RuntimeError(f"published input declares batch {declared[0]}, expected {convert.PUBLISHED_BATCH}")
    sample = holdout.images[:LOAD_CHECK_IMAGES]
    litert_labels = [label_names[i] for i in lite.predict(sample)]
    mediapipe_results = [evaluate.mediapipe_top1(published, image) for image in sample]
    mediapipe_labels = [label for label, _ in mediapipe_results]
    # The two runtimes read the same int8 graph: any disagreement means a broken file or metadata.
    if mediapipe_labels != litert_labels:
        raise RuntimeError(f"MediaPipe says {mediapipe_labels}, LiteRT says {litert_labels}")
    truth = [label_names[i] for i in holdout.labels[:LOAD_CHECK_IMAGES]]
    return (
        {
            "images": len(sample),
            "declared_input": list(declared),
            "litert_labels": litert_labels,
            "mediapipe_labels": mediapipe_labels,
            "mediapipe_scores": [round(score, 4) for _, score in mediapipe_results],
            "true_labels": truth,
            "mediapipe_correct": sum(p == t for p, t in zip(mediapipe_labels, truth)),
        },
        metadata,
    )


def _baseline(published: bytes, split, label_names: Sequence[str], seed: int) -> dict[str, Any]:
    """What drift checks compare field traffic with: image statistics of the clean training data, top-1
    confidences on the holdout and the training label mix (``shared.drift`` reads it)."""
    probabilities = evaluate.LiteModel(published).probabilities(split.holdout.images)
    reference = split.train_and_validation()
    return baseline_statistics(
        [image_statistics(image) for image in reference.images],
        probabilities.max(axis=1),
        [label_names[i] for i in reference.labels],
        seed,
    )
