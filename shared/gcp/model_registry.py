"""Adapter: the model registry in Firestore and Storage.

Publishing is two steps, in this order: the model bytes go to
``models/{model}/{version}/model.tflite`` (invisible to clients: nothing points
at them yet), then ONE transaction writes the version record, moves the
pointer document clients poll, and ends the run with its lock released. A
trainer killed anywhere before that transaction leaves clients exactly where
they were; killed after it, the run is already complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared import layout
from shared.config import Settings
from shared.gcp.clients import firestore_client, storage_client
from shared.gcp.runs import log_completion
from shared.gcp.tallies import version_tally
from shared.gcp.training_lock import TRANSACTION_ATTEMPTS, complete_in_transaction
from shared.launch_rules import RunStatus
from shared.lifecycle import Tally, step_fields, transition_entry
from shared.logs import log
from shared.registry import ModelPointer, ModelRef, Rollout, Stage, VersionRecord

MODEL_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class PublishOutcome:
    version: str
    stage: Stage
    percent: float  # of devices offered this version (100 for production, 0 when rejected)
    published: bool  # False if the run already had an outcome: nothing was written


def register_model(model: str, labels: Iterable[str], settings: Settings) -> None:
    """Create (or update the label set of) the pointer document clients poll."""
    firestore_client(settings.project_id).document(layout.model_doc(model)).set(
        {"model": model, "labels": [str(label) for label in labels]}, merge=True
    )


def model_labels(model: str, settings: Settings) -> frozenset[str] | None:
    """The registered label set of ``model``, or None if it is not registered (or cannot even be addressed)."""
    try:
        snapshot = firestore_client(settings.project_id).document(layout.model_doc(model)).get()
    except (gexc.InvalidArgument, ValueError):  # a model id Firestore cannot address is registered nowhere
        return None
    return pointer_labels(snapshot)


def pointer_labels(snapshot: Any) -> frozenset[str] | None:
    """The label set a pointer document registers, or None (no such document, or no label list)."""
    if not snapshot.exists:
        return None
    labels = (snapshot.to_dict() or {}).get("labels")
    return frozenset(str(label) for label in labels) if isinstance(labels, list) else None


def load_pointer(model: str, settings: Settings) -> ModelPointer | None:
    snapshot = firestore_client(settings.project_id).document(layout.model_doc(model)).get()
    return ModelPointer.model_validate(snapshot.to_dict()) if snapshot.exists else None


def load_version(model: str, version: str, settings: Settings) -> VersionRecord | None:
    snapshot = firestore_client(settings.project_id).document(layout.version_doc(model, version)).get()
    return VersionRecord.model_validate(snapshot.to_dict()) if snapshot.exists else None


def upload_artifact(object_name: str, content: bytes, settings: Settings, content_type: str = MODEL_CONTENT_TYPE) -> int:
    """Upload one artifact of a version; returns its generation."""
    blob = storage_client(settings.project_id).bucket(settings.bucket).blob(object_name)
    blob.upload_from_string(content, content_type=content_type)
    return int(blob.generation)


def download_model(ref: ModelRef, settings: Settings) -> bytes:
    return storage_client(settings.project_id).bucket(settings.bucket).blob(ref.path).download_as_bytes()


def _initial_stage(record: VersionRecord, pointer: ModelPointer | None, settings: Settings) -> tuple[Stage, float]:
    if record.ref is None or not record.gate.get("passed", False):
        return Stage.REJECTED, 0.0
    if pointer is None or pointer.production is None:
        return Stage.PRODUCTION, 100.0  # nothing to compare with in the field: the first version serves everyone
    return Stage.CANARY, settings.release.canary_percent


def publish_version(record: VersionRecord, run_result: dict[str, Any], settings: Settings) -> PublishOutcome:
    """Record the trained version and end its run in one transaction; a passed gate moves the pointer.

    The first version becomes production; later ones become a canary offered
    to ``release.canary_percent`` of devices (a canary still in rollout is
    superseded and rolled back). A candidate that failed the gate is recorded
    as rejected and never reaches the pointer.
    """
    db = firestore_client(settings.project_id)
    pointer_ref = db.document(layout.model_doc(record.model))
    record_ref = db.document(layout.version_doc(record.model, record.version))
    actor = f"trainer:{record.run_id}"
    # A canary's first step compares it with production from now on: production's count so far is the baseline.
    before = load_pointer(record.model, settings)
    counted_version = before.production.version if before and before.production else None
    counted = version_tally(db, record.model, counted_version) if counted_version else Tally()

    @firestore.transactional
    def apply(transaction: firestore.Transaction) -> PublishOutcome:
        pointer_snapshot = pointer_ref.get(transaction=transaction)
        pointer = ModelPointer.model_validate(pointer_snapshot.to_dict()) if pointer_snapshot.exists else None
        superseded = pointer.rollout.candidate if pointer and pointer.rollout.candidate else None
        superseded_ref = db.document(layout.version_doc(record.model, superseded.version)) if superseded else None
        superseded_exists = superseded_ref is not None and superseded_ref.get(transaction=transaction).exists
        stage, percent = _initial_stage(record, pointer, settings)
        outcome = RunStatus.REJECTED if stage is Stage.REJECTED else RunStatus.PUBLISHED
        result = {**run_result, "version": record.version, "stage": stage.value}
        if not complete_in_transaction(transaction, record.run_id, outcome, result, settings):
            return PublishOutcome(record.version, stage, percent, published=False)

        now = datetime.now(timezone.utc)
        reason = "; ".join(record.gate.get("reasons", [])) if stage is Stage.REJECTED else "passed the quality gate"
        history = [
            transition_entry(None, Stage.CANDIDATE, actor, "trained", {"metrics": record.metrics}),
            transition_entry(Stage.CANDIDATE, stage, actor, reason, {"gate": record.gate, "percent": percent}),
        ]
        fields = {**record.model_dump(mode="json"), "stage": stage.value, "history": history}
        if stage is Stage.CANARY:
            production_version = pointer.production.version
            fields.update(step_fields(now.isoformat(), percent, Tally(), production_version,
                                      counted if production_version == counted_version else Tally()))
        transaction.create(record_ref, fields)
        if stage is Stage.PRODUCTION:
            transaction.set(pointer_ref, {"model": record.model, "labels": list(record.ref.labels),
                                          "production": record.ref.model_dump(mode="json"), "updated": now}, merge=True)
        elif stage is Stage.CANARY:
            rollout = Rollout(candidate=record.ref, percent=percent)
            transaction.update(pointer_ref, {"rollout": rollout.model_dump(mode="json"), "updated": now})
            if superseded_exists:
                transaction.update(superseded_ref, {
                    "stage": Stage.ROLLED_BACK.value,
                    "history": firestore.ArrayUnion([transition_entry(
                        Stage.CANARY, Stage.ROLLED_BACK, actor, f"superseded by {record.version}", {})]),
                })
        return PublishOutcome(record.version, stage, percent, published=True)

    outcome = apply(db.transaction(max_attempts=TRANSACTION_ATTEMPTS))
    if outcome.published:
        log_completion(record.run_id, RunStatus.REJECTED if outcome.stage is Stage.REJECTED else RunStatus.PUBLISHED)
        if outcome.stage is Stage.REJECTED:
            log("WARNING", "candidate_rejected", f"{record.model} {record.version} failed the quality gate",
                model=record.model, version=record.version, run_id=record.run_id,
                reasons=record.gate.get("reasons", []))
        else:
            log("INFO", "version_published", f"{record.model} {record.version} is {outcome.stage.value} at {percent_text(outcome.percent)}",
                model=record.model, version=record.version, run_id=record.run_id, stage=outcome.stage.value,
                percent=outcome.percent)
    return outcome


def percent_text(percent: float) -> str:
    return f"{percent:g}%"
