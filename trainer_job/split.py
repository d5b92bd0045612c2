"""One stratified split into train, validation and a fixed holdout.

The trainer and the benchmark both split here, so the scikit-learn baseline and
the CNN are scored on exactly the same holdout images.

Field captures (user-confirmed uploads) only ever train. The holdouts are cut
from the curated images alone, so every run over the same curated dataset is
scored on the same pixels, whatever the field sent since; and the drifted
holdout (a dimmed copy) never dims an already dark capture into black.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Split:
    train: Examples
    validation: Examples
    holdout: Examples

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
) -> Split:
    """Split keeping each class's share in every part; the same seed gives the same parts.

    ``field_captures[i]`` marks image ``i`` as a field capture: it goes to the training part only.
    """
    field = np.zeros(len(labels), dtype=bool) if field_captures is None else np.asarray(field_captures, dtype=bool)
    curated_images, curated_labels = images[~field], labels[~field]
    rest_images, holdout_images, rest_labels, holdout_labels = train_test_split(
        curated_images, curated_labels, test_size=holdout_fraction, stratify=curated_labels, random_state=seed
    )
    train_images, val_images, train_labels, val_labels = train_test_split(
        rest_images, rest_labels, test_size=validation_fraction, stratify=rest_labels, random_state=seed
    )
    return Split(
        Examples(np.concatenate([train_images, images[field]]), np.concatenate([train_labels, labels[field]])),
        Examples(val_images, val_labels),
        Examples(holdout_images, holdout_labels),
    )
