"""The four functions doing their real work on the local stack, under at-least-once, unordered delivery."""

from __future__ import annotations

import io
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from google.cloud import firestore, pubsub_v1
from hypothesis import HealthCheck, Phase, given, settings as hsettings, strategies as st
from PIL import Image

from edgeloop.localstack.function_logs import log_entries, wait_for_entry
from edgeloop.localstack.gcs_notification import notification_message
from shared import layout
from shared.config import Settings
from shared.digits import load_digits_rgb
from shared.drift import baseline_statistics
from shared.image_stats import image_statistics
from shared.registry import ModelInput, ModelRef, Stage, VersionRecord
from shared.retrain import RetrainReason, RetrainRequest
from shared.tally_buckets import bucket_id, bucket_start
from tests.integration.helpers import (
    bucket, control, db, eventually, fresh_model, image_docs, quarantine_record, register_model,
)

SETTINGS = Settings()
DIGITS = load_digits_rgb()


def upload(stack, name: str, content: bytes, content_type="image/png", metadata=None):
    blob = bucket(stack).blob(name)
    blob.metadata = metadata
    blob.upload_from_string(content, content_type=content_type)
    return blob


def ingested(stack, blob) -> dict:
    return wait_for_entry(
        stack, "on_upload",
        lambda e: e.get("event") == "object_ingested" and e.get("object") == blob.name and e["generation"] == blob.generation,
    )


def publish(stack, topic: str, data: bytes, **attributes) -> str:
    publisher = pubsub_v1.PublisherClient()
    return publisher.publish(publisher.topic_path(stack.project_id, topic), data, **attributes).result(timeout=30)


def redeliver(stack, blob) -> str:
    """Publish the object's notification again, exactly as GCS would on a redelivery."""
    data, attributes = notification_message(blob._properties)
    return publish(stack, SETTINGS.topics.storage_events, data, **attributes)


def notify_only(stack, name: str, content: bytes) -> SimpleNamespace:
    """Notify about an object the storage emulator cannot store (it refuses path tricks), as GCS would."""
    generation = time.time_ns() // 1000
    resource = {"bucket": stack.bucket, "name": name, "generation": str(generation), "metageneration": "1",
                "contentType": "image/png", "size": str(len(content))}
    data, attributes = notification_message(resource)
    publish(stack, SETTINGS.topics.storage_events, data, **attributes)
    return SimpleNamespace(name=name, generation=generation)


