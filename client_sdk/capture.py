"""Which predictions become uploads, and what an upload contains.

Pure rules: a uniform random sample of *all* predictions, drawn before the
confidence is looked at (the unbiased field traffic drift checks compare with
the baseline), plus every other prediction less confident than the threshold
(the hard cases the next model should learn), within per-day count and byte
budgets of which a reserve only the random sample may use. Each capture says
why it was taken (``layout.CaptureReason``). The image is re-encoded from its
pixels alone, so EXIF (GPS position, camera serial, time) and any other
embedded metadata never leave the device.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

import numpy as np
from PIL import Image, ImageOps

from shared.config import Client
from shared.layout import CaptureReason

CONTENT_TYPES = {"png": ("image/png", "png"), "jpeg": ("image/jpeg", "jpg")}


def capture_reason(confidence: float, draw: float, settings: Client) -> str | None:
    """``"random_sample"``, ``"low_confidence"`` or None; ``draw`` is uniform in [0, 1).

    The random draw comes first and ignores the confidence, so the random sample is a uniform sample of
    every prediction (hard ones included); a low-confidence prediction outside it is a hard case.
    """
    if draw < settings.capture_sample_rate:
        return CaptureReason.RANDOM_SAMPLE.value
    if confidence < settings.capture_below_confidence:
        return CaptureReason.LOW_CONFIDENCE.value
    return None


@dataclass(frozen=True)
class BudgetDay:
    """What one device has spent on captures on one (UTC) day, and how much of it on the random sample."""

    day: str
    count: int = 0
    bytes: int = 0
    sample_count: int = 0
    sample_bytes: int = 0

    def spend(self, today: date, size: int, settings: Client, reason: str) -> "BudgetDay | None":
        """The day after spending ``size`` bytes on one more capture taken for ``reason``, or None if over budget.

        ``random_sample_reserve`` captures of the daily count (and the same share of the bytes) are held
        for the random sample until it has used them: the random sample may use the whole budget, any
        other capture only what is not held.
        """
        current = self if self.day == today.isoformat() else BudgetDay(today.isoformat())
        sample = reason == CaptureReason.RANDOM_SAMPLE.value
        held_count = held_bytes = 0
        if not sample:
            reserve = min(settings.random_sample_reserve, settings.daily_capture_count)
            reserve_bytes = settings.daily_capture_bytes * reserve // settings.daily_capture_count if reserve else 0
            held_count = max(0, reserve - current.sample_count)
            held_bytes = max(0, reserve_bytes - current.sample_bytes)
        if (current.count + 1 + held_count > settings.daily_capture_count
                or current.bytes + size + held_bytes > settings.daily_capture_bytes):
            return None
        return BudgetDay(current.day, current.count + 1, current.bytes + size,
                         current.sample_count + sample, current.sample_bytes + (size if sample else 0))


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
