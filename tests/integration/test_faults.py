"""Handlers that die mid-way and are retried leave exactly what one clean handling leaves.

Each scenario first records the writes a clean handling makes, then for every
write k and each side of it (before / after) runs the real handler from
functions/main.py in this process against the real emulators, kills it at
that point (tests/integration/faults.py), retries it as Pub/Sub or Eventarc
would, and checks the invariants. Meanwhile the function's own process is
frozen, so the stack's delivery of the same event arrives late, as one more
duplicate, and the invariants are checked again after it.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

import pytest
from cloudevents.http import CloudEvent
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers as firestore_helpers
from google.cloud.firestore_v1.types.document import Value

from edgeloop.localstack.function_logs import wait_for_entry
from functions import main as functions
from shared import layout
from shared.config import Settings, get_settings
from shared.digits import load_digits_rgb
from shared.events import FIRESTORE_EVENT_TYPES, PUBSUB_PUBLISHED, STORAGE_FINALIZED
from shared.gcp.bus import request_drift_check
from shared.launch_rules import RunStatus
from shared.retrain import RetrainRequest, manual_request
from tests.integration.faults import InjectedCrash, crash_at, fault_points, paused, writes_of
from tests.integration.helpers import bucket, control, db, eventually, fresh_model, image_docs, quarantine_record
from tests.integration.test_functions import SHUFFLED, dim, field_reports, publish_production, random_sample

SETTINGS = Settings()
DIGITS = load_digits_rgb()
FIRESTORE_CREATED = next(kind for kind, change in FIRESTORE_EVENT_TYPES.items() if change == "created")


def storage_event(blob) -> CloudEvent:
    """The finalize event Storage sends for ``blob`` (Eventarc's direct form of the GCS notification)."""
    return CloudEvent({"type": STORAGE_FINALIZED, "source": f"//storage.googleapis.com/projects/_/buckets/{blob.bucket.name}",
                       "id": uuid.uuid4().hex, "subject": f"objects/{blob.name}"}, dict(blob._properties))


def firestore_event(stack, document: str, fields: dict) -> CloudEvent:
    """The document-created event Eventarc sends for ``document`` holding ``fields``."""
    encoded = {key: json.loads(Value.to_json(value)) for key, value in firestore_helpers.encode_dict(fields).items()}
    name = f"projects/{stack.project_id}/databases/(default)/documents/{document}"
    return CloudEvent({"type": FIRESTORE_CREATED, "source": "//firestore.googleapis.com/test", "id": uuid.uuid4().hex},
                      {"value": {"name": name, "fields": encoded}, "oldValue": {}, "updateMask": {}})


def die_then_retry(handler, event, ordinal: int, when: str) -> None:
    with crash_at(ordinal, when), pytest.raises(InjectedCrash):
        handler(event)
    handler(event)  # the retry, with the same event


def clean_writes(handler, event) -> list[str]:
    with writes_of() as writes:
        handler(event)
    return list(writes)


def upload(stack, name: str, content: bytes, metadata=None):
    blob = bucket(stack).blob(name)
    blob.metadata = metadata
    blob.upload_from_string(content, content_type="image/png")
    return blob


def real_delivery_handled(stack, blob) -> dict:
    return wait_for_entry(stack, "on_upload", lambda e: e.get("event") == "object_ingested"
                          and e.get("object") == blob.name and e.get("generation") == blob.generation, timeout_s=120)


def preregistered(stack, model: str, count: int) -> None:
    """``count`` labelled images already registered and new, as earlier uploads would have left them."""
    batch = db(stack).batch()
    for i in range(count):
        batch.set(db(stack).document(layout.image_doc(model, f"earlier-{i}")),
                  {"object": f"dataset/{model}/1/earlier-{i}.png", "label": "1", "labelled": True, "status": "new"})
    batch.commit()


def pending_causes(stack, model: str) -> list[str]:
    return [p["cause"] for p in control(stack, model).get("pending") or []]


# --- on_upload: the upload that crosses the new-data threshold ----------------------------------------

def threshold_crossing(stack) -> tuple[str, object, CloudEvent]:
    model = fresh_model(stack, "crash-up")
    preregistered(stack, model, SETTINGS.thresholds.new_data_images - 1)
    blob = upload(stack, layout.dataset_object(model, "7", "crossing.png"), DIGITS[7].png())
    return model, blob, storage_event(blob)


def assert_counted_once_and_requested_once(stack, model: str, blob) -> None:
    mine = [d for d in image_docs(stack, model) if d["object"] == blob.name]
    assert len(mine) == 1 and mine[0]["generation"] == blob.generation and mine[0]["label"] == "7"
    assert len(image_docs(stack, model)) == SETTINGS.thresholds.new_data_images
    causes = eventually(lambda: pending_causes(stack, model), what="the new-data request recorded")
    assert causes == [f"new_data:{model}:after-start"]


def test_a_clean_threshold_crossing_writes_the_image_then_publishes_the_request(local_stack):
    with paused(local_stack, "on_upload"):
        model, blob, event = threshold_crossing(local_stack)
        assert clean_writes(functions.on_upload, event) == ["firestore.commit", "pubsub.publish"]
        assert_counted_once_and_requested_once(local_stack, model, blob)
    real_delivery_handled(local_stack, blob)
    assert_counted_once_and_requested_once(local_stack, model, blob)


@pytest.mark.parametrize("ordinal,when", fault_points(["firestore.commit", "pubsub.publish"]))
def test_on_upload_killed_at_any_write_and_retried_counts_the_upload_once(local_stack, ordinal, when):
    with paused(local_stack, "on_upload"):
        model, blob, event = threshold_crossing(local_stack)
        die_then_retry(functions.on_upload, event, ordinal, when)
        assert_counted_once_and_requested_once(local_stack, model, blob)
    real_delivery_handled(local_stack, blob)  # the stack's own, late delivery: one more duplicate
    assert_counted_once_and_requested_once(local_stack, model, blob)


# --- on_upload: an upload that is quarantined ----------------------------------------------------------

QUARANTINE_WRITES = ["firestore.commit", "storage.copy", "storage.patch", "storage.delete"]


def bad_upload(stack) -> tuple[str, object, CloudEvent]:
    model = fresh_model(stack, "crash-bad")
    blob = upload(stack, layout.upload_object(model, "u1", "broken", "png"), b"\x89PNG not really")
    return model, blob, storage_event(blob)


def assert_quarantined_once(stack, model: str, blob) -> None:
    record = quarantine_record(stack, blob.name, blob.generation)
    assert record["reason"] == "not_an_image" and record["object"] == blob.name
    moved = bucket(stack).get_blob(layout.quarantine_object(blob.name))
    assert moved is not None and moved.metadata == {"quarantine_reason": "not_an_image",
                                                    "quarantine_detail": record["detail"][:500]}
    assert bucket(stack).get_blob(blob.name) is None
    assert image_docs(stack, model) == []


def test_a_clean_quarantine_records_then_copies_labels_and_deletes(local_stack):
    with paused(local_stack, "on_upload"):
        model, blob, event = bad_upload(local_stack)
        assert clean_writes(functions.on_upload, event) == QUARANTINE_WRITES
        assert_quarantined_once(local_stack, model, blob)


@pytest.mark.parametrize("ordinal,when", fault_points(QUARANTINE_WRITES))
def test_quarantine_killed_at_any_write_and_retried_records_and_moves_the_object_once(local_stack, ordinal, when):
    with paused(local_stack, "on_upload"):
        model, blob, event = bad_upload(local_stack)
        die_then_retry(functions.on_upload, event, ordinal, when)
        assert_quarantined_once(local_stack, model, blob)
    real_delivery_handled(local_stack, blob)
    assert_quarantined_once(local_stack, model, blob)


# --- on_feedback: the report that confirms a capture and crosses the success-rate threshold -------------

def report(stack, model: str, **fields) -> tuple[str, dict]:
    """A report from a user of its own unless ``uid`` is given (an honest fleet: a retrain needs many users)."""
    base = {"uid": f"u-{uuid.uuid4().hex[:8]}", "model_version": "v1", "predicted_label": "3", "confidence": 0.4,
            "correct": False}
    document = layout.feedback_doc(model, uuid.uuid4().hex)
    db(stack).document(document).set({**base, **fields})
    return document, {**base, **fields}


def feedback_handled(stack, document: str) -> dict:
    return wait_for_entry(stack, "on_feedback", lambda e: e.get("event") == "feedback_handled"
                          and e.get("document") == document, timeout_s=120)


@contextmanager
def confirming_report(stack) -> Iterator[tuple[str, str, str, CloudEvent]]:
    """A model one report short of a trusted, poor success rate, and that report, confirming a capture.

    The real on_feedback stays frozen until the block ends, so the report's own trigger cannot handle it
    between its creation and the test's call (it did when the function ran in between: a flaky write list).
    """
    model = fresh_model(stack, "crash-fb")
    capture = upload(stack, layout.upload_object(model, "u1", uuid.uuid4().hex, "png"), DIGITS[5].png(),
                     metadata={"predicted_label": "3", "confidence": "0.4", "model_version": "v1"})
    eventually(lambda: image_docs(stack, model), 60, "the capture registered")
    earlier = [report(stack, model)[0] for _ in range(SETTINGS.thresholds.min_feedback_samples - 1)]
    for document in earlier:
        feedback_handled(stack, document)
    with paused(stack, "on_feedback"):  # the trigger for the last report must wait for the test
        document, fields = report(stack, model, uid="u1", true_label="5", capture=capture.name)
        yield model, capture.name, document, firestore_event(stack, document, fields)


def assert_confirmed_and_requested_once(stack, model: str, capture: str) -> None:
    (image,) = image_docs(stack, model)
    assert image["object"] == capture and image["label"] == "5" and image["labelled"] and image["confirmed_by"] == "u1"
    confirmation = db(stack).document(layout.confirmation_doc(model, capture)).get().to_dict()
    assert (confirmation["object"], confirmation["label"], confirmation["status"], confirmation["decided_by"]) == (
        capture, "5", "confirmed", "u1")
    assert [(v["source"], v["who"], v["label"]) for v in confirmation["votes"].values()] == [("user", "u1", "5")]
    causes = eventually(lambda: pending_causes(stack, model), what="the success-rate request recorded")
    assert causes == [f"success_rate:{model}:v1:after-start"]


# the vote and the capture's label (one transaction), the report's admission (received_at, counted, its user's
# document: one transaction), the success-rate request
FEEDBACK_WRITES = ["firestore.commit", "firestore.commit", "pubsub.publish"]


def test_a_clean_confirming_report_records_labels_then_publishes(local_stack):
    with confirming_report(local_stack) as (model, capture, _, event):
        assert clean_writes(functions.on_feedback, event) == FEEDBACK_WRITES
        assert_confirmed_and_requested_once(local_stack, model, capture)


@pytest.mark.parametrize("ordinal,when", fault_points(FEEDBACK_WRITES))
def test_on_feedback_killed_at_any_write_and_retried_loses_nothing_and_doubles_nothing(local_stack, ordinal, when):
    with confirming_report(local_stack) as (model, capture, document, event):
        die_then_retry(functions.on_feedback, event, ordinal, when)
    # Checked after the freeze: the Firestore emulator gives up on a trigger delivery that waits too long
    # (it never retries one), so the frozen stretch is kept to the handler's own calls.
    assert_confirmed_and_requested_once(local_stack, model, capture)
    feedback_handled(local_stack, document)  # the trigger's own, late delivery
    assert_confirmed_and_requested_once(local_stack, model, capture)


# --- launch_training: the request that creates a run and starts its trainer ---------------------------

LAUNCH_WRITES = ["firestore.commit", "firestore.commit", "firestore.commit"]  # run + lock, execution, lock renewed
LAUNCH_GRACE_S = 3


@pytest.fixture
def short_launch_grace(monkeypatch):
    """In this process a new run's lock holds 3 s until its launcher confirms the start (the stack keeps 120 s)."""
    monkeypatch.setenv("EDGELOOP_TRAINING__LAUNCH_GRACE_S", str(LAUNCH_GRACE_S))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def retrain_event(request: RetrainRequest) -> CloudEvent:
    message = {"data": base64.b64encode(request.to_message()).decode(), "attributes": {"model": request.model},
               "messageId": uuid.uuid4().hex, "publishTime": "2026-11-23T00:00:00Z"}
    return CloudEvent({"type": PUBSUB_PUBLISHED, "source": "//pubsub.googleapis.com/test", "id": message["messageId"]},
                      {"message": message, "subscription": "test"})


def runs_of(stack, model: str) -> list[dict]:
    query = db(stack).collection("runs").where(filter=firestore.FieldFilter("model", "==", model))
    return [s.to_dict() for s in query.stream()]


def assert_one_live_run_then_the_lock_released(stack, model: str, cause: str) -> None:
    """Until the lock is free: never two unfinished runs; then exactly one run served the cause to its end."""
    def settled():
        runs = runs_of(stack, model)
        unfinished = [r for r in runs if r["status"] not in RunStatus.FINAL]
        assert len(unfinished) <= 1, f"two live runs: {unfinished}"
        if (control(stack, model).get("active_run") or None) is None and not unfinished:
            return runs
        request_drift_check(model, SETTINGS)  # the scheduler's tick reclaims a lock whose launch died, once it expired
        time.sleep(2)
        return None

    runs = eventually(settled, 150, "the lock released and every run finished")
    served = [r for r in runs if r["cause"] == cause or cause in {f["cause"] for f in r.get("folded") or []}]
    finished = [r for r in served if not (r.get("error") or "").startswith("abandoned")]
    assert len(finished) == 1 and finished[0].get("stages"), runs  # its trainer really ran
    assert control(stack, model)["causes"][cause] == finished[0]["run_id"]


def test_a_clean_launch_creates_the_run_records_its_execution_and_renews_the_lock(local_stack, short_launch_grace):
    model = fresh_model(local_stack, "crash-run")  # no images: the trainer fails at its snapshot, seconds in
    request = manual_request(model, "test")
    assert clean_writes(functions.launch_training, retrain_event(request)) == LAUNCH_WRITES
    assert control(local_stack, model)["active_run"]["expires_at"] > time.time() + SETTINGS.training.lock_ttl_s / 2
    assert_one_live_run_then_the_lock_released(local_stack, model, request.cause)


@pytest.mark.parametrize("ordinal,when", fault_points(LAUNCH_WRITES))
def test_launch_killed_at_any_write_and_retried_trains_once_and_frees_the_lock(local_stack, short_launch_grace,
                                                                               ordinal, when):
    model = fresh_model(local_stack, "crash-run")
    request = manual_request(model, "test")
    die_then_retry(functions.launch_training, retrain_event(request), ordinal, when)
    assert_one_live_run_then_the_lock_released(local_stack, model, request.cause)


# --- check_drift: the tick that finds drift and asks for a retrain ------------------------------------

DRIFT_WRITES = ["firestore.commit", "pubsub.publish"]  # the report, the request


def drifting_model(stack) -> tuple[str, CloudEvent]:
    model = fresh_model(stack, "crash-drift")
    publish_production(stack, model, SHUFFLED[:200])
    random_sample(stack, model, SHUFFLED[200:240], dim(SHUFFLED[200:240]))
    field_reports(stack, model, correct=34, wrong=6)  # a drift that hurts: field success confidently below the gate
    message = {"data": base64.b64encode(json.dumps({"model": model}).encode()).decode(), "attributes": {},
               "messageId": uuid.uuid4().hex, "publishTime": "2026-11-23T00:00:00Z"}
    return model, CloudEvent({"type": PUBSUB_PUBLISHED, "source": "//pubsub.googleapis.com/test",
                              "id": message["messageId"]}, {"message": message, "subscription": "test"})


def assert_one_report_and_one_request(stack, model: str, event: CloudEvent) -> None:
    reports = list(db(stack).collection(layout.drift_reports_collection(model)).stream())
    assert [r.id for r in reports] == [event.data["message"]["messageId"]] and reports[0].get("status") == "drift"
    causes = eventually(lambda: pending_causes(stack, model), what="the drift request recorded")
    assert causes == [f"drift:{model}:v1:after-start"]


def test_a_clean_drift_check_writes_its_report_then_publishes_the_request(local_stack):
    model, event = drifting_model(local_stack)
    assert clean_writes(functions.check_drift, event) == DRIFT_WRITES
    assert_one_report_and_one_request(local_stack, model, event)


@pytest.mark.parametrize("ordinal,when", fault_points(DRIFT_WRITES))
def test_check_drift_killed_at_any_write_and_retried_reports_and_requests_once(local_stack, ordinal, when):
    model, event = drifting_model(local_stack)
    die_then_retry(functions.check_drift, event, ordinal, when)
    assert_one_report_and_one_request(local_stack, model, event)


def test_a_live_runs_heartbeat_keeps_its_lock_through_a_stage_longer_than_the_lock(local_stack):
    """Without it the scheduler's sweep would take a live run's lock for a dead one's and start a twin."""
    from shared.gcp import training_lock

    model = fresh_model(local_stack, "heartbeat")
    settings = SETTINGS.model_copy(update={"training": SETTINGS.training.model_copy(update={"lock_ttl_s": 10,
                                                                                        "launch_grace_s": 2})})
    outcome = training_lock.create_run(manual_request(model, "test"), settings)
    first = control(local_stack, model)["active_run"]["expires_at"]
    with training_lock.lock_heartbeat(model, outcome.run_id, settings):
        time.sleep(settings.training.lock_ttl_s / 3 + 2)  # one beat, inside one long "stage"
    assert control(local_stack, model)["active_run"]["expires_at"] > first
    training_lock.complete_run(outcome.run_id, RunStatus.FAILED, {}, settings, error="test over")
