"""The data a run trains on: a manifest of exact object generations, and their pixels.

The manifest lists every labelled, live image of the model (curated dataset
images and user-confirmed captures; quarantined objects never have an image
document, superseded generations are left out) with its generation, sorted,
so the same manifest always yields the same arrays in the same order, and a
rerun with it reproduces the run's metrics.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from google.cloud import firestore
from PIL import Image

from shared import layout
from shared.config import Settings
from shared.errors import EdgeloopError
from shared.gcp.clients import firestore_client, storage_client
from trainer_job.split import in_field_holdout

MANIFEST_FORMAT = 1
TRAINABLE_STATUSES = frozenset({"new", "used"})
DOWNLOAD_WORKERS = 16  # object reads are latency-bound; a few more threads than cores keep the pipe full


class EmptySnapshotError(EdgeloopError, RuntimeError):
    """The model has no labelled images to train on (or not for every label)."""


@dataclass(frozen=True)
class Manifest:
    model: str
    entries: tuple[dict[str, Any], ...]  # {image_id, object, generation, label}, sorted by object then generation

    @property
    def counts_per_label(self) -> dict[str, int]:
        return dict(sorted(Counter(entry["label"] for entry in self.entries).items()))

    def to_json(self) -> bytes:
        document = {"format": MANIFEST_FORMAT, "model": self.model, "entries": list(self.entries)}
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json()).hexdigest()

    def field_mask(self) -> np.ndarray:
        """True for each entry that is a field capture (a user's upload) rather than a curated dataset image."""
        return np.array([entry["object"].startswith(f"{layout.UPLOADS_PREFIX}/") for entry in self.entries], dtype=bool)

    def field_holdout_mask(self, share: float) -> np.ndarray:
        """True for each field capture held out from training to judge candidates on (``split.in_field_holdout``)."""
        return np.array([is_field and in_field_holdout(entry["object"], share)
                         for is_field, entry in zip(self.field_mask(), self.entries)], dtype=bool)

    def summary(self, path: str) -> dict[str, Any]:
        return {"path": path, "sha256": self.sha256, "objects": len(self.entries), "counts_per_label": self.counts_per_label}

    @classmethod
    def from_json(cls, content: bytes) -> "Manifest":
        document = json.loads(content)
        if document.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"manifest format {document.get('format')!r}, expected {MANIFEST_FORMAT}")
        return cls(document["model"], tuple(document["entries"]))


def build_manifest(model: str, image_documents: Iterable[tuple[str, Mapping[str, Any]]], labels: Sequence[str]) -> Manifest:
    """The trainable images among ``(image_id, document)`` pairs; every label must have at least one."""
    entries = sorted(
        (
            {"image_id": image_id, "object": doc["object"], "generation": int(doc["generation"]), "label": str(doc["label"])}
            for image_id, doc in image_documents
            if doc.get("labelled") and doc.get("status") in TRAINABLE_STATUSES and str(doc.get("label")) in labels
        ),
        key=lambda entry: (entry["object"], entry["generation"]),
    )
    manifest = Manifest(model, tuple(entries))
    missing = [label for label in labels if label not in manifest.counts_per_label]
    if not entries or missing:
        raise EmptySnapshotError(f"{model}: {len(entries)} labelled images; no images for labels {missing}")
    return manifest


def take_snapshot(model: str, labels: Sequence[str], settings: Settings) -> Manifest:
    """Read the model's image documents once and list what this run trains on."""
    # One equality filter, no composite index needed; the status is checked in build_manifest.
    query = firestore_client(settings.project_id).collection(layout.images_collection(model)).where(
        filter=firestore.FieldFilter("labelled", "==", True)
    )
    return build_manifest(model, ((s.id, s.to_dict()) for s in query.stream()), labels)


def decode_rgb(content: bytes, size: int) -> np.ndarray:
    """An image file as uint8 RGB size×size (captures come in any size; the model takes one)."""
    with Image.open(io.BytesIO(content)) as image:
        rgb = image.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)


def download_images(
    manifest: Manifest, labels: Sequence[str], size: int, settings: Settings, advance: Callable[[], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The manifest's exact generations as (images N×size×size×3, class indices), in manifest order."""
    bucket = storage_client(settings.project_id).bucket(settings.bucket)
    return decode_all(manifest, labels, size,
                      lambda entry: bucket.blob(entry["object"], generation=entry["generation"]).download_as_bytes(),
                      advance)


def decode_all(
    manifest: Manifest, labels: Sequence[str], size: int, read: Callable[[Mapping[str, Any]], bytes],
    advance: Callable[[], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every entry's file, ``read(entry)``, decoded into one array, in manifest order: the in-memory path
    (its memory grows with the dataset; ``stream_images`` is the one that does not)."""
    index = {label: i for i, label in enumerate(labels)}

    def fetch(entry: Mapping[str, Any]) -> np.ndarray:
        content = read(entry)
        if advance is not None:
            advance()
        return decode_rgb(content, size)

    with ThreadPoolExecutor(DOWNLOAD_WORKERS) as pool:
        images = list(pool.map(fetch, manifest.entries))
    return np.stack(images), np.array([index[entry["label"]] for entry in manifest.entries])


def stream_images(
    manifest: Manifest, labels: Sequence[str], config, seed: int, field_holdout_share: float, settings: Settings,
    directory, advance: Callable[[], None] | None = None,
):
    """The manifest split (``split.split_indices``, the parts ``download_images`` + ``stratified_split`` give) and its
    exact generations decoded part by part into sharded TFRecords under ``directory``: a ``stream.ImageCache``.
    ``config`` is the run's ``TrainConfig``."""
    bucket = storage_client(settings.project_id).bucket(settings.bucket)
    return split_to_cache(manifest, labels, config, seed, field_holdout_share, directory,
                          lambda entry: bucket.blob(entry["object"], generation=entry["generation"]).download_as_bytes(),
                          advance)


def split_to_cache(
    manifest: Manifest, labels: Sequence[str], config, seed: int, field_holdout_share: float, directory,
    read: Callable[[Mapping[str, Any]], bytes], advance: Callable[[], None] | None = None,
):
    """``stream_images`` with any reader: ``read(entry)`` returns the entry's encoded file."""
    from trainer_job.split import split_indices
    from trainer_job.stream import write_cache

    index = {label: i for i, label in enumerate(labels)}
    label_ids = np.array([index[entry["label"]] for entry in manifest.entries])
    parts = split_indices(label_ids, seed, config.holdout_fraction, config.validation_fraction,
                          manifest.field_mask(), manifest.field_holdout_mask(field_holdout_share))

    return write_cache(parts.parts(), label_ids, lambda position: read(manifest.entries[position]),
                       config.image_size, directory, advance=advance)
