"""Score and load-check TFLite models the way clients will run them.

``LiteModel`` is the client SDK's own LiteRT runtime
(``client_sdk.runtime.LiteRTClassifier``, in ai-edge-litert; ``tf.lite.Interpreter``
is deprecated) with the trainer's vocabulary on top: shapes and dtypes, and
predictions for whole batches. ``mediapipe_top1`` loads a model in MediaPipe
Tasks' ImageClassifier, the standard mobile client, which reads the labels
from the model's metadata.
"""

from __future__ import annotations

import statistics

import numpy as np

from client_sdk.runtime import LiteRTClassifier

LATENCY_WARMUP = 5


class LiteModel(LiteRTClassifier):
    """The client's classifier, taking uint8 RGB batches (N×H×W×3) or single images (H×W×3)."""

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.input.shape

    @property
    def input_dtype(self) -> type:
        return np.dtype(self.input.dtype).type

    @property
    def output_dtype(self) -> type:
        return np.dtype(self.output.dtype).type

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class scores as float32 (N×classes), dequantized when the output is quantized."""
        images = np.asarray(images)
        return self.batch_scores(images[None, ...] if images.ndim == 3 else images)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The top class index of every image."""
        return np.argmax(self.probabilities(images), axis=1)


def keras_accuracy(model, examples) -> float:
    """Accuracy of the float Keras model before any conversion (``examples``: images, labels)."""
    images, labels = examples
    probabilities = model.predict(np.asarray(images, dtype=np.float32), batch_size=256, verbose=0)
    return float(np.mean(np.argmax(probabilities, axis=1) == np.asarray(labels)))


def keras_accuracy_streamed(model, batches) -> float:
    """``keras_accuracy`` over (images, labels) batches, one batch in memory at a time."""
    correct = total = 0
    for images, labels in batches:
        probabilities = model.predict_on_batch(np.asarray(images, dtype=np.float32))
        correct += int(np.sum(np.argmax(probabilities, axis=1) == np.asarray(labels)))
        total += len(labels)
    return correct / total if total else 0.0


def accuracy(tflite_bytes: bytes, images: np.ndarray, labels: np.ndarray) -> float:
    """Share of images whose top class is the label, as LiteRT computes it."""
    predictions = LiteModel(tflite_bytes).predict(images)
    return float(np.mean(predictions == np.asarray(labels)))


def latency_us(tflite_bytes: bytes, image: np.ndarray, repeats: int = 200) -> float:
    """Median wall time of one single-image inference on one thread, in microseconds."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    samples = LiteModel(tflite_bytes, num_threads=1).invocation_times_ns(image, repeats, warmup=LATENCY_WARMUP)
    return statistics.median(samples) / 1000.0


def mediapipe_top1(tflite_bytes: bytes, rgb_image: np.ndarray) -> tuple[str, float]:
    """The top label and score from MediaPipe Tasks' ImageClassifier, loaded from the model bytes.

    Labels come from the model's own metadata, so this also proves the
    metadata is readable by the standard mobile client.
    """
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_buffer=bytes(tflite_bytes)),
        max_results=1,
    )
    pixels = np.ascontiguousarray(rgb_image, dtype=np.uint8)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels))
    top = result.classifications[0].categories[0]
    return top.category_name, float(top.score)