def png(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


# --- on_upload -----------------------------------------------------------------------------------

def test_a_dataset_image_is_registered_once_with_its_label_and_statistics(local_stack):
    model = fresh_model(local_stack, "ingest")
    digit = DIGITS[5]
    blob = upload(local_stack, layout.dataset_object(model, digit.label, "a.png"), digit.png())
    assert ingested(local_stack, blob)["status"] == "accepted"
    (image,) = image_docs(local_stack, model)
    assert image["object"] == blob.name and image["generation"] == blob.generation
    assert image["label"] == digit.label and image["labelled"] and image["status"] == "new"
    assert set(image["stats"]) == {"brightness", "contrast", "sharpness"}


def test_a_redelivered_notification_changes_nothing(local_stack):
    model = fresh_model(local_stack, "dup")
    blob = upload(local_stack, layout.dataset_object(model, "1", "a.png"), DIGITS[1].png())
    ingested(local_stack, blob)
    before = image_docs(local_stack, model)
    for _ in range(3):
        redeliver(local_stack, blob)
    eventually(lambda: sum(1 for e in log_entries(local_stack, "on_upload")
                           if e.get("event") == "object_ingested" and e.get("object") == blob.name) == 4,
               what="three redeliveries handled")
    assert image_docs(local_stack, model) == before
    statuses = [e["status"] for e in log_entries(local_stack, "on_upload")
                if e.get("event") == "object_ingested" and e.get("object") == blob.name]
    assert statuses == ["accepted", "duplicate", "duplicate", "duplicate"]


def test_an_overwrite_registers_the_new_generation_and_retires_the_old_one(local_stack):
    model = fresh_model(local_stack, "overwrite")
    name = layout.dataset_object(model, "2", "a.png")
    first = upload(local_stack, name, DIGITS[2].png())
    first_generation = first.generation
    ingested(local_stack, first)
    second = upload(local_stack, name, DIGITS[12].png())
    ingested(local_stack, second)
    by_generation = {d["generation"]: d for d in image_docs(local_stack, model)}
    assert by_generation[first_generation]["status"] == "superseded"
    assert by_generation[second.generation]["status"] == "new"


def test_a_late_notification_for_an_overwritten_generation_registers_nothing(local_stack):
    model = fresh_model(local_stack, "late")
    name = layout.dataset_object(model, "4", "a.png")
    blob = upload(local_stack, name, DIGITS[4].png())
    stale = dict(blob._properties)
    ingested(local_stack, blob)
    newer = upload(local_stack, name, DIGITS[14].png())
    ingested(local_stack, newer)
    data, attributes = notification_message({**stale, "generation": str(int(stale["generation"]) - 1)})
    publish(local_stack, SETTINGS.topics.storage_events, data, **attributes)  # an older generation, arriving last
    entry = wait_for_entry(local_stack, "on_upload", lambda e: e.get("event") == "object_ingested"
                           and e.get("object") == name and e["generation"] == int(stale["generation"]) - 1)
    assert entry["status"] == "superseded"
    assert len(image_docs(local_stack, model)) == 2


BAD_UPLOADS = {
    "not_an_image": ("dataset/{m}/3/a.png", b"definitely not a png", "image/png", None),
    "bad_content_type": ("dataset/{m}/3/a.gif", DIGITS[3].png(), "image/gif", None),
    "unknown_label": ("dataset/{m}/cat/a.png", DIGITS[3].png(), "image/png", None),
    "bad_metadata": ("uploads/{m}/u1/a.png", DIGITS[3].png(), "image/png", {"confidence": "1.7"}),
    "format_mismatch": ("dataset/{m}/3/a.jpg", DIGITS[3].png(), "image/jpeg", None),
    "bad_dimensions": ("dataset/{m}/3/a.png", png(np.zeros((4, 4, 3), np.uint8)), "image/png", None),
    "empty": ("dataset/{m}/3/a.png", b"", "image/png", None),
    "metadata_too_large": ("uploads/{m}/u1/a.png", DIGITS[3].png(), "image/png", {"model_version": "v" * 2100}),
}


@pytest.mark.parametrize("reason", sorted(BAD_UPLOADS))
def test_a_bad_upload_is_quarantined_with_its_reason_and_never_counted(local_stack, reason):
    model = fresh_model(local_stack, "bad")
    template, content, content_type, metadata = BAD_UPLOADS[reason]
    blob = upload(local_stack, template.format(m=model), content, content_type, metadata)
    assert ingested(local_stack, blob)["status"] == "quarantined"
    record = quarantine_record(local_stack, blob.name, blob.generation)
    assert record["reason"] == reason and record["detail"]
    assert image_docs(local_stack, model) == []
    moved = bucket(local_stack).get_blob(layout.quarantine_object(blob.name))
    assert moved is not None and moved.metadata["quarantine_reason"] == reason
    # An app's upload is taken away; the operator's dataset/ object stays where it is (on_upload may not delete it).
    assert (bucket(local_stack).get_blob(blob.name) is None) == blob.name.startswith("uploads/")


def test_an_object_with_a_path_trick_is_recorded_and_never_read_or_copied(local_stack):
    model = fresh_model(local_stack, "trick")
    blob = upload(local_stack, f"dataset/{model}/3/..png", DIGITS[3].png())
    assert ingested(local_stack, blob)["status"] == "quarantined"
    assert quarantine_record(local_stack, blob.name, blob.generation)["reason"] == "invalid_name"
    assert image_docs(local_stack, model) == []
    assert bucket(local_stack).get_blob(layout.quarantine_object(blob.name)) is None


def test_an_image_of_an_unregistered_model_is_quarantined(local_stack):
    blob = upload(local_stack, layout.dataset_object(f"ghost-{uuid.uuid4().hex[:6]}", "1", "a.png"), DIGITS[1].png())
    assert ingested(local_stack, blob)["status"] == "quarantined"
    assert quarantine_record(local_stack, blob.name, blob.generation)["reason"] == "unknown_model"


# No shrinking: every example already is one minimal bad segment, and a failing one would wait out each retry.
@hsettings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])
@given(
    segment=st.sampled_from(["..", ".", " ", "a b", "é", "x" * 200, "%2e%2e", "\u202e"]),
    confidence=st.sampled_from(["-0.1", "1.01", "nan", "inf", "one", ""]),
)
def test_generated_bad_names_and_metadata_are_quarantined_with_their_reasons(local_stack, segment, confidence):
    model = f"fuzz-{uuid.uuid4().hex[:6]}"
    register_model(local_stack, model)
    bad_name = notify_only(local_stack, f"uploads/{model}/{segment}/a.png", DIGITS[0].png())
    bad_meta = upload(local_stack, f"uploads/{model}/u1/{uuid.uuid4().hex}.png", DIGITS[0].png(),
                      metadata={"confidence": confidence})
    for blob, reason in ((bad_name, "invalid_name"), (bad_meta, "bad_metadata")):
        assert ingested(local_stack, blob)["status"] == "quarantined"
        assert quarantine_record(local_stack, blob.name, blob.generation)["reason"] == reason


