"""One stratified split into train, validation and a fixed holdout.

The trainer and the benchmark both split here, so the scikit-learn baseline and
the CNN are scored on exactly the same holdout images.

Field captures (user-confirmed uploads) either train or, for a fixed slice of
them (``in_field_holdout``: a hash of the object name, so the same capture is
held out by every run and never trained on), form the field holdout: the drift
that actually happened, on which candidates and production are compared. The
clean holdout and validation part are cut from the curated images alone, so
every run over the same curated dataset is scored on the same pixels, whatever
the field sent since; and the synthetic stresses (a dimmed copy, …) never dim
an already dark capture into black.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split

HOLDOUT_FRACTION = 0.2
VALIDATION_FRACTION = 0.15  # of what remains after the holdout


class Examples(NamedTuple):
    """Images (N×H×W×3 uint8 RGB) and their class indices (N,)."""

    images: np.ndarray
    labels: np.ndarray


def in_field_holdout(object_name: str, share: float) -> bool:
    """Whether this field capture belongs to the field holdout: the same answer in every run (for one share)."""
    if not 0 < share < 1:
        raise ValueError(f"the field holdout share is a fraction in (0, 1), got {share}")
    digest = hashlib.sha256(object_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


@dataclass(frozen=True)
class Split:
    train: Examples
    validation: Examples
    holdout: Examples
    field_holdout: Examples  # held-out field captures (maybe none): never trained on

    def train_and_validation(self) -> Examples:
        """Everything but the holdout: what a baseline without model selection trains on."""
        return Examples(
            np.concatenate([self.train.images, self.validation.images]),
            np.concatenate([self.train.labels, self.validation.labels]),
        )


class SplitIndices(NamedTuple):
    """Which manifest positions form each part, in the order the part lists them."""

    train: np.ndarray
    validation: np.ndarray
    holdout: np.ndarray
    field_holdout: np.ndarray

    def parts(self) -> dict[str, np.ndarray]:
        return dict(self._asdict())


def split_indices(
    labels: np.ndarray,
    seed: int,
    holdout_fraction: float = HOLDOUT_FRACTION,
    validation_fraction: float = VALIDATION_FRACTION,
    field_captures: np.ndarray | None = None,
    field_holdout: np.ndarray | None = None,
) -> SplitIndices:
    """``stratified_split``'s parts as positions into ``labels``: all it needs is the labels and the masks,
    so a streaming run splits its manifest before reading a single pixel (``trainer_job.stream``)."""
    labels = np.asarray(labels)
    field = np.zeros(len(labels), dtype=bool) if field_captures is None else np.asarray(field_captures, dtype=bool)
    held = np.zeros(len(labels), dtype=bool) if field_holdout is None else np.asarray(field_holdout, dtype=bool)
    if held.shape != field.shape or (held & ~field).any():
        raise ValueError("the field holdout is cut from field captures only (one mask entry per image)")
    positions = np.arange(len(labels))
    curated = positions[~field]
    # train_test_split permutes positions exactly as it would permute the images themselves.
    rest, holdout = train_test_split(curated, test_size=holdout_fraction, stratify=labels[curated], random_state=seed)
    train, validation = train_test_split(rest, test_size=validation_fraction, stratify=labels[rest], random_state=seed)
    return SplitIndices(np.concatenate([train, positions[field & ~held]]), validation, holdout, positions[held])


def stratified_split(
    images: np.ndarray,
    labels: np.ndarray,
    seed: int,
    holdout_fraction: float = HOLDOUT_FRACTION,
    validation_fraction: float = VALIDATION_FRACTION,
    field_captures: np.ndarray | None = None,
    field_holdout: np.ndarray | None = None,
) -> Split:
    """Split keeping each class's share in every part; the same seed gives the same parts.

    ``field_captures[i]`` marks image ``i`` as a field capture: it goes to the training part, unless
    ``field_holdout[i]`` also marks it, which puts it in the field holdout instead.
    """
    labels = np.asarray(labels)
    parts = split_indices(labels, seed, holdout_fraction, validation_fraction, field_captures, field_holdout)
    return Split(*(Examples(images[part], labels[part]) for part in parts))
