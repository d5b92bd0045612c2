"""Which uploaded objects become training images, and why the others do not.

Pure rules over an object's name, Storage metadata and bytes. Every rejection
carries a machine-readable reason (``Reason``) and a human detail; the caller
quarantines the object with both.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Mapping

from shared.config import ImageLimits
from shared.errors import EdgeloopError, InvalidObjectNameError
from shared.layout import CAPTURE_REASON_KEY, LABEL_ID, MODEL_ID, CaptureReason, ObjectKind, ObjectRef, parse_object_name
from shared.events import StorageObjectEvent

if TYPE_CHECKING:  # numpy and PIL load where an image is decoded: on_feedback and the tick need only the types
    import numpy as np


class Reason(str, Enum):
    INVALID_NAME = "invalid_name"
    UNKNOWN_MODEL = "unknown_model"
    UNKNOWN_LABEL = "unknown_label"
    BAD_CONTENT_TYPE = "bad_content_type"
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    SIZE_MISMATCH = "size_mismatch"
    NOT_AN_IMAGE = "not_an_image"
    TRUNCATED = "truncated"  # a PNG/JPEG whose data ends early (an interrupted upload), not garbage
    FORMAT_MISMATCH = "format_mismatch"
    BAD_DIMENSIONS = "bad_dimensions"
    DECOMPRESSION_BOMB = "decompression_bomb"
    BAD_METADATA = "bad_metadata"
    METADATA_TOO_LARGE = "metadata_too_large"


CONTENT_TYPES = {"image/png": ("PNG", (".png",)), "image/jpeg": ("JPEG", (".jpg", ".jpeg"))}
# Keys apps set (DESIGN: uploads' custom metadata), plus the one the Firebase SDKs add themselves.
METADATA_KEYS = frozenset({"label", "predicted_label", "confidence", "model_version", CAPTURE_REASON_KEY,
                           "firebaseStorageDownloadTokens"})
CAPTURE_REASONS = tuple(reason.value for reason in CaptureReason)

_MODEL = re.compile(MODEL_ID)
_LABEL = re.compile(LABEL_ID)
_UID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SIGNATURES = {"PNG": b"\x89PNG\r\n\x1a\n", "JPEG": b"\xff\xd8\xff"}
_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")  # a repr's memory address: never part of a detail


class Rejected(EdgeloopError):
    """Raised inside validation; carries the reason the object is quarantined."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class AcceptedImage:
    ref: ObjectRef
    label: str | None  # the confirmed label, if any
    predicted_label: str | None
    confidence: float | None
    model_version: str | None
    width: int
    height: int
    rgb: np.ndarray = field(repr=False, compare=False)
    capture_reason: str | None = None  # why the device took it (layout.CaptureReason); None for dataset images and old apps


def check_name(name: str) -> ObjectRef:
    """The object name parsed, with every segment in the allowed alphabet."""
    try:
        ref = parse_object_name(name)
    except InvalidObjectNameError as exc:
        raise Rejected(Reason.INVALID_NAME, str(exc)) from None
    if not _MODEL.fullmatch(ref.model):
        raise Rejected(Reason.INVALID_NAME, f"model id {ref.model!r} is not [a-z0-9_-]")
    if ref.label is not None and not _LABEL.fullmatch(ref.label):
        raise Rejected(Reason.INVALID_NAME, f"label segment {ref.label!r} is not [A-Za-z0-9_-]")
    if ref.uid is not None and not _UID.fullmatch(ref.uid):
        raise Rejected(Reason.INVALID_NAME, f"uid segment {ref.uid!r} is not [A-Za-z0-9_-]")
    if not _FILENAME.fullmatch(ref.filename):
        raise Rejected(Reason.INVALID_NAME, f"file name {ref.filename!r} is not [A-Za-z0-9._-], at most 128 characters")
    return ref


def _check_metadata(metadata: Mapping[str, str], labels: frozenset[str],
                    limits: ImageLimits) -> tuple[str | None, str | None, float | None, str | None, str | None]:
    size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
    if size > limits.max_metadata_bytes:
        raise Rejected(Reason.METADATA_TOO_LARGE, f"custom metadata is {size} bytes, limit {limits.max_metadata_bytes}")
    unexpected = sorted(set(metadata) - METADATA_KEYS)
    if unexpected:
        raise Rejected(Reason.BAD_METADATA, f"unexpected metadata keys {unexpected}; allowed {sorted(METADATA_KEYS)}")
    label = metadata.get("label")
    if label is not None and label not in labels:
        raise Rejected(Reason.UNKNOWN_LABEL, f"metadata label {label!r} is not one of the model's labels")
    predicted = metadata.get("predicted_label")
    if predicted is not None and predicted not in labels:
        raise Rejected(Reason.BAD_METADATA, f"predicted_label {predicted!r} is not one of the model's labels")
    confidence = None
    if "confidence" in metadata:
        try:
            confidence = float(metadata["confidence"])
        except ValueError:
            raise Rejected(Reason.BAD_METADATA, f"confidence {metadata['confidence']!r} is not a number") from None
        if not math.isfinite(confidence) or not 0.0 <= confidence <= 1.0:
            raise Rejected(Reason.BAD_METADATA, f"confidence {confidence} is outside [0, 1]")
    version = metadata.get("model_version")
    if version is not None and not _VERSION.fullmatch(version):
        raise Rejected(Reason.BAD_METADATA, f"model_version {version!r} is not [A-Za-z0-9._-]")
    capture_reason = metadata.get(CAPTURE_REASON_KEY)
    if capture_reason is not None and capture_reason not in CAPTURE_REASONS:
        raise Rejected(Reason.BAD_METADATA,
                       f"{CAPTURE_REASON_KEY} {capture_reason[:64]!r} is not one of {list(CAPTURE_REASONS)}")
    return label, predicted, confidence, version, capture_reason


