"""Real models for client tests: tiny int8 TFLite digit classifiers from the trainer's own pipeline,
signed with a test key, plus helpers that build the ``ModelRef`` a publisher would write.

Import the fixtures into a test module (``from tests.model_fixtures import ...``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from rich.console import Console

from shared import integrity, layout
from shared.digits import LABELS, load_digits_rgb
from shared.registry import ModelInput, ModelRef

TRAINING_IMAGES = 600


@dataclass(frozen=True)
class TrainedModel:
    version: str
    data: bytes
    accuracy: float


@dataclass(frozen=True)
class SigningKey:
    private_pem: str
    public_pem: str


def make_ref(model: str, version: str, data: bytes, key: SigningKey, **changes) -> ModelRef:
    """The ModelRef a publisher writes for ``data``; ``changes`` override fields (to build bad ones)."""
    fields = dict(
        version=version, path=layout.model_object(model, version), sha256=integrity.sha256_hex(data), size=len(data),
        signature=integrity.sign(key.private_pem, data), labels=LABELS, input=ModelInput(height=32, width=32),
    )
    fields.update(changes)
    return ModelRef(**fields)


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    private = integrity.generate_private_key_pem()
    return SigningKey(private, integrity.public_key_pem(private))


@pytest.fixture(scope="session")
def digits():
    return load_digits_rgb()


@pytest.fixture(scope="session")
def trained_models(digits) -> dict[str, TrainedModel]:
    """Two real models, v1 and v2 (different seeds, so different bytes), trained in a few seconds each."""
    from trainer_job.augment import AugmentConfig
    from trainer_job.model import Hyperparameters
    from trainer_job.pipeline import TrainConfig, train_candidate

    images = np.stack([d.rgb for d in digits[:TRAINING_IMAGES]])
    labels = np.array([int(d.label) for d in digits[:TRAINING_IMAGES]])
    config = TrainConfig(
        augment=AugmentConfig.off(), grid=(Hyperparameters(filters=8, dense_units=64, epochs=8),),
        latency_repeats=1, representative_samples=50,
    )
    models = {}
    for seed, version in enumerate(("v1", "v2")):
        candidate = train_candidate(images, labels, LABELS, config, seed=seed, model_name="digits", version=version,
                                    console=Console(quiet=True))
        models[version] = TrainedModel(version, candidate.model_bytes, candidate.metrics["int8_accuracy"])
    return models
