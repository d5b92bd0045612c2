"""The rules matrix: what each principal may do to every Firestore path and Storage object, and nothing more.

One matrix, two clients: tests/integration/test_security_rules.py sends it over
REST (one request per cell), tests/integration/test_web_sdk.py through the
official Firebase Web SDK (tests/web_sdk/app_flow.test.mjs, every forbidden cell).

Principals: ``owner`` is the user the document or upload belongs to (uid
``alice``), ``other`` any other signed-in user, ``anonymous`` a caller who is
not signed in.
"""

from __future__ import annotations

OWNER, OTHER = "alice", "bob"
PRINCIPALS = ("anonymous", "other", "owner")
OPERATIONS = ("get", "list", "create", "update", "delete")
SIGNED_IN = {"other", "owner"}

MISSING = object()  # a field left out of a feedback document
# A field the writer sets to the server's time of the write: the SDKs' server timestamp (serverTimestamp(),
# FieldValue.serverTimestamp(); in REST a REQUEST_TIME transform). A plain string, so it travels in JSON to Node.
SERVER_TIME = "<server time>"


def feedback(uid: str, changes: dict | None = None) -> dict:
    """A well-formed feedback document of ``uid`` (``changes`` override fields; ``MISSING`` drops one)."""
    fields = {"uid": uid, "model_version": "v1", "predicted_label": "3", "confidence": 0.42, "correct": False,
              "sent_at": SERVER_TIME}
    fields.update(changes or {})
    return {k: v for k, v in fields.items() if v is not MISSING}


def histogram(counts: dict[int, int]) -> dict[str, int]:
    """A device record's latency histogram: every bucket b00..b19 (shared/telemetry.py), ``counts`` by index."""
    return {f"b{i:02d}": counts.get(i, 0) for i in range(20)}


def device_record(changes: dict | None = None) -> dict:
    """A well-formed device record (shared/telemetry.py), as a device sets its own (``changes`` as for feedback)."""
    fields = {"model_version": "v1", "sdk_version": "py-0.1.0+c1", "device_class": "pixel-7", "predictions": 120,
              "latency_p50_ms": 0.21, "latency_p95_ms": 0.5, "latency_hist": histogram({2: 70, 3: 44, 4: 6}),
              "period_start": 1_790_000_000, "period_s": 3600, "last_seen": SERVER_TIME}
    fields.update(changes or {})
    return {k: v for k, v in fields.items() if v is not MISSING}


def without_server_time(fields: dict) -> dict:
    """``fields`` as an administrator seeds them: no server-time fields (the rules bind only clients)."""
    return {k: v for k, v in fields.items() if v != SERVER_TIME}