def test_crossing_the_new_data_threshold_requests_one_retrain_with_evidence(local_stack):
    model = fresh_model(local_stack, "threshold")
    threshold = SETTINGS.thresholds.new_data_images
    blobs = [upload(local_stack, layout.dataset_object(model, d.label, f"{i}.png"), d.png())
             for i, d in enumerate(DIGITS[: threshold + 5])]
    for blob in blobs[-3:]:
        redeliver(local_stack, blob)  # duplicates after the crossing: at most the same cause again
    eventually(lambda: len(image_docs(local_stack, model)) == threshold + 5, 60, "every image registered")
    pending = eventually(lambda: control(local_stack, model).get("pending"), 30, "the request recorded")
    (request,) = pending  # one cause however many uploads crossed the threshold
    assert request["cause"] == f"new_data:{model}:after-start" and request["reason"] == "new_data"
    assert request["evidence"]["new_labelled_images"] >= threshold


# --- on_feedback ---------------------------------------------------------------------------------

def feedback(stack, model, fid=None, **fields) -> str:
    """One report; by default from a user of its own (an honest fleet: no one nears the per-user cap)."""
    fid = fid or uuid.uuid4().hex
    base = {"uid": f"u-{uuid.uuid4().hex[:8]}", "model_version": "v1", "predicted_label": "3", "confidence": 0.4,
            "correct": False}
    db(stack).document(layout.feedback_doc(model, fid)).set({**base, **fields})
    return layout.feedback_doc(model, fid)


def handled(stack, document) -> dict:
    return wait_for_entry(stack, "on_feedback", lambda e: e.get("event") == "feedback_handled" and e.get("document") == document)


