"""The Keras CNN, and a small hyperparameter grid searched by validation accuracy.

The model takes uint8-valued RGB pixels (0..255) and rescales them itself, so
the converted TFLite model's input is plain uint8 RGB, which is what
MediaPipe's ImageClassifier and the client SDK feed it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from trainer_job.backbone import BACKBONES, CNN, MOBILENET_V3_SMALL, check_image_size, mobilenet_v3_small
from trainer_job.evaluate import keras_accuracy
from trainer_job.split import Examples

IMAGE_SHAPE = (32, 32, 3)


@dataclass(frozen=True)
class Hyperparameters:
    filters: int = 16  # the CNN's first conv block; the second has twice as many (MobileNet's widths are its own)
    dense_units: int = 256  # the hidden dense layer of the head, on either backbone
    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 2e-3
    dropout: float = 0.3

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Two trials, about 8 s each on two CPU cores with the default augmentation.
# The dense layer holds most of the weights; int8 shrinks weights 4x but not the
# file's fixed overhead (graph, names, scales), so a wide dense layer is what
# lets the int8 file come out >= 3.5x smaller (3.6x at 256 units, 3.5x at 128).
DEFAULT_GRID: tuple[Hyperparameters, ...] = (
    Hyperparameters(filters=16),
    Hyperparameters(filters=24),
)
# MobileNetV3-Small, fine-tuned whole: one trial (each costs far more than a CNN's), a narrower head
# (the backbone's 576 pooled features carry the work).
MOBILENET_GRID: tuple[Hyperparameters, ...] = (
    Hyperparameters(dense_units=128, epochs=15, learning_rate=3e-3, dropout=0.2),
)
BACKBONE_GRIDS: dict[str, tuple[Hyperparameters, ...]] = {CNN: DEFAULT_GRID, MOBILENET_V3_SMALL: MOBILENET_GRID}


@dataclass(frozen=True)
class Trial:
    hyperparameters: Hyperparameters
    val_accuracy: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"hyperparameters": self.hyperparameters.as_dict(), "val_accuracy": self.val_accuracy, "seconds": self.seconds}


@dataclass(frozen=True)
class TrainedModel:
    model: Any  # keras.Model; typed loosely so importing this module stays cheap
    hyperparameters: Hyperparameters
    val_accuracy: float
    trials: tuple[Trial, ...]  # every trial, the winner included, in grid order


def build_model(
    num_classes: int,
    hp: Hyperparameters,
    image_shape: tuple[int, int, int] = IMAGE_SHAPE,
    decay_steps: int | None = None,
    backbone: str = CNN,
    weights_file: Path | None = None,
):
    """The ``backbone`` network on uint8-valued RGB input, compiled and ready to fit.

    ``cnn`` is the small CNN below; ``mobilenet_v3_small`` is ``trainer_job.backbone``'s, started from
    ``weights_file`` (``None``: random weights) and fine-tuned whole. With ``decay_steps`` (all the
    training steps of a run) the learning rate falls to zero along a cosine: the last epochs settle
    instead of bouncing, which made holdout accuracy about half a point better and steadier across seeds.
    """
    import keras

    if backbone == MOBILENET_V3_SMALL:
        model = mobilenet_v3_small(image_shape, num_classes, hp.dense_units, hp.dropout, weights_file)
    elif backbone == CNN:
        if weights_file is not None:
            raise ValueError(f"backbone {CNN!r} has no pretrained weights to load")
        model = _cnn(num_classes, hp, image_shape)
    else:
        raise ValueError(f"unknown backbone {backbone!r}: one of {', '.join(BACKBONES)}")
    learning_rate = hp.learning_rate
    if decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(hp.learning_rate, decay_steps)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _cnn(num_classes: int, hp: Hyperparameters, image_shape: tuple[int, int, int]):
    """A small CNN on uint8-valued RGB input, not compiled."""
    import keras
    from keras import layers

    check_image_size(CNN, min(image_shape[:2]))
    return keras.Sequential(
        [
            keras.Input(shape=image_shape, name="image"),
            layers.Rescaling(1.0 / 255.0),
            # The digits are 8x8 images upscaled to 32x32: halving loses nothing and
            # quarters the cost of every conv layer after it.
            layers.AveragePooling2D(2),
            layers.Conv2D(hp.filters, 3, padding="same", activation="relu"),
            layers.Conv2D(hp.filters, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(2 * hp.filters, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(hp.dropout),
            layers.Dense(hp.dense_units, activation="relu"),
            layers.Dropout(hp.dropout),
            layers.Dense(num_classes, activation="softmax", name="probabilities"),
        ],
        name="edgeloop_cnn",
    )


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds, and deterministic kernels: same data, same metrics and bytes."""
    import keras
    import tensorflow as tf

    # A fresh session also restarts Keras's layer-name counters: the names end up
    # in the TFLite file, so without this a rerun in the same process differs in size.
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fit(train: Examples, num_classes: int, hp: Hyperparameters, seed: int, backbone: str = CNN,
        weights_file: Path | None = None, max_steps: int | None = None):
    """Build and train one model from a fixed seed. ``max_steps`` bounds each epoch (benchmarks only)."""
    seed_everything(seed)
    steps_per_epoch = math.ceil(len(train.labels) / hp.batch_size)
    bounded = max_steps is not None and max_steps < steps_per_epoch
    if bounded:
        steps_per_epoch = max_steps
    model = build_model(num_classes, hp, train.images.shape[1:], decay_steps=steps_per_epoch * hp.epochs,
                        backbone=backbone, weights_file=weights_file)
    model.fit(
        train.images.astype(np.float32),
        train.labels,
        epochs=hp.epochs,
        batch_size=hp.batch_size,
        shuffle=True,
        verbose=0,
        **({"steps_per_epoch": steps_per_epoch} if bounded else {}),
    )
    return model


