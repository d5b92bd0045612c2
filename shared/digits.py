"""The embedded default dataset: scikit-learn's handwritten digits as RGB images.

The 8×8 grey images (values 0–16) are upscaled to the model's input size and
written as PNG, the format apps upload. Nothing is downloaded: the data ships
inside scikit-learn.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

IMAGE_SIZE = 32
LABELS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class LabelledImage:
    """One image of a dataset made in code (these digits, or ``shared.shapes``), as apps upload it."""

    index: int
    label: str
    rgb: np.ndarray  # uint8, size×size×3

    def png(self) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(self.rgb, mode="RGB").save(buffer, format="PNG")
        return buffer.getvalue()


def load_digits_rgb(size: int = IMAGE_SIZE) -> list[LabelledImage]:
    """All 1,797 digits as ``size``×``size`` RGB uint8 images (white digit on black)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = []
    for index, (grey, target) in enumerate(zip(digits.images, digits.target)):
        scaled = (grey / 16.0 * 255.0).astype(np.uint8)
        big = np.asarray(Image.fromarray(scaled, mode="L").resize((size, size), Image.BILINEAR))
        images.append(LabelledImage(index, str(int(target)), np.repeat(big[:, :, None], 3, axis=2)))
    return images