def test_a_poor_success_rate_requests_a_retrain_only_with_enough_samples(local_stack):
    model = fresh_model(local_stack, "success")
    minimum = SETTINGS.thresholds.min_feedback_samples
    documents = [feedback(local_stack, model, correct=False) for _ in range(minimum - 1)]
    for document in documents:
        handled(local_stack, document)
    assert not control(local_stack, model).get("pending")  # all wrong, but too few to trust
    handled(local_stack, feedback(local_stack, model, correct=False))
    (request,) = eventually(lambda: control(local_stack, model).get("pending"), what="a success_rate request")
    assert request["reason"] == "success_rate" and request["cause"] == f"success_rate:{model}:v1:after-start"
    assert request["evidence"]["total"] == minimum and request["evidence"]["upper_bound"] < 0.85
    # The decision is logged for the alert on a success-rate drop per version (infra/terraform/monitoring.tf).
    dropped = wait_for_entry(local_stack, "on_feedback",
                             lambda e: e.get("event") == "success_rate_dropped" and e.get("model") == model)
    assert dropped["severity"] == "WARNING" and dropped["model_version"] == "v1" and dropped["total"] == minimum


def counted(stack, document) -> dict:
    """The success rate on_feedback computed for ``document``'s report (its model's latest feedback_counted line)."""
    handled(stack, document)
    model = document.split("/")[1]
    return [e for e in log_entries(stack, "on_feedback") if e.get("event") == "feedback_counted" and e.get("model") == model][-1]


def test_a_report_is_stamped_with_when_it_was_created(local_stack):
    model = fresh_model(local_stack, "stamp")
    document = feedback(local_stack, model, correct=True, predicted_label="3")
    handled(local_stack, document)
    snapshot = db(local_stack).document(document).get()
    assert snapshot.get("received_at") == snapshot.create_time


def test_the_success_rate_counts_only_the_reports_received_in_its_window(local_stack):
    model = fresh_model(local_stack, "window")
    minimum = SETTINGS.thresholds.min_feedback_samples
    old = [feedback(local_stack, model, correct=False) for _ in range(minimum)]
    for document in old:
        handled(local_stack, document)
    # all wrong, enough reports and users: the trigger fires (launch_training records the request a moment later)
    requests_before = eventually(lambda: control(local_stack, model).get("pending"), what="a success_rate request")
    assert [r["reason"] for r in requests_before] == ["success_rate"]
    # The same reports, long ago: their tally buckets moved out of the window (whole buckets: a bucket ending
    # more than one bucket before the window's start), they no longer say anything about the version now.
    thresholds = SETTINGS.thresholds
    long_ago = datetime.fromtimestamp(time.time() - thresholds.success_window_s - 2 * thresholds.tally_bucket_s, timezone.utc)
    buckets = list(db(local_stack).collection(layout.tally_collection(model, "v1")).stream())
    assert sum(b.get("total") for b in buckets) == minimum and sum(b.get("correct") for b in buckets) == 0
    then = bucket_start(long_ago, thresholds.tally_bucket_s)
    batch = db(local_stack).batch()
    for bucket in buckets:  # each moved to the same shard of a bucket long ago
        shard = int(bucket.id.rsplit("-", 1)[1])
        batch.set(db(local_stack).document(layout.tally_doc(model, "v1", bucket_id(then, shard))), {
            **bucket.to_dict(), "start": then, "end": then + timedelta(seconds=thresholds.tally_bucket_s)})
        batch.delete(bucket.reference)
    batch.commit()
    # A retrain is asked for: on_feedback sums this version again once its last sum is old (shared.count_pacing).
    time.sleep(SETTINGS.caching.success_rate_sum_interval_s)
    line = counted(local_stack, feedback(local_stack, model, correct=True, predicted_label="3"))
    assert (line["correct"], line["total"]) == (1, 1)


def test_a_good_success_rate_requests_nothing(local_stack):
    model = fresh_model(local_stack, "happy")
    for i in range(SETTINGS.thresholds.min_feedback_samples + 2):
        handled(local_stack, feedback(local_stack, model, correct=True, predicted_label="3", true_label="3"))
    assert not control(local_stack, model).get("pending")


