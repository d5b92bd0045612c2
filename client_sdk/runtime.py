"""A TFLite classifier in ai-edge-litert, described by what the file itself says.

Reads what the device needs without tflite-support: the tensors from the
interpreter, and the labels from the labels file tflite-support packs into the
model (a ZIP appended to the flatbuffer). The published contract is uint8 RGB
pixels in, raw 0..255 (the model rescales inside, its metadata normalisation is
the identity), so preprocessing is a resize and nothing else.

The trainer checks its candidates with this same class ("the way clients
will"), through two additions a device does not need: ``batch_scores`` scores
N images at once (also the trainer's float32 model, fed the same 0..255
values), and ``invocation_times_ns`` times the bare inference.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from dataclasses import dataclass

import numpy as np

LABELS_FILE = "labels.txt"


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str


def packed_labels(model_bytes: bytes) -> tuple[str, ...]:
    """The labels file packed in the model, one label per line; ValueError if there is none."""
    try:
        with zipfile.ZipFile(io.BytesIO(model_bytes)) as packed:
            names = packed.namelist()
            name = LABELS_FILE if LABELS_FILE in names else next((n for n in names if n.endswith(".txt")), None)
            if name is None:
                raise ValueError(f"no labels file among the packed files {names}")
            text = packed.read(name).decode("utf-8")
    except (zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ValueError(f"no readable packed labels file: {exc}") from None
    return tuple(line.strip() for line in text.splitlines() if line.strip())


class LiteRTClassifier:
    """One loaded model; ``scores`` and ``batch_scores`` are safe to call from several threads."""

    def __init__(self, model_bytes: bytes, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=bytes(model_bytes), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        # What the file declares, whatever batch size the interpreter is resized to later.
        self._declared = (_spec(self._input), _spec(self._output))
        self._lock = threading.Lock()  # one interpreter runs one invocation at a time

    @property
    def input(self) -> TensorSpec:
        return self._declared[0]

    @property
    def output(self) -> TensorSpec:
        return self._declared[1]

    def scores(self, pixels: np.ndarray) -> np.ndarray:
        """Class scores (float32, one per label) of one uint8 H×W×C image of the input's size."""
        return self.batch_scores(np.asarray(pixels, dtype=np.uint8)[None, ...])[0]

    def batch_scores(self, images: np.ndarray) -> np.ndarray:
        """Class scores (float32, N×labels) of uint8 N×H×W×C images; N may change from call to call."""
        images = _pixels(images)
        with self._lock:
            self._set_input(images)
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._output["index"])
        if raw.dtype == np.float32:
            return raw
        scale, zero_point = self._output["quantization"]
        return raw.astype(np.float32) if scale == 0 else (raw.astype(np.float32) - zero_point) * scale

    def invocation_times_ns(self, pixels: np.ndarray, repeats: int, warmup: int = 0) -> list[int]:
        """Wall time of each of ``repeats`` inferences of one uint8 image, after ``warmup`` untimed ones.

        Only ``invoke`` is timed: the input is set (and one inference run) before the first.
        """
        batch = _pixels(np.asarray(pixels)[None, ...])
        with self._lock:
            self._set_input(batch)
            self._interpreter.invoke()
            for _ in range(warmup):
                self._interpreter.invoke()
            samples = []
            for _ in range(repeats):
                started = time.perf_counter_ns()
                self._interpreter.invoke()
                samples.append(time.perf_counter_ns() - started)
        return samples

    def _set_input(self, images: np.ndarray) -> None:
        """Resize the batch dimension if needed, then set the pixels (as float32 for a float model). Under the lock."""
        if len(images) != int(self._input["shape"][0]):
            self._interpreter.resize_tensor_input(self._input["index"], [len(images), *self.input.shape[1:]])
            self._interpreter.allocate_tensors()
            self._input = self._interpreter.get_input_details()[0]
            self._output = self._interpreter.get_output_details()[0]
        if self._input["dtype"] == np.float32:
            images = images.astype(np.float32)  # float models take 0..255 and rescale inside
        self._interpreter.set_tensor(self._input["index"], images)


def _spec(details: dict) -> TensorSpec:
    return TensorSpec(tuple(int(d) for d in details["shape"]), np.dtype(details["dtype"]).name)


def _pixels(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB pixels, got {images.dtype}")
    if images.ndim != 4:
        raise ValueError(f"expected a batch of images (N×H×W×C), got shape {images.shape}")
    return images
