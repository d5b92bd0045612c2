"""Small waiting, writing and credential helpers for tests that drive the local stack."""

from __future__ import annotations

import os
import time
import uuid
from functools import lru_cache
from typing import Any, Callable

from google.cloud import firestore, storage

from client_sdk.auth import AuthEndpoints, AuthSession
from edgeloop import identities
from shared import layout
from shared.gcp.clients import firestore_client, storage_client

# The emulators' admin: ``Bearer owner`` bypasses the security rules, as the service accounts do in production.
ADMIN = {"Authorization": "Bearer owner"}


def signed_in(uid: str, project: str, **claims: str) -> AuthSession:
    """Firebase user ``uid`` (with ``claims``) signed in through the stack's Auth emulator, as a device signs in:
    a custom token minted by firebase-admin, exchanged with ``accounts:signInWithCustomToken``. One session per user."""
    return _session(os.environ["FIREBASE_AUTH_EMULATOR_HOST"], uid, project, tuple(sorted(claims.items())))


@lru_cache(maxsize=None)
def _session(auth_host: str, uid: str, project: str, claims: tuple) -> AuthSession:
    from firebase_admin import auth

    token = auth.create_custom_token(uid, dict(claims) or None, app=identities.admin_app(project))
    return AuthSession.with_custom_token(AuthEndpoints.emulator(auth_host), token)


def user_headers(uid: str, project: str, **claims: str) -> dict[str, str]:
    """Headers of signed-in Firebase user ``uid``: a real ID token from the stack's Auth emulator."""
    return {"Authorization": f"Bearer {signed_in(uid, project, **claims).id_token()}"}


def db(stack) -> firestore.Client:
    """The product's own Firestore client for ``stack`` (anonymous: ``local_stack`` set FIRESTORE_EMULATOR_HOST)."""
    return firestore_client(stack.project_id)


def bucket(stack) -> storage.Bucket:
    """The stack's bucket through the product's own Storage client (anonymous under STORAGE_EMULATOR_HOST)."""
    return storage_client(stack.project_id).bucket(stack.bucket)


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
