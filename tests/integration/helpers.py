"""Small waiting and writing helpers for tests that drive the local stack."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable

from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage

from shared import layout


def db(stack) -> firestore.Client:
    return firestore.Client(project=stack.project_id, credentials=AnonymousCredentials())


def bucket(stack) -> storage.Bucket:
    return storage.Client(project=stack.project_id, credentials=AnonymousCredentials()).bucket(stack.bucket)


def eventually(probe: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition") -> Any:
    """The first truthy result of ``probe``; AssertionError naming ``what`` if none comes in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.2)


def register_model(stack, model: str, labels=tuple(str(i) for i in range(10))) -> None:
    db(stack).document(layout.model_doc(model)).set({"model": model, "labels": list(labels)}, merge=True)


def fresh_model(stack, prefix: str, paused: bool = True) -> str:
    """A model id no other test uses, registered; training paused so requests stay visible as pending."""
    model = f"{prefix}-{uuid.uuid4().hex[:6]}"
    register_model(stack, model)
    if paused:
        db(stack).document(layout.training_control_doc(model)).set({"paused": True}, merge=True)
    return model


def image_docs(stack, model: str) -> list[dict]:
    return [s.to_dict() for s in db(stack).collection(layout.images_collection(model)).stream()]


def quarantine_record(stack, name: str, generation: int) -> dict | None:
    snapshot = db(stack).collection("quarantine").document(layout.image_id(name, generation)).get()
    return snapshot.to_dict() if snapshot.exists else None


def control(stack, model: str) -> dict:
    snapshot = db(stack).document(layout.training_control_doc(model)).get()
    return snapshot.to_dict() or {}
