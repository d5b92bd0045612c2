"""Is this the model the pointer promised, and can this SDK run it?

``check_supported`` runs before any byte is downloaded; ``verify_model`` runs on
the downloaded bytes before they may become the active model: exact size,
sha256, Ed25519 signature by the pinned key, then the file's own description
(input tensor, output classes, packed labels) against the pointer, and a real
inference in LiteRT. Any failure raises ``ModelRefused`` with the reason.
"""

from __future__ import annotations

import numpy as np

from client_sdk.errors import ModelRefused, RefusalReason
from client_sdk.runtime import LiteRTClassifier, packed_labels
from shared import integrity
from shared.registry import SDK_CONTRACT_VERSION, ModelRef

SUPPORTED_INPUT_DTYPES = ("uint8",)


def check_supported(ref: ModelRef, sdk_version: int = SDK_CONTRACT_VERSION) -> None:
    if ref.min_sdk_version > sdk_version:
        raise ModelRefused(
            RefusalReason.UNSUPPORTED, f"{ref.version} needs SDK contract {ref.min_sdk_version}, this SDK has {sdk_version}"
        )
    if ref.input.dtype not in SUPPORTED_INPUT_DTYPES or ref.input.channels != 3:
        raise ModelRefused(
            RefusalReason.UNSUPPORTED,
            f"{ref.version} takes {ref.input.channels}-channel {ref.input.dtype}; this SDK feeds 3-channel uint8 RGB",
        )


def verify_model(ref: ModelRef, data: bytes, public_key_pem: str) -> LiteRTClassifier:
    """The loaded model if ``data`` is exactly what ``ref`` promised; ``ModelRefused`` otherwise."""
    check_supported(ref)
    if len(data) != ref.size:
        raise ModelRefused(RefusalReason.SIZE_MISMATCH, f"{ref.version}: {len(data)} bytes, the pointer promised {ref.size}")
    digest = integrity.sha256_hex(data)
    if digest != ref.sha256:
        raise ModelRefused(RefusalReason.DIGEST_MISMATCH, f"{ref.version}: sha256 {digest}, the pointer promised {ref.sha256}")
    if not integrity.verify(public_key_pem, data, ref.signature):
        raise ModelRefused(RefusalReason.BAD_SIGNATURE, f"{ref.version}: signature does not verify with the pinned key")
    try:
        labels = packed_labels(data)
    except ValueError as exc:
        raise ModelRefused(RefusalReason.CONTRACT_VIOLATION, f"{ref.version}: {exc}") from None
    if labels != tuple(ref.labels):
        raise ModelRefused(RefusalReason.CONTRACT_VIOLATION, f"{ref.version}: packed labels {labels}, the pointer says {ref.labels}")
    try:
        model = LiteRTClassifier(data)
    except (ValueError, RuntimeError) as exc:
        raise ModelRefused(RefusalReason.UNLOADABLE, f"{ref.version}: LiteRT cannot load it: {exc}") from None
    expected_input = (1, ref.input.height, ref.input.width, ref.input.channels)
    if model.input.shape != expected_input or model.input.dtype != ref.input.dtype:
        raise ModelRefused(
            RefusalReason.CONTRACT_VIOLATION,
            f"{ref.version}: input tensor {model.input.shape} {model.input.dtype}, the pointer says {expected_input} {ref.input.dtype}",
        )
    if model.output.shape != (1, len(labels)):
        raise ModelRefused(
            RefusalReason.CONTRACT_VIOLATION, f"{ref.version}: output tensor {model.output.shape} for {len(labels)} labels"
        )
    try:
        scores = model.scores(np.zeros(expected_input[1:], dtype=np.uint8))
    except (ValueError, RuntimeError) as exc:
        raise ModelRefused(RefusalReason.UNLOADABLE, f"{ref.version}: inference failed: {exc}") from None
    if not np.all(np.isfinite(scores)):
        raise ModelRefused(RefusalReason.UNLOADABLE, f"{ref.version}: inference gave non-finite scores")
    return model