def fit_streamed(cache, augment_config, num_classes: int, hp: Hyperparameters, seed: int, backbone: str = CNN,
                 weights_file: Path | None = None, max_steps: int | None = None):
    """``fit`` from a streaming run's image cache (``trainer_job.stream``): the same model and schedule, its
    examples read from disk batch by batch. ``max_steps`` bounds each epoch (the scale benchmark's runs)."""
    from trainer_job import stream

    seed_everything(seed)
    dataset, examples = stream.training_stream(cache, augment_config, seed, hp.batch_size)
    steps = stream.steps_per_epoch(examples, hp.batch_size)
    if max_steps is not None:
        steps = min(steps, max_steps)
    dataset = dataset.repeat()  # Keras keeps one iterator across epochs when it is told their steps
    model = build_model(num_classes, hp, cache.image_shape, decay_steps=steps * hp.epochs, backbone=backbone,
                        weights_file=weights_file)
    model.fit(dataset, epochs=hp.epochs, steps_per_epoch=steps, shuffle=False, verbose=0)  # it shuffles itself
    return model


def train_best(
    train: Examples,
    val: Examples,
    grid: Sequence[Hyperparameters] = DEFAULT_GRID,
    seed: int = 0,
    num_classes: int | None = None,
    backbone: str = CNN,
    weights_file: Path | None = None,
    max_steps: int | None = None,
) -> TrainedModel:
    """Train every grid point of ``backbone`` (from ``weights_file``, if any), keep the best by validation
    accuracy (first wins a tie). ``max_steps`` bounds each epoch (benchmarks only)."""
    classes = num_classes if num_classes is not None else int(max(train.labels.max(), val.labels.max())) + 1
    return search(grid, lambda hp: fit(train, classes, hp, seed, backbone, weights_file, max_steps),
                  lambda model: keras_accuracy(model, val))


def search(grid: Sequence[Hyperparameters], fit_one: Callable[[Hyperparameters], Any],
           score: Callable[[Any], float]) -> TrainedModel:
    """Fit every grid point with ``fit_one``, keep the best by ``score`` (validation accuracy; first wins a tie)."""
    if not grid:
        raise ValueError("the hyperparameter grid is empty")
    best_model, best_trial, trials = None, None, []
    for hp in grid:
        started = time.perf_counter()
        model = fit_one(hp)
        trial = Trial(hp, score(model), round(time.perf_counter() - started, 3))
        trials.append(trial)
        if best_trial is None or trial.val_accuracy > best_trial.val_accuracy:
            best_model, best_trial = model, trial
    return TrainedModel(best_model, best_trial.hyperparameters, best_trial.val_accuracy, tuple(trials))
