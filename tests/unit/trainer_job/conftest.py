"""Fixtures shared by the trainer's unit tests."""

import numpy as np
import pytest

from shared.digits import load_digits_rgb
from trainer_job.split import stratified_split


@pytest.fixture(scope="session")
def digits():
    """The bundled digits, split train/validation/holdout with seed 0 (read-only: tests share one copy)."""
    images = load_digits_rgb()
    return stratified_split(np.stack([i.rgb for i in images]), np.array([int(i.label) for i in images]), seed=0)
