"""One stratified split into train, validation and a fixed holdout.

The trainer and the benchmark both split here, so the scikit-learn baseline and
the CNN are scored on exactly the same holdout images.
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
) -> Split:
    """Split keeping each class's share in every part; the same seed gives the same parts."""
    rest_images, holdout_images, rest_labels, holdout_labels = train_test_split(
        images, labels, test_size=holdout_fraction, stratify=labels, random_state=seed
    )
    train_images, val_images, train_labels, val_labels = train_test_split(
        rest_images, rest_labels, test_size=validation_fraction, stratify=rest_labels, random_state=seed
    )
    return Split(
        Examples(train_images, train_labels),
        Examples(val_images, val_labels),
        Examples(holdout_images, holdout_labels),
    )
