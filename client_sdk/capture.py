"""Which predictions become uploads, and what an upload contains.

Pure rules: capture every prediction less confident than the threshold (the
hard cases the next model should learn) plus a small random sample of the
confident ones (so the server also sees unbiased field traffic for drift
checks), within per-day count and byte budgets. The image is re-encoded from
its pixels alone, so EXIF (GPS position, camera serial, time) and any other
embedded metadata never leave the device.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

import numpy as np
from PIL import Image, ImageOps

from shared.config import Client

CONTENT_TYPES = {"png": ("image/png", "png"), "jpeg": ("image/jpeg", "jpg")}


def capture_reason(confidence: float, draw: float, settings: Client) -> str | None:
    """``"low_confidence"``, ``"sample"`` or None; ``draw`` is uniform in [0, 1)."""
    if confidence < settings.capture_below_confidence:
        return "low_confidence"
    if draw < settings.capture_sample_rate:
        return "sample"
    return None


@dataclass(frozen=True)
class BudgetDay:
    """What one device has spent on captures on one (UTC) day."""

    day: str
    count: int = 0
    bytes: int = 0

    def spend(self, today: date, size: int, settings: Client) -> "BudgetDay | None":
        """The day after spending ``size`` bytes on one more capture, or None if over budget."""
        current = self if self.day == today.isoformat() else BudgetDay(today.isoformat())
        if current.count + 1 > settings.daily_capture_count or current.bytes + size > settings.daily_capture_bytes:
            return None
        return BudgetDay(current.day, current.count + 1, current.bytes + size)


@dataclass(frozen=True)
class EncodedCapture:
    data: bytes
    content_type: str
    extension: str


def as_rgb_image(image: Image.Image | np.ndarray | bytes) -> Image.Image:
    """An RGB Pillow image from an encoded file, a Pillow image or a uint8 array (H×W×3 or H×W)."""
    if isinstance(image, (bytes, bytearray)):
        image = Image.open(io.BytesIO(image))
        image.load()
    if isinstance(image, np.ndarray):
        array = np.asarray(image)
        if array.dtype != np.uint8 or array.ndim not in (2, 3):
            raise ValueError(f"expected uint8 H×W or H×W×C pixels, got {array.dtype} with shape {array.shape}")
        image = Image.fromarray(array[..., :3] if array.ndim == 3 else array)
    image = ImageOps.exif_transpose(image)  # keep what the user saw upright once the EXIF orientation is gone
    return image.convert("RGB")


def encode_capture(image: Image.Image | np.ndarray | bytes, settings: Client) -> EncodedCapture:
    """The image as PNG or JPEG built from pixels only (no EXIF, ICC, XMP or comments), longest side capped."""
    rgb = as_rgb_image(image)
    if max(rgb.size) > settings.capture_max_side:
        rgb.thumbnail((settings.capture_max_side, settings.capture_max_side), Image.BILINEAR)
    clean = Image.fromarray(np.asarray(rgb))  # a new image: nothing of the original's info dict survives
    content_type, extension = CONTENT_TYPES[settings.capture_format]
    out = io.BytesIO()
    if settings.capture_format == "jpeg":
        clean.save(out, format="JPEG", quality=90)
    else:
        clean.save(out, format="PNG")
    return EncodedCapture(out.getvalue(), content_type, extension)