def test_a_redelivered_feedback_trigger_counts_nothing_twice(local_stack):
    import requests

    model = fresh_model(local_stack, "refb")
    document = feedback(local_stack, model, uid="u1", correct=True, predicted_label="2")
    first = handled(local_stack, document)
    event = {
        "oldValue": {}, "updateMask": {},
        "value": {"name": f"projects/{local_stack.project_id}/databases/(default)/documents/{document}",
                  "fields": {"uid": {"stringValue": "u1"}, "model_version": {"stringValue": "v1"},
                             "predicted_label": {"stringValue": "2"}, "confidence": {"doubleValue": 0.4},
                             "correct": {"booleanValue": True}}},
    }
    headers = {"ce-id": first["event_id"], "ce-specversion": "1.0", "ce-source": "//firestore.googleapis.com/test",
               "ce-type": "google.cloud.firestore.document.v1.created", "Content-Type": "application/json"}
    assert requests.post(local_stack.url("on_feedback") + "/", json=event, headers=headers, timeout=10).ok
    again = eventually(lambda: [e for e in log_entries(local_stack, "on_feedback")
                                if e.get("event") == "feedback_counted" and e.get("model") == model][1:],
                       what="the redelivery handled")
    # the second handling counted nothing more: a rate it summed is the same 1/1 (it may skip the sum, as no
    # retrain can be due yet)
    assert all((e["total"], e["correct"]) == (1, 1) for e in again if "total" in e)
    # tallied once: one bucket document of v1 (the report's time bucket and shard) holds it, once
    (bucket,) = [b.to_dict() for b in db(local_stack).collection(layout.tally_collection(model, "v1")).stream()]
    assert (bucket["total"], bucket["correct"], bucket["model_version"]) == (1, 1, "v1")
    assert bucket["start"] <= db(local_stack).document(document).get().get("received_at") < bucket["end"]


def test_confirmed_feedback_labels_the_capture_whichever_arrives_first(local_stack):
    model = fresh_model(local_stack, "confirm")
    # Upload first, feedback second.
    early = upload(local_stack, f"uploads/{model}/u1/early.png", DIGITS[8].png(),
                   metadata={"predicted_label": "3", "confidence": "0.3", "model_version": "v1"})
    ingested(local_stack, early)
    handled(local_stack, feedback(local_stack, model, uid="u1", true_label="8", capture=early.name))
    # Feedback first, upload second.
    late_name = f"uploads/{model}/u1/late.png"
    handled(local_stack, feedback(local_stack, model, uid="u1", true_label="9", capture=late_name))
    late = upload(local_stack, late_name, DIGITS[9].png(),
                  metadata={"predicted_label": "3", "confidence": "0.3", "model_version": "v1"})
    ingested(local_stack, late)
    labels = {d["object"]: (d["label"], d["labelled"]) for d in image_docs(local_stack, model)}
    assert labels == {early.name: ("8", True), late_name: ("9", True)}


def test_a_malformed_feedback_document_is_quarantined_with_its_reason(local_stack):
    model = fresh_model(local_stack, "badfb")
    fid = uuid.uuid4().hex
    document = feedback(local_stack, model, fid, confidence="very", correct="yes")
    assert handled(local_stack, document)["status"] == "rejected"
    record = db(local_stack).collection("quarantine").document(f"feedback-{model}-{fid}").get().to_dict()
    assert record["reason"] == "invalid_feedback" and "confidence" in record["detail"] and "correct" in record["detail"]


# --- check_drift ---------------------------------------------------------------------------------

# The digits set is grouped by writer: field traffic and training data are random draws, not neighbours.
SHUFFLED = [DIGITS[i] for i in np.random.default_rng(0).permutation(len(DIGITS))]
LABELS = tuple(str(i) for i in range(10))
GATE_ACCURACY = 0.97  # v1's int8 holdout accuracy: the field success a harmless drift keeps (minus max_drop)


