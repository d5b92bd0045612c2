"""Per-image statistics that field drift moves: brightness, contrast, sharpness.

Computed on upload for every accepted image and by the trainer for its
baseline, so drift checks compare like with like.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

STATISTICS = ("brightness", "contrast", "sharpness")


def image_statistics(rgb: np.ndarray) -> dict[str, float]:
    """Statistics of one uint8 RGB image (H×W×3), each on a 0..1 scale."""
    grey = rgb.astype(np.float32).mean(axis=2) / 255.0
    return {
        "brightness": float(grey.mean()),
        "contrast": float(grey.std()),
        # Variance of the Laplacian: blur and low light both shrink it.
        "sharpness": float(ndimage.laplace(grey).var()),
    }
