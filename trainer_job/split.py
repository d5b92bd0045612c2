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
    field = np.zeros(len(labels), dtype=bool) if field_captures is None else np.asarray(field_captures, dtype=bool)
    held = np.zeros(len(labels), dtype=bool) if field_holdout is None else np.asarray(field_holdout, dtype=bool)
    if held.shape != field.shape or (held & ~field).any():
        raise ValueError("the field holdout is cut from field captures only (one mask entry per image)")
    trained_field = field & ~held
    curated_images, curated_labels = images[~field], labels[~field]
    rest_images, holdout_images, rest_labels, holdout_labels = train_test_split(
        curated_images, curated_labels, test_size=holdout_fraction, stratify=curated_labels, random_state=seed
    )
    train_images, val_images, train_labels, val_labels = train_test_split(
        rest_images, rest_labels, test_size=validation_fraction, stratify=rest_labels, random_state=seed
    )
    return Split(
        Examples(np.concatenate([train_images, images[trained_field]]), np.concatenate([train_labels, labels[trained_field]])),
        Examples(val_images, val_labels),
        Examples(holdout_images, holdout_labels),
        Examples(images[held], labels[held]),
    )
