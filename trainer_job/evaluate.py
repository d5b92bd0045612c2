"""Score and load-check TFLite models the way clients will run them.

``LiteModel`` runs a model in ai-edge-litert, the runtime the client SDK uses
(``tf.lite.Interpreter`` is deprecated); ``mediapipe_top1`` loads it in
MediaPipe Tasks' ImageClassifier, the standard mobile client, which reads the
labels from the model's metadata.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

LATENCY_WARMUP = 5


class LiteModel:
    """A TFLite model in ai-edge-litert, classifying uint8 RGB batches (N×H×W×3)."""

    def __init__(self, tflite_bytes: bytes, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=bytes(tflite_bytes), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = int(self._input["shape"][0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self._input["shape"])

    @property
    def input_dtype(self) -> type:
        return self._input["dtype"]

    @property
    def output_dtype(self) -> type:
        return self._output["dtype"]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class scores as float32 (N×classes), dequantized when the output is quantized."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None, ...]
        if images.dtype != np.uint8:
            raise ValueError(f"expected uint8 RGB pixels, got {images.dtype}")
        if len(images) != self._batch:
            self._resize(len(images))
        self._interpreter.set_tensor(self._input["index"], self._to_input(images))
        self._interpreter.invoke()
        return self._from_output(self._interpreter.get_tensor(self._output["index"]))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The top class index of every image."""
        return np.argmax(self.probabilities(images), axis=1)

    def invoke_once(self) -> None:
        """Run inference on whatever input is set (for latency measurements)."""
        self._interpreter.invoke()

    def _resize(self, batch: int) -> None:
        self._interpreter.resize_tensor_input(self._input["index"], [batch, *self.input_shape[1:]])
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = batch

    def _to_input(self, images: np.ndarray) -> np.ndarray:
        dtype = self._input["dtype"]
        if dtype == np.float32:
            return images.astype(np.float32)  # float models take 0..255 and rescale inside
        scale, zero_point = self._input["quantization"]
        if scale == 0:  # not quantized: raw integers
            return images.astype(dtype)
        info = np.iinfo(dtype)
        quantized = np.rint(images.astype(np.float32) / scale + zero_point)
        return np.clip(quantized, info.min, info.max).astype(dtype)

    def _from_output(self, raw: np.ndarray) -> np.ndarray:
        if raw.dtype == np.float32:
            return raw
        scale, zero_point = self._output["quantization"]
        if scale == 0:
            return raw.astype(np.float32)
        return (raw.astype(np.float32) - zero_point) * scale


def keras_accuracy(model, examples) -> float:
    """Accuracy of the float Keras model before any conversion (``examples``: images, labels)."""
    images, labels = examples
    probabilities = model.predict(np.asarray(images, dtype=np.float32), batch_size=256, verbose=0)
    return float(np.mean(np.argmax(probabilities, axis=1) == np.asarray(labels)))


def accuracy(tflite_bytes: bytes, images: np.ndarray, labels: np.ndarray) -> float:
    """Share of images whose top class is the label, as LiteRT computes it."""
    predictions = LiteModel(tflite_bytes).predict(images)
    return float(np.mean(predictions == np.asarray(labels)))


def latency_us(tflite_bytes: bytes, image: np.ndarray, repeats: int = 200) -> float:
    """Median wall time of one single-image inference on one thread, in microseconds."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    model = LiteModel(tflite_bytes, num_threads=1)
    model.probabilities(image)  # sets the input; the first calls also warm up caches
    for _ in range(LATENCY_WARMUP):
        model.invoke_once()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        model.invoke_once()
        samples.append(time.perf_counter_ns() - started)
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
