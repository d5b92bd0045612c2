"""Per-image statistics that field drift moves: brightness, contrast, sharpness.

Computed on upload for every accepted image and by the trainer for its
baseline, so drift checks compare like with like: each image is first brought
to one scale, ``STATS_SIDE``×``STATS_SIDE`` RGB resized bilinearly as the
trainer and the client's inference resize an input (aspect ignored). A capture
is uploaded at up to ``Client.capture_max_side`` pixels while the trainer
reads its images at the model's input size; without a common scale a
Laplacian variance measured on a 512-pixel photo and on a 32-pixel training
image would differ by orders of magnitude on identical content.

The Laplacian is ``scipy.ndimage.laplace``'s (mode ``reflect``), written with
numpy (a unit test holds them equal): on_upload computes it for every image,
and scipy.ndimage would cost each function process a quarter of a second of
import for these few lines. numpy and PIL are imported where an image is
measured: check_drift reads ``STATISTICS`` at every tick, and measures nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

STATISTICS = ("brightness", "contrast", "sharpness")
STATS_SIDE = 32  # the default model input (trainer_job TrainConfig.image_size)


def at_stats_scale(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` (uint8 H×W×3) as STATS_SIDE×STATS_SIDE, resized bilinearly unless already that size."""
    import numpy as np  # loaded where used: see the module's docstring
    from PIL import Image

    if rgb.shape[:2] == (STATS_SIDE, STATS_SIDE):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((STATS_SIDE, STATS_SIDE), Image.Resampling.BILINEAR))


def image_statistics(rgb: np.ndarray) -> dict[str, float]:
    """Statistics of one uint8 RGB image (H×W×3) at the common scale, each on a 0..1 scale."""
    import numpy as np

    grey = at_stats_scale(np.ascontiguousarray(rgb, dtype=np.uint8)).astype(np.float32).mean(axis=2) / 255.0
    return {
        "brightness": float(grey.mean()),
        "contrast": float(grey.std()),
        # Variance of the Laplacian: blur and low light both shrink it.
        "sharpness": float(laplacian(grey).var()),
    }


def laplacian(image: np.ndarray) -> np.ndarray:
    """The discrete Laplacian of a 2-D float32 image, edges mirrored: ``scipy.ndimage.laplace(image)``.

    Like scipy, each axis's second difference is taken in float64 and stored as float32, then the two are added.
    """
    import numpy as np

    padded = np.pad(image, 1, mode="symmetric").astype(np.float64)  # scipy's "reflect": d c b a | a b c d | d c b a
    centre = padded[1:-1, 1:-1]
    rows = (padded[:-2, 1:-1] + padded[2:, 1:-1] - 2 * centre).astype(np.float32)
    columns = (padded[1:-1, :-2] + padded[1:-1, 2:] - 2 * centre).astype(np.float32)
    return rows + columns