def _decode_image(content: bytes, expected_format: str, limits: ImageLimits) -> np.ndarray:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(content))
            width, height = image.size  # read from the header; no pixels decoded yet
            if width * height > limits.max_pixels:
                raise Rejected(Reason.DECOMPRESSION_BOMB, f"{width}×{height} pixels exceeds {limits.max_pixels}")
            if image.format != expected_format:
                raise Rejected(Reason.FORMAT_MISMATCH, f"content is {image.format}, declared {expected_format}")
            if not (limits.min_side <= width <= limits.max_side and limits.min_side <= height <= limits.max_side):
                raise Rejected(
                    Reason.BAD_DIMENSIONS, f"{width}×{height} is outside {limits.min_side}..{limits.max_side} per side"
                )
            image.load()  # decodes fully: truncated or corrupt data fails here
            return np.asarray(image.convert("RGB"))
    except Rejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Rejected(Reason.DECOMPRESSION_BOMB, str(exc)) from None
    except UnidentifiedImageError:
        # Pillow's own message names a Python object (and its address): say what the bytes are instead.
        started = next((f for f, magic in _SIGNATURES.items() if content.startswith(magic)), None)
        detail = (f"starts like a {started} but its header cannot be read (corrupt or cut short)" if started
                  else f"not a PNG or JPEG image (first bytes {content[:8].hex()})")
        raise Rejected(Reason.NOT_AN_IMAGE, detail) from None
    except (OSError, SyntaxError, ValueError) as exc:
        message = _ADDRESS.sub("", str(exc))
        # Pillow says "image file is truncated" / "Truncated File Read" when the data ends early.
        if "truncated" in message.lower():
            raise Rejected(Reason.TRUNCATED, f"{expected_format} data ends early: {message}") from None
        raise Rejected(Reason.NOT_AN_IMAGE, f"corrupt {expected_format} data: {message}") from None


def validate_image(
    obj: StorageObjectEvent, content: bytes, model_labels: frozenset[str] | None, limits: ImageLimits = ImageLimits()
) -> AcceptedImage:
    """Accept the object as a training image or raise ``Rejected`` with the reason.

    ``model_labels`` is the registered label set of the object's model, or None
    when no such model is registered.
    """
    ref = check_name(obj.name)
    if ref.kind not in (ObjectKind.DATASET, ObjectKind.UPLOAD):
        raise Rejected(Reason.INVALID_NAME, f"{ref.kind.value} objects are not images to ingest")
    if model_labels is None:
        raise Rejected(Reason.UNKNOWN_MODEL, f"model {ref.model!r} is not registered")
    if ref.label is not None and ref.label not in model_labels:
        raise Rejected(Reason.UNKNOWN_LABEL, f"label {ref.label!r} is not one of the model's labels")
    if obj.content_type not in CONTENT_TYPES:
        raise Rejected(Reason.BAD_CONTENT_TYPE, f"content type {obj.content_type!r}; accepted {sorted(CONTENT_TYPES)}")
    expected_format, extensions = CONTENT_TYPES[obj.content_type]
    if not ref.filename.lower().endswith(extensions):
        raise Rejected(Reason.BAD_CONTENT_TYPE, f"file name {ref.filename!r} does not end in {extensions} for {obj.content_type}")
    if obj.size > limits.max_bytes or len(content) > limits.max_bytes:  # before EMPTY: oversized objects are not read
        raise Rejected(Reason.TOO_LARGE, f"{max(obj.size, len(content))} bytes exceeds {limits.max_bytes}")
    if obj.size == 0 or not content:
        raise Rejected(Reason.EMPTY, "object has no bytes")
    if len(content) != obj.size:
        raise Rejected(Reason.SIZE_MISMATCH, f"read {len(content)} bytes, object resource says {obj.size}")
    label, predicted, confidence, version, capture_reason = _check_metadata(obj.metadata, model_labels, limits)
    if ref.label is not None and label is not None and label != ref.label:
        raise Rejected(Reason.BAD_METADATA, f"metadata label {label!r} contradicts the path label {ref.label!r}")
    rgb = _decode_image(content, expected_format, limits)
    return AcceptedImage(
        ref=ref,
        label=ref.label if ref.label is not None else label,
        predicted_label=predicted,
        confidence=confidence,
        model_version=version,
        width=rgb.shape[1],
        height=rgb.shape[0],
        rgb=rgb,
        capture_reason=capture_reason,
    )