# Firestore: (path template, seeded fields, principals allowed per operation).
# A template without {id} names one fixed document (seeded fresh per test).
PATHS = {
    # What clients poll: readable by any signed-in user, written by the trainer and functions only.
    "model pointer": ("models/{id}", {"version": "v1"}, {"get": SIGNED_IN, "list": SIGNED_IN}),
    "version": ("models/{model}/versions/{id}", {"stage": "production"}, {"get": SIGNED_IN, "list": SIGNED_IN}),
    # A user's own prediction outcome: create only.
    "feedback": ("models/{model}/feedback/{id}", feedback(OWNER), {"create": {"owner"}}),
    # A device's inventory record, keyed by its user id: only that user sets it (a fixed id: the owner's).
    "device record": ("models/{model}/devices/" + OWNER, device_record(), {"create": {"owner"}, "update": {"owner"}}),
    "device record of another user": ("models/{model}/devices/{id}", device_record(), {}),
    # Server-only documents the product writes (shared/layout.py, shared/gcp_*.py, trainer_job/).
    "image": ("models/{model}/images/{id}", {"status": "new", "object": "uploads/m/alice/x.png", "uid": OWNER}, {}),
    "object head": ("models/{model}/objects/{id}", {"object": "uploads/m/alice/x.png", "generation": 2}, {}),
    "confirmation": ("models/{model}/confirmations/{id}", {"object": "uploads/m/alice/x.png", "true_label": "3", "uid": OWNER}, {}),
    "feedback user": ("models/{model}/feedback_users/{id}", {"model_version": "v1", "uid": OWNER, "admitted": []}, {}),
    "tally bucket": ("models/{model}/tallies/{id}/buckets/{id}", {"model_version": "v1", "total": 5, "correct": 4}, {}),
    "training lock": ("models/{model}/control/training", {"active_run": None, "paused": False}, {}),
    "trainer config": ("models/{model}/control/trainer", {"augment": {"low_light": 0.65}}, {}),
    "model settings": ("models/{model}/control/settings", {"overrides": {"thresholds": {"new_data_images": 5}}}, {}),
    "training control (any id)": ("models/{model}/control/{id}", {"locked": True}, {}),
    "drift report": ("models/{model}/drift_reports/{id}", {"drifted": False}, {}),
    "run": ("runs/{id}", {"reason": "manual", "model": "digits", "uid": OWNER}, {}),
    "quarantine record": ("quarantine/{id}", {"object": "uploads/m/alice/x.png", "reason": "not_an_image", "uid": OWNER}, {}),
    # Paths the rules do not mention: denied by the catch-all.
    "counter shard": ("models/{model}/counters/{id}", {"count": 3}, {}),
    "version subcollection": ("models/{model}/versions/v1/gate/{id}", {"passed": True}, {}),
    "feedback subcollection": ("models/{model}/feedback/f1/notes/{id}", {"uid": OWNER}, {}),
    "pointer subcollection": ("models/{model}/secrets/{id}", {"uid": OWNER}, {}),
    "run subcollection": ("runs/r1/stages/{id}", {"uid": OWNER}, {}),
    "user profile": ("users/{id}", {"uid": OWNER}, {}),
    "unknown collection": ("anything/{id}", {"x": 1}, {}),
}


def body_for(kind: str, principal: str, seeded: dict) -> dict:
    """What the caller tries to write: for feedback, a valid document with their own uid
    (the owner), or one claiming the owner's uid (another user, an anonymous caller); for a
    device record, a valid one (whose record it is decides)."""
    if kind == "feedback":
        return feedback(OWNER if principal in ("owner", "anonymous", "other") else principal)
    if kind.startswith("device record"):
        return device_record()
    return dict(seeded, extra="written by a client")


# Storage: every kind of object in the bucket (shared/layout.py) and paths the rules do not mention:
# object name template -> principals allowed per operation. The owner of an upload is alice.
STORAGE_OBJECTS = {
    "dataset image": ("dataset/{model}/3/digit-0001.png", {}),
    "upload": ("uploads/{model}/alice/0b4c8e.png", {"create": {"owner"}}),
    "upload, jpeg": ("uploads/{model}/alice/0b4c8e.jpg", {"create": {"owner"}}),
    "model file": ("models/{model}/v1/model.tflite", {"get": SIGNED_IN}),
    "model signature": ("models/{model}/v1/model.tflite.sig", {"get": SIGNED_IN}),
    "dataset manifest": ("models/{model}/v1/manifest.json", {}),
    "other model artifact": ("models/{model}/v1/notes.txt", {}),
    "quarantined upload": ("quarantine/uploads/{model}/alice/0b4c8e.png", {}),
    "quarantined dataset image": ("quarantine/dataset/{model}/3/digit-0001.png", {}),
    # Not mentioned by the rules: the catch-all denies.
    "upload one folder too deep": ("uploads/{model}/alice/sub/0b4c8e.png", {}),
    "upload without a model": ("uploads/alice/{model}.png", {}),
    "model file one folder too deep": ("models/{model}/v1/x/model.tflite", {}),
    "unknown prefix": ("manifests/{model}/v1.json", {}),
    "bucket root": ("0b4c8e-{model}.png", {}),
}

# The custom metadata of a well-formed upload (every key on_upload reads but capture_reason).
VALID_METADATA = {"label": "3", "predicted_label": "5", "confidence": "0.4", "model_version": "v1"}
