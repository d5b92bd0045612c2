"""A smoke run over the local stack: one real upload and one real feedback document,
each observed arriving at its function."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass

from edgeloop.localstack.function_logs import wait_for_entry
from edgeloop.localstack.stack import StackState
from shared import layout
from shared.digits import load_digits_rgb


@dataclass(frozen=True)
class SmokeStep:
    what: str
    function: str
    seconds: float
    event_id: str


def run_smoke(state: StackState, model: str = "digits", timeout_s: float = 30.0) -> list[SmokeStep]:
    os.environ.update(state.client_env())
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore, storage

    steps = []
    digit = load_digits_rgb()[0]
    name = layout.dataset_object(model, digit.label, f"smoke-{uuid.uuid4().hex[:8]}.png")
    started = time.monotonic()
    bucket = storage.Client(project=state.project_id, credentials=AnonymousCredentials()).bucket(state.bucket)
    blob = bucket.blob(name)
    blob.upload_from_string(digit.png(), content_type="image/png")
    entry = wait_for_entry(state, "on_upload", lambda e: e.get("object") == name, timeout_s)
    steps.append(SmokeStep(f"upload gs://{state.bucket}/{name}", "on_upload", time.monotonic() - started, entry["event_id"]))

    feedback_id = f"smoke-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    db = firestore.Client(project=state.project_id, credentials=AnonymousCredentials())
    db.document(layout.feedback_doc(model, feedback_id)).set(
        {"uid": "smoke", "model_version": "none", "predicted_label": digit.label, "confidence": 1.0, "correct": True}
    )
    document = layout.feedback_doc(model, feedback_id)
    entry = wait_for_entry(state, "on_feedback", lambda e: e.get("document") == document, timeout_s)
    steps.append(SmokeStep(f"write {document}", "on_feedback", time.monotonic() - started, entry["event_id"]))
    return steps
