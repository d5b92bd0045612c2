"""A burst of concurrent events at ONE functions-framework process of on_upload and of on_feedback.

The local stack serves each function from one process whose server runs requests on several threads
(functions-framework's gunicorn worker), as a Cloud Run instance with ``max_instance_request_concurrency``
above 1 does. Every event is delivered twice at once (at-least-once delivery), all of them together:
each upload must be registered exactly once and each report counted exactly once, in the user's record and the
version's tally, which only the handlers' transactions (never a per-process lock or global) can guarantee.
"""

from __future__ import annotations

import base64
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import psutil
import pytest
import requests

from edgeloop.localstack.function_logs import log_entries
from edgeloop.localstack.gcs_notification import notification_message
from shared import layout
from shared.config import Settings
from shared.digits import load_digits_rgb
from shared.gcp.tallies import version_tally
from shared.lifecycle import Tally
from tests.integration.helpers import bucket, db, eventually, fresh_model

SETTINGS = Settings()
CONCURRENT = 16  # requests in flight at once, above the server's threads: some queue, as on a busy instance
DELIVERIES = 2  # each event delivered this many times, at once
ATTEMPTS = 5  # a 5xx is retried, as Pub/Sub and the Firestore trigger retry it
UPLOADS = 24
# Reports of one user serialise on the user's document (the cap's transaction); the Firestore emulator resolves
# a pile of them on one document only through its lock timeouts, so the burst spreads over many users.
USERS = 12
REPORTS_PER_USER = 2


def _post(url: str, body: dict, headers: dict) -> int:
    for _ in range(ATTEMPTS):
        status = requests.post(url, data=json.dumps(body), headers=headers, timeout=120).status_code
        if status < 500:
            return status
    return status


def _burst(url: str, deliveries: list[tuple[dict, dict]]) -> list[int]:
    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(lambda delivery: _post(url, *delivery), deliveries))


def _server_threads(stack, function: str) -> int:
    """Threads of the function's serving process (the gunicorn worker, the arbiter's last child)."""
    root = psutil.Process(stack.pids[function])
    return max(p.num_threads() for p in [root, *root.children(recursive=True)])


def _push(data: bytes, attributes: dict, message_id: str) -> tuple[dict, dict]:
    """A Pub/Sub push of one message, as a binary-mode CloudEvent (what the push subscription delivers)."""
    body = {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": message_id,
                        "publishTime": datetime.now(timezone.utc).isoformat()},
            "subscription": f"projects/{SETTINGS.project_id}/subscriptions/concurrency"}
    headers = {"ce-id": message_id, "ce-source": "//pubsub.googleapis.com/test", "ce-specversion": "1.0",
               "ce-type": "google.cloud.pubsub.topic.v1.messagePublished", "Content-Type": "application/json"}
    return body, headers


def test_concurrent_duplicate_uploads_are_each_registered_exactly_once(local_stack):
    model = fresh_model(local_stack, "concurrent-upload")
    digits = load_digits_rgb()[:UPLOADS]
    deliveries = []
    names = []
    for i, digit in enumerate(digits):
        blob = bucket(local_stack).blob(layout.dataset_object(model, digit.label, f"c-{i:03d}.png"))
        blob.upload_from_string(digit.png(), content_type="image/png")  # its own notification reaches on_upload too
        names.append(blob.name)
        data, attributes = notification_message(blob._properties)
        deliveries += [_push(data, attributes, f"{uuid.uuid4().hex}") for _ in range(DELIVERIES)]

    statuses = _burst(local_stack.url("on_upload"), deliveries)

    assert _server_threads(local_stack, "on_upload") > 1, "the function process serves one request at a time"
    assert statuses == [200] * len(deliveries)
    def registered_images():
        docs = [s.to_dict() for s in db(local_stack).collection(layout.images_collection(model)).stream()]
        return docs if len(docs) >= UPLOADS else None

    images = eventually(registered_images, what="every upload registered")
    assert sorted(d["object"] for d in images) == sorted(names)  # one image document per object, none twice
    registered = [e for e in log_entries(local_stack, "on_upload")
                  if e.get("event") == "object_ingested" and e.get("object") in set(names) and e["status"] == "accepted"]
    assert sorted(e["object"] for e in registered) == sorted(names), "an upload was registered more than once"


def _feedback_event(document: dict) -> tuple[dict, dict]:
    """The Firestore trigger's CloudEvent for a created document (structured mode, JSON data as the emulator sends)."""
    body = {"specversion": "1.0", "id": uuid.uuid4().hex, "type": "google.cloud.firestore.document.v1.created",
            "source": f"//firestore.googleapis.com/projects/{SETTINGS.project_id}/databases/(default)",
            "subject": "documents/" + document["name"].split("/documents/", 1)[1], "data": {"value": document}}
    return body, {"Content-Type": "application/cloudevents+json"}


def test_concurrent_duplicate_reports_are_each_counted_exactly_once(local_stack):
    model = fresh_model(local_stack, "concurrent-feedback")
    assert REPORTS_PER_USER < SETTINGS.thresholds.feedback_per_user_cap
    firestore = db(local_stack)
    paths = []
    for user in range(USERS):
        for i in range(REPORTS_PER_USER):
            path = layout.feedback_doc(model, f"u{user}-r{i:02d}-{uuid.uuid4().hex[:6]}")
            firestore.document(path).set({"uid": f"user-{user}", "model_version": "v1", "predicted_label": "3",
                                          "confidence": 0.8, "correct": i % 3 != 0,
                                          "sent_at": datetime.now(timezone.utc)})
            paths.append(path)
    rest = f"{local_stack.url('firestore')}/v1/projects/{local_stack.project_id}/databases/(default)/documents"
    documents = [requests.get(f"{rest}/{path}", headers={"Authorization": "Bearer owner"}, timeout=30).json()
                 for path in paths]

    statuses = _burst(local_stack.url("on_feedback"), [_feedback_event(d) for d in documents for _ in range(DELIVERIES)])

    assert statuses == [200] * (len(documents) * DELIVERIES)
    def decided_reports():
        got = [firestore.document(path).get().to_dict() for path in paths]
        return got if all(isinstance(r.get("counted"), bool) for r in got) else None

    reports = eventually(decided_reports, what="every report decided")
    assert all(r["counted"] for r in reports)  # under the cap: every report counts, once
    for user in range(USERS):
        admitted = firestore.document(layout.feedback_user_doc(model, "v1", f"user-{user}")).get().to_dict()
        assert len(admitted["admitted"]) == REPORTS_PER_USER, f"user-{user}: {admitted['admitted']}"
    assert version_tally(firestore, model, "v1") == Tally(correct=sum(r["correct"] for r in reports), total=len(paths))


@pytest.mark.parametrize("function", ["on_upload", "on_feedback"])
def test_one_process_serves_each_function(local_stack, function):
    # The bursts above hit one server: the stack runs one functions-framework process per function.
    root = psutil.Process(local_stack.pids[function])
    assert "--target" in root.cmdline() and function in root.cmdline()
    assert len(root.children(recursive=True)) == 1  # gunicorn's one worker
