"""Which network a model trains: the small CNN, or MobileNetV3-Small from ``keras.applications``.

The backbone is chosen per model (``TrainConfig.backbone``), with its starting weights
(``TrainConfig.weights``): ``imagenet`` fine-tunes from ImageNet-pretrained weights, which Keras keeps
in its cache (``$KERAS_HOME/models``, ``~/.keras/models`` by default; the trainer image has them baked
in) and downloads there when missing; ``none`` starts from random weights and needs nothing, which is
what machines without internet (and the tests) use. Asking for ImageNet weights that can be neither
found nor downloaded stops the run with ``WeightsUnavailable``; it never falls back to random weights.

Every backbone takes raw uint8-valued RGB pixels and rescales them itself (MobileNetV3's
``include_preprocessing`` maps 0..255 to -1..1), so the int8 model's input stays plain uint8 RGB.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

CNN = "cnn"
MOBILENET_V3_SMALL = "mobilenet_v3_small"
BACKBONES = (CNN, MOBILENET_V3_SMALL)
Backbone = Literal["cnn", "mobilenet_v3_small"]
IMAGENET = "imagenet"
NO_WEIGHTS = "none"
Weights = Literal["imagenet", "none"]
WEIGHTS = (IMAGENET, NO_WEIGHTS)

# MobileNetV3-Small's five stride-2 stages leave a 1×1 feature map at 32 px; keras.applications refuses less.
MIN_IMAGE_SIZE = {CNN: 8, MOBILENET_V3_SMALL: 32}
PRETRAINED = {MOBILENET_V3_SMALL}  # backbones that have ImageNet weights
# The width multiplier of the published ImageNet weights (1.0 or 0.75; 1.0 is the better of the two).
MOBILENET_ALPHA = 1.0
# Keras builds MobileNetV3 with batch-norm momentum 0.999, tuned for ImageNet's millions of steps: after
# the few hundred steps of one of our runs the moving statistics have barely left their start, and a
# network trained from random weights then scores near chance at inference. 0.9 follows them in a few dozen.
BATCH_NORM_MOMENTUM = 0.9
KERAS_HOME_ENV = "KERAS_HOME"  # Keras' own cache setting, read here at call time


class WeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for and can be neither found in the cache nor downloaded."""


@dataclass(frozen=True)
class StartingWeights:
    """What a run starts from, recorded on its run and version documents."""

    backbone: str
    weights: str  # as asked: imagenet or none
    pretrained_loaded: bool  # the ImageNet file was found (or downloaded), checked against its hash and loaded
    file: str | None = None  # the weights file's name in the Keras cache
    md5: str | None = None  # its hash, as keras.applications publishes it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_image_size(backbone: str, size: int) -> None:
    """Refuse an image size the backbone cannot take, saying why and what to do instead."""
    minimum = MIN_IMAGE_SIZE[backbone]
    if size < minimum:
        reason = (" (its five stride-2 stages need at least 32×32 pixels, where they leave a 1×1 feature map);"
                  f" use backbone {CNN!r} for smaller images" if backbone == MOBILENET_V3_SMALL else "")
        raise ValueError(f"backbone {backbone!r} needs images of at least {minimum}×{minimum} px, got {size}×{size}{reason}")


def check_weights(backbone: str, weights: str) -> None:
    if weights == IMAGENET and backbone not in PRETRAINED:
        raise ValueError(f"backbone {backbone!r} has no ImageNet weights: use weights {NO_WEIGHTS!r}")


def imagenet_weights_file() -> tuple[str, str, str]:
    """(file name, URL, md5) of MobileNetV3-Small's ImageNet weights without the classifier, as keras.applications names them."""
    from keras.src.applications import mobilenet_v3  # its published file names and hashes: one source for them

    name = f"small_224_{MOBILENET_ALPHA}_float"
    file_name = f"weights_mobilenet_v3_{name}_no_top_v2.h5"
    return file_name, mobilenet_v3.BASE_WEIGHT_PATH + file_name, mobilenet_v3.WEIGHTS_HASHES[name][1]


def cache_dir() -> Path:
    """Where Keras caches downloads: ``$KERAS_HOME`` or ``~/.keras`` (its ``models/`` holds weights)."""
    return Path(os.environ.get(KERAS_HOME_ENV) or Path.home() / ".keras")


def starting_weights(backbone: str, weights: str) -> tuple[StartingWeights, Path | None]:
    """What a run of ``backbone`` starts from, and the weights file to load (``None``: random weights).

    ImageNet weights come from the Keras cache, verified against their published hash, and are
    downloaded into it when missing; if neither works this raises ``WeightsUnavailable`` naming the
    file, the cache and the way out.
    """
    check_weights(backbone, weights)
    if weights == NO_WEIGHTS:
        return StartingWeights(backbone, weights, pretrained_loaded=False), None
    import keras

    file_name, url, md5 = imagenet_weights_file()
    cache = cache_dir()
    try:
        # Keras looks elsewhere (/tmp/.keras) when the cache directory does not exist yet: make it, so the file is
        # looked for, and downloaded to, where this says.
        (cache / "models").mkdir(parents=True, exist_ok=True)
        path = Path(keras.utils.get_file(file_name, url, cache_subdir="models", file_hash=md5, cache_dir=str(cache)))
    except Exception as exc:  # noqa: BLE001 - get_file raises a bare Exception for network failures
        raise WeightsUnavailable(
            f"ImageNet weights for {backbone} ({file_name}) are not in the Keras cache {cache / 'models'} and could not be "
            f"downloaded ({type(exc).__name__}: {exc}). Bake them into the trainer image (trainer_job/Dockerfile does), "
            f"put the file in ${KERAS_HOME_ENV}/models, or train from random weights with weights {NO_WEIGHTS!r} "
            f"(python -m trainer_job --weights none, or the model's TrainConfig)"
        ) from exc
    return StartingWeights(backbone, weights, pretrained_loaded=True, file=file_name, md5=md5), path


def mobilenet_v3_small(image_shape: tuple[int, int, int], num_classes: int, dense_units: int, dropout: float,
                       weights_file: Path | None = None):
    """MobileNetV3-Small without its ImageNet classifier, a small head on its pooled features; not compiled.

    Input: raw uint8-valued RGB pixels (the network's own ``Rescaling`` maps them to -1..1).
    """
    import keras
    from keras import layers

    check_image_size(MOBILENET_V3_SMALL, min(image_shape[:2]))
    base = keras.applications.MobileNetV3Small(
        input_shape=image_shape, alpha=MOBILENET_ALPHA, include_top=False, pooling="avg", include_preprocessing=True,
        weights=str(weights_file) if weights_file is not None else None,
    )
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BATCH_NORM_MOMENTUM
    x = layers.Dense(dense_units, activation="relu")(base.output)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(base.input, outputs, name=f"edgeloop_{MOBILENET_V3_SMALL}")