def healthy_confidences(n: int, seed: int) -> list[float]:
    """Top-1 confidences of a healthy model on its own kind of inputs: mostly sure, a tail of harder ones."""
    rng = np.random.default_rng(seed)
    sure = rng.uniform(0.9, 1.0, n)
    return [round(float(c), 6) for c in np.where(rng.random(n) < 0.85, sure, rng.uniform(0.3, 0.9, n))]


def publish_production(stack, model: str, digits) -> dict:
    """A production v1 whose baseline is what the trainer stores: the statistics of ``digits`` and healthy
    confidences; its gate measured GATE_ACCURACY."""
    stats = [image_statistics(d.rgb) for d in digits]
    baseline = baseline_statistics(stats, healthy_confidences(len(digits), seed=1), [d.label for d in digits])
    client = db(stack)
    production = ModelRef(version="v1", path=layout.model_object(model, "v1"), sha256="0" * 64, size=1, signature="-",
                          labels=LABELS, input=ModelInput(height=32, width=32))
    record = VersionRecord(model=model, version="v1", run_id="run-v1", created=datetime.now(timezone.utc),
                           stage=Stage.PRODUCTION, ref=production, metrics={"int8_accuracy": GATE_ACCURACY},
                           baseline=baseline)
    client.document(layout.version_doc(model, "v1")).set({**record.model_dump(mode="json"), "created": record.created})
    client.document(layout.model_doc(model)).set({"production": production.model_dump(mode="json")}, merge=True)
    return baseline


def captures(stack, model: str, digits, images: list[np.ndarray], confidences: list[float], reason: str | None) -> None:
    """Uploads as the client SDK makes them (``reason`` None: an app from before capture reasons)."""
    before = len(image_docs(stack, model))
    tag = reason or "unsaid"
    blobs = [upload(stack, f"uploads/{model}/u1/{tag}-{i}.png", png(rgb),
                    metadata={"predicted_label": digit.label, "confidence": f"{confidence:.6f}", "model_version": "v1",
                              **({"capture_reason": reason} if reason else {})})
             for i, (digit, rgb, confidence) in enumerate(zip(digits, images, confidences))]
    eventually(lambda: len(image_docs(stack, model)) == before + len(blobs), 60, "captures registered")


def random_sample(stack, model: str, digits, images: list[np.ndarray] | None = None, seed: int = 2) -> None:
    captures(stack, model, digits, images or [d.rgb for d in digits], healthy_confidences(len(digits), seed),
             "random_sample")


def hard_cases(stack, model: str, digits, seed: int = 3) -> None:
    """What a healthy fleet also uploads: every prediction below the capture threshold."""
    rng = np.random.default_rng(seed)
    captures(stack, model, digits, [d.rgb for d in digits], list(rng.uniform(0.2, 0.5, len(digits))), "low_confidence")


def drift_check(stack, model: str) -> dict:
    message_id = publish(stack, SETTINGS.topics.drift_checks, json.dumps({"model": model}).encode())
    report = eventually(lambda: db(stack).document(f"{layout.drift_reports_collection(model)}/{message_id}").get(),
                        what="the drift report")
    eventually(lambda: report.reference.get().exists, what="the drift report")
    return report.reference.get().to_dict()


def field_reports(stack, model: str, correct: int, wrong: int) -> None:
    """Users' reports on v1, each handled (counted) by on_feedback."""
    outcomes = [True] * correct + [False] * wrong
    for start in range(0, len(outcomes), 10):  # a few at a time: on_feedback keeps up on a loaded machine
        documents = [feedback(stack, model, correct=right, predicted_label="3") for right in outcomes[start:start + 10]]
        for document in documents:
            handled(stack, document)


def dim(digits, kept: float = 0.3) -> list[np.ndarray]:
    return [(d.rgb.astype(np.float32) * kept).astype(np.uint8) for d in digits]


