"""The model registry's document contract, shared by trainer, functions, CLI and client SDK.

Pure schema and rules (no cloud client), so the device side can import it.

``models/{model}`` is the one document clients poll (the *pointer*): the label
set, the production model and an optional canary with its rollout percentage.
Everything a device needs to download, verify and run a model is in a
``ModelRef``; nothing secret is in the pointer. Training lock and cooldown live
in a server-only document (``layout.training_control_doc``) so that lock churn
does not make every client re-read the pointer.

``models/{model}/versions/{version}`` is the registry record of one trained
version: metrics, manifest summary, gate results, drift baseline, lineage and
its stage with the full transition history.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SDK_CONTRACT_VERSION = 1  # bump when a model needs a newer client (ModelRef.min_sdk_version)


class Stage(str, Enum):
    CANDIDATE = "candidate"
    CANARY = "canary"
    PRODUCTION = "production"
    ARCHIVED = "archived"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"


# Every stage change the product may make; anything else is refused.
LEGAL_TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.CANDIDATE: frozenset({Stage.CANARY, Stage.PRODUCTION, Stage.REJECTED}),
    Stage.CANARY: frozenset({Stage.PRODUCTION, Stage.ROLLED_BACK}),
    Stage.PRODUCTION: frozenset({Stage.ARCHIVED, Stage.ROLLED_BACK}),
    Stage.ARCHIVED: frozenset({Stage.PRODUCTION}),  # a rollback restores the parent
    Stage.ROLLED_BACK: frozenset({Stage.CANARY}),  # an operator may retry it
    Stage.REJECTED: frozenset(),
}


def is_legal(source: Stage, target: Stage) -> bool:
    return target in LEGAL_TRANSITIONS[source]


class ModelInput(BaseModel):
    """The tensor a client must feed: uint8 RGB N×H×W×3."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    height: int = Field(ge=1)
    width: int = Field(ge=1)
    channels: int = Field(3, ge=1)
    dtype: str = "uint8"


class ModelRef(BaseModel):
    """One downloadable model, as the pointer document describes it to clients."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: str = Field(pattern=r"^v[0-9]+$")
    path: str  # object name in the bucket: models/{model}/{version}/model.tflite
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1)
    signature: str  # base64 Ed25519 signature of the model bytes
    labels: tuple[str, ...]
    input: ModelInput
    min_sdk_version: int = Field(SDK_CONTRACT_VERSION, ge=1)


class Rollout(BaseModel):
    """A canary offered to ``percent`` of devices (a stable bucket per device decides which)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    candidate: ModelRef | None = None
    percent: float = Field(0.0, ge=0, le=100)


class ModelPointer(BaseModel):
    """``models/{model}``: what clients poll."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model: str
    labels: tuple[str, ...]
    production: ModelRef | None = None
    rollout: Rollout = Rollout()
    updated: datetime | None = None
    # The model's capture defaults (shared.model_settings.CLIENT_PER_MODEL), set by ``edgeloop model create``;
    # the client SDK applies them over its built-in defaults (shared.model_settings.device_settings).
    client: dict[str, Any] = Field(default_factory=dict)


class Transition(BaseModel):
    """One recorded stage change: who or what, when, why, with what evidence."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source: Stage | None  # None when the version is first recorded
    target: Stage
    at: datetime
    actor: str  # e.g. "trainer:run-...", "on_feedback", "operator:alice"
    reason: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class VersionRecord(BaseModel):
    """``models/{model}/versions/{version}``: the registry record of one trained version."""

    model_config = ConfigDict(extra="ignore")

    model: str
    version: str = Field(pattern=r"^v[0-9]+$")
    run_id: str
    created: datetime
    stage: Stage
    history: list[Transition] = Field(default_factory=list)
    ref: ModelRef | None = None  # None for a rejected candidate: it is never published to clients
    parent: str | None = None  # the production version it was compared with
    metrics: dict[str, float] = Field(default_factory=dict)
    sizes: dict[str, int] = Field(default_factory=dict)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    trials: list[dict[str, Any]] = Field(default_factory=list)
    gate: dict[str, Any] = Field(default_factory=dict)  # {passed, checks: [{name, value, limit, passed}]}
    manifest: dict[str, Any] = Field(default_factory=dict)  # {path, sha256, objects, counts_per_label}
    baseline: dict[str, Any] = Field(default_factory=dict)  # drift reference statistics
    code_version: str = ""
    seed: int = 0
    # What training started from (trainer_job.backbone.StartingWeights): backbone, weights asked for, whether
    # ImageNet weights were loaded, their file and hash.
    backbone: dict[str, Any] = Field(default_factory=dict)
    rollout_step: dict[str, Any] = Field(default_factory=dict)  # shared.lifecycle.RolloutStep while a canary
    promotion: dict[str, Any] = Field(default_factory=dict)  # shared.lifecycle.Promotion once production


def version_number(version: str) -> int:
    """``"v12"`` → 12; versions are allocated in order per model."""
    return int(version.removeprefix("v"))
