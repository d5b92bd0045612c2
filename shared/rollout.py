"""Staged rollout: which devices take a canary at a given percentage.

Pure and shared: the client SDK decides with it which model to run, and the
server can use the same function to know which devices a canary reached.

A device's bucket is a stable number in [0, 100) from a hash of (model, device
id): the same device always lands in the same bucket for a model, buckets are
independent across models, and raising the percentage only ever adds devices
(a device in the canary at 5% is still in it at 20%).
"""

from __future__ import annotations

import hashlib

from shared.registry import ModelPointer, ModelRef

_BUCKET_BITS = 64


def rollout_bucket(device_id: str, model: str) -> float:
    """The device's stable position in [0, 100) for this model's rollouts."""
    if not device_id:
        raise ValueError("a device id is needed to place the device in a rollout")
    digest = hashlib.sha256(f"{model}\x00{device_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[: _BUCKET_BITS // 8], "big") / 2**_BUCKET_BITS * 100.0


def takes_candidate(device_id: str, model: str, percent: float) -> bool:
    """True when this device is inside the first ``percent`` of the fleet."""
    return rollout_bucket(device_id, model) < percent


def model_for_device(pointer: ModelPointer, device_id: str) -> ModelRef | None:
    """The model this device should run: the canary if offered to its bucket, else production."""
    candidate = pointer.rollout.candidate
    if candidate is not None and takes_candidate(device_id, pointer.model, pointer.rollout.percent):
        return candidate
    return pointer.production