def test_a_healthy_fleet_uploading_its_hard_cases_too_is_not_drift(local_stack):
    from shared.drift import detect_drift
    from shared.gcp.drift import thresholds_of

    model = fresh_model(local_stack, "nodrift")
    baseline = publish_production(local_stack, model, SHUFFLED[:300])
    random_sample(local_stack, model, SHUFFLED[300:340])
    hard_cases(local_stack, model, SHUFFLED[340:380])  # as many hard cases as sampled ones: a realistic mix
    captures(local_stack, model, SHUFFLED[380:420], dim(SHUFFLED[380:420], 0.2), [0.3] * 40, None)  # an old app's
    report = drift_check(local_stack, model)
    assert report["status"] == "no_drift", report["tests"]
    assert report["samples"] == 40 and report["input"] == "random_sample"
    assert not control(local_stack, model).get("pending")
    # What the check compared before capture reasons: every capture, hard cases included.
    everything = detect_drift(baseline, image_docs(local_stack, model), thresholds_of(SETTINGS))
    assert "confidence" in {t.name for t in everything.tests if t.drifted}


def test_a_drifted_random_sample_that_hurts_field_success_requests_a_retrain(local_stack):
    model = fresh_model(local_stack, "drift")
    publish_production(local_stack, model, SHUFFLED[:200])
    random_sample(local_stack, model, SHUFFLED[200:240], dim(SHUFFLED[200:240]))
    hard_cases(local_stack, model, SHUFFLED[240:280])
    # 34 of 40 right: 85%, not low enough for the success-rate rule, confidently below 97% - 3%.
    field_reports(local_stack, model, correct=34, wrong=6)
    assert not control(local_stack, model).get("pending")
    report = drift_check(local_stack, model)
    assert report["status"] == "drift" and report["version"] == "v1" and report["samples"] == 40
    assert "brightness" in {t["name"] for t in report["tests"] if t["drifted"]}
    harm = report["harm"]
    assert report["action"] == "retrain" and harm["verdict"] == "harmful"
    assert (harm["correct"], harm["total"], harm["bar"]) == (34, 40, 0.94) and harm["upper_bound"] < 0.94
    (request,) = eventually(lambda: control(local_stack, model).get("pending"), what="a drift request")
    assert request["reason"] == "drift" and request["evidence"]["model_version"] == "v1"
    line = wait_for_entry(local_stack, "check_drift", lambda e: e.get("event") == "drift_detected" and e.get("model") == model)
    assert line["action"] == "retrain" and line["message"].startswith("drift, harmful: retrained")


def test_a_drift_that_does_not_hurt_is_reported_not_retrained_on(local_stack):
    model = fresh_model(local_stack, "harmless")
    publish_production(local_stack, model, SHUFFLED[:200])
    random_sample(local_stack, model, SHUFFLED[200:240], dim(SHUFFLED[200:240]))
    # No reports yet: whether the drift hurts is not known, and nothing is retrained on a guess.
    unknown = drift_check(local_stack, model)
    assert unknown["status"] == "drift" and unknown["harm"]["verdict"] == "unknown" and unknown["action"] == "reported"
    field_reports(local_stack, model, correct=SETTINGS.thresholds.min_feedback_samples + 10, wrong=0)
    report = drift_check(local_stack, model)
    assert report["status"] == "drift" and report["harm"]["verdict"] == "harmless" and report["action"] == "reported"
    assert report["retrain_policy"] == "when_harmful"
    assert report["decision"].startswith("drift, harmless: not retrained") and "0.940" in report["decision"]
    line = wait_for_entry(local_stack, "check_drift",
                          lambda e: e.get("event") == "drift_detected" and e.get("model") == model
                          and e["harm"]["verdict"] == "harmless")
    assert line["message"] == report["decision"] and line["action"] == "reported"
    assert not control(local_stack, model).get("pending")


# --- launch_training -----------------------------------------------------------------------------

def runs_of(stack, model: str) -> list[dict]:
    return [s.to_dict() for s in db(stack).collection("runs").where(filter=firestore.FieldFilter("model", "==", model)).stream()]


