"""A smoke run over the local stack: one real upload and one real feedback document,
each observed arriving at its function.

The upload is an operator's (the admin Storage client, into ``dataset/``); the
feedback is a device's: registered with a custom token, signed in through the
stack's Firebase Auth emulator, written through Firestore REST under the rules."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass

from client_sdk.auth import AuthEndpoints, AuthSession
from client_sdk.transport import Endpoints, Transport
from edgeloop import identities
from edgeloop.localstack.function_logs import wait_for_entry
from edgeloop.localstack.state import StackState
from shared import layout
from shared.digits import load_digits_rgb
from shared.gcp.clients import firestore_client, reset_clients, storage_client


@dataclass(frozen=True)
class SmokeStep:
    what: str
    function: str
    seconds: float
    event_id: str


def run_smoke(state: StackState, model: str = "digits", timeout_s: float = 30.0) -> list[SmokeStep]:
    os.environ.update(state.client_env())
    reset_clients()  # clients cached earlier in this process may point at another stack

    steps = []
    db = firestore_client(state.project_id)
    if not db.document(layout.model_doc(model)).get().exists:  # on_upload accepts images of registered models only
        db.document(layout.model_doc(model)).set({"model": model, "labels": [str(i) for i in range(10)]})
    digit = load_digits_rgb()[0]
    name = layout.dataset_object(model, digit.label, f"smoke-{uuid.uuid4().hex[:8]}.png")
    started = time.monotonic()
    bucket = storage_client(state.project_id).bucket(state.bucket)
    blob = bucket.blob(name)
    blob.upload_from_string(digit.png(), content_type="image/png")
    entry = wait_for_entry(state, "on_upload", lambda e: e.get("object") == name and e["event"] == "object_ingested", timeout_s)
    steps.append(SmokeStep(f"upload gs://{state.bucket}/{name} ({entry['status']})", "on_upload", time.monotonic() - started, entry["event_id"]))

    feedback_id = f"smoke-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    device = AuthSession.with_custom_token(AuthEndpoints.from_client_env(state.client_env()),
                                           identities.device_token("smoke", model, state.project_id))
    transport = Transport(Endpoints.from_client_env(state.client_env()), device.id_token)
    transport.create_document(layout.feedback_collection(model), feedback_id, {
        "uid": device.uid, "model_version": "v0", "predicted_label": digit.label, "confidence": 1.0, "correct": True},
        server_time=(layout.FEEDBACK_SENT_AT,))
    document = layout.feedback_doc(model, feedback_id)
    entry = wait_for_entry(state, "on_feedback", lambda e: e.get("document") == document and e["event"] == "feedback_handled", timeout_s)
    steps.append(SmokeStep(f"write {document} ({entry['status']})", "on_feedback", time.monotonic() - started, entry["event_id"]))
    return steps
