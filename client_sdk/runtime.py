"""A TFLite classifier in ai-edge-litert, described by what the file itself says.

Reads what the device needs without tflite-support: the tensors from the
interpreter, and the labels from the labels file tflite-support packs into the
model (a ZIP appended to the flatbuffer). The published contract is uint8 RGB
pixels in, raw 0..255 (the model rescales inside, its metadata normalisation is
the identity), so preprocessing is a resize and nothing else.
"""

from __future__ import annotations

import io
import threading
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
    """One loaded model; ``scores`` is safe to call from several threads."""

    def __init__(self, model_bytes: bytes, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=bytes(model_bytes), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._lock = threading.Lock()  # one interpreter runs one invocation at a time

    @property
    def input(self) -> TensorSpec:
        return TensorSpec(tuple(int(d) for d in self._input["shape"]), np.dtype(self._input["dtype"]).name)

    @property
    def output(self) -> TensorSpec:
        return TensorSpec(tuple(int(d) for d in self._output["shape"]), np.dtype(self._output["dtype"]).name)

    def scores(self, pixels: np.ndarray) -> np.ndarray:
        """Class scores (float32, one per label) of one uint8 H×W×C image of the input's size."""
        batch = np.asarray(pixels, dtype=np.uint8)[None, ...]
        with self._lock:
            self._interpreter.set_tensor(self._input["index"], batch)
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._output["index"])[0]
        if raw.dtype == np.float32:
            return raw
        scale, zero_point = self._output["quantization"]
        return raw.astype(np.float32) if scale == 0 else (raw.astype(np.float32) - zero_point) * scale