def test_fifty_concurrent_requests_produce_exactly_one_run(local_stack):
    model = fresh_model(local_stack, "burst", paused=False)
    requests = [RetrainRequest(model=model, reason=RetrainReason.NEW_DATA, cause=f"new_data:{model}:burst-{i % 10}")
                for i in range(50)]  # 10 causes, each sent 5 times, all at once
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda r: publish(local_stack, SETTINGS.topics.retrain_requests, r.to_message()), requests))
    eventually(lambda: sum(1 for e in log_entries(local_stack, "launch_training")
                           if e.get("event") == "retrain_handled" and e.get("model") == model) == 50, 90,
               "all 50 requests handled")
    (run,) = runs_of(local_stack, model)
    state = control(local_stack, model)
    served = {cause for cause, run_id in state["causes"].items() if run_id == run["run_id"]}
    pending = {p["cause"] for p in state["pending"]}
    assert served | pending == {r.cause for r in requests} and not served & pending
    assert run["version"] == "v1" and run["reason"] == "new_data" and run["execution"]["backend"] == "local"


def test_a_run_is_created_with_reason_and_evidence_and_the_trainer_is_started(local_stack):
    model = fresh_model(local_stack, "manual", paused=False)
    request = RetrainRequest(model=model, reason=RetrainReason.MANUAL, cause=f"manual:{model}:1",
                             evidence={"requested_by": "test"})
    publish(local_stack, SETTINGS.topics.retrain_requests, request.to_message())
    (run,) = eventually(lambda: runs_of(local_stack, model), what="the run")
    assert run["reason"] == "manual" and run["evidence"] == {"requested_by": "test"} and run["cause"] == request.cause
    execution = eventually(lambda: runs_of(local_stack, model)[0].get("execution"), what="the launch")
    assert execution["pid"] > 0 and execution["log"].endswith(f"trainer-{run['run_id']}.log")


def test_a_scheduler_tick_redelivered_launches_one_run(local_stack):
    model = fresh_model(local_stack, "weekly", paused=False)
    tick = json.dumps({"model": model, "reason": "schedule"}).encode()
    for _ in range(3):
        publish(local_stack, SETTINGS.topics.retrain_requests, tick, origin="cloud-scheduler")
    eventually(lambda: sum(1 for e in log_entries(local_stack, "launch_training")
                           if e.get("event") == "retrain_handled" and e.get("model") == model) == 3, 30, "3 ticks")
    (run,) = runs_of(local_stack, model)
    assert run["reason"] == "schedule" and run["cause"].startswith(f"schedule:{model}:")


def test_a_poison_message_goes_to_the_dead_letter_topic_once_with_its_reason(local_stack):
    subscriber = pubsub_v1.SubscriberClient()
    dead_letters = subscriber.subscription_path(
        local_stack.project_id, SETTINGS.topics.dead_letter(SETTINGS.topics.retrain_requests)
    )
    marker = uuid.uuid4().hex
    message_id = publish(local_stack, SETTINGS.topics.retrain_requests, b"{not json", marker=marker)

    def received():
        response = subscriber.pull(subscription=dead_letters, max_messages=50, timeout=5)
        if response.received_messages:
            subscriber.acknowledge(subscription=dead_letters, ack_ids=[m.ack_id for m in response.received_messages])
        return [m.message for m in response.received_messages if m.message.attributes.get("marker") == marker]

    (dead,) = eventually(received, 30, "the dead letter")
    assert dead.data == b"{not json" and dead.attributes["edgeloop_source_message_id"] == message_id
    assert "not UTF-8 JSON" in dead.attributes["edgeloop_error"]
    attempts = [e for e in log_entries(local_stack, "launch_training")
                if e.get("event") == "malformed_event" and e.get("event_id") == message_id]
    assert len(attempts) == 1  # acknowledged at once: no retry storm
